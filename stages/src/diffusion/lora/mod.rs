//! LoRAs as users hold them, merged into the weights at load: kohya/A1111 files (`lora_unet_*`, `lora_te_*`,
//! `.lora_down`/`.lora_up`, `.alpha` giving the scale alpha/rank; LoCon convolutions) and diffusers/PEFT files
//! (`unet.<module>.lora_A`/`lora_B`, `text_encoder.<module>…`). Each layer's update `scale · up · down` is added to
//! the weight it names ([`merge`]); the names are resolved against the networks' own variables ([`keys`]), so a
//! LoRA for another model is an error naming the layer, not a silent no-op.

pub mod keys;
pub mod merge;

use std::path::{Path, PathBuf};

use tch::{Kind, Tensor};

use super::weights::{TensorIndex, WeightsError};
pub use keys::{LoraFormat, Network};

/// A LoRA the recipe names: its file and the strength it is applied with (diffusers' `lora_scale`).
#[derive(Clone, Debug, PartialEq)]
pub struct LoraSpec {
    pub path: PathBuf,
    pub scale: f64,
}

/// One adapted layer: `weight += scale · (up · down)` reshaped to the weight.
pub struct LoraLayer {
    pub network: Network,
    /// The variable adapted, as the network's store names it (e.g. `down_blocks.0.….to_q.weight`).
    pub weight: String,
    pub down: Tensor,
    pub up: Tensor,
    /// alpha / rank (1 without alpha) × the recipe's scale.
    pub scale: f64,
}

/// A LoRA file read and resolved against one pipeline's variables.
pub struct Lora {
    pub path: PathBuf,
    pub format: LoraFormat,
    pub layers: Vec<LoraLayer>,
}

#[derive(Debug, thiserror::Error)]
pub enum LoraError {
    #[error(transparent)]
    Weights(#[from] WeightsError),
    #[error(
        "LoRA {path}: {count} of its layers name nothing in this model ({format} keys; first: {first}); it is for \
         another base model or architecture — use a LoRA trained on this model's base (SD 1.x LoRAs on SD 1.x \
         models, SD 2.x on SD 2.x, SDXL on SDXL)"
    )]
    Unknown {
        path: PathBuf,
        format: LoraFormat,
        count: usize,
        first: String,
    },
    #[error(
        "LoRA {path} holds no LoRA layers (no `lora_down`/`lora_up` or `lora_A`/`lora_B` pairs); its first tensors \
         are {first}; give a kohya/A1111 or diffusers/PEFT LoRA .safetensors"
    )]
    NotALora { path: PathBuf, first: String },
    #[error(
        "LoRA {path}: layer {layer} has {shapes}; the LoRA was trained for another base model (e.g. SD 2.x's \
         1024-wide text on SD 1.x)"
    )]
    Shape {
        path: PathBuf,
        layer: String,
        /// "down [..] and up [..], but the model's <weight> is [..]".
        shapes: String,
    },
    #[error(
        "LoRA {path}: tensor {key:?} is not part of a plain LoRA layer (LoHa, LoKr and DoRA files are not \
         supported); merge it into the base model with its own tool, or use a plain LoRA"
    )]
    Unsupported { path: PathBuf, key: String },
    #[error("LoRA {path}: layer {layer} lacks its {missing} tensor; the file is incomplete — re-download it")]
    Incomplete {
        path: PathBuf,
        layer: String,
        missing: &'static str,
    },
}

impl Lora {
    /// Reads `spec`'s file and resolves every layer against `vars(network)` (the variable names of each network).
    pub fn read(
        spec: &LoraSpec,
        vars: &dyn Fn(Network) -> Vec<String>,
        unet_ldm_key: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, LoraError> {
        let path = spec.path.clone();
        if super::weights::is_pickle(&path) {
            return Err(WeightsError::Pickle { path }.into());
        }
        let index = TensorIndex::open(std::slice::from_ref(&path))?;
        let (pairs, others) = keys::pairs(&index);
        if pairs.is_empty() {
            return Err(LoraError::NotALora {
                first: index
                    .names()
                    .take(3)
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                path,
            });
        }
        let format = pairs[0].format();
        let adapter_config = AdapterConfig::from_metadata(index.metadata());
        if let Some(key) = others.first() {
            return Err(LoraError::Unsupported {
                path,
                key: key.clone(),
            });
        }
        let resolver = keys::Resolver::new(vars, unet_ldm_key);
        let mut layers = Vec::with_capacity(pairs.len());
        let mut unknown = Vec::new();
        for pair in &pairs {
            let Some((network, weight)) = resolver.resolve(pair) else {
                unknown.push(pair.name.clone());
                continue;
            };
            let read = |key: &Option<String>, what: &'static str| -> Result<Tensor, LoraError> {
                let key = key.as_ref().ok_or_else(|| LoraError::Incomplete {
                    path: path.clone(),
                    layer: pair.name.clone(),
                    missing: what,
                })?;
                Ok(index.read(key)?.to_kind(Kind::Float))
            };
            let down = read(&pair.down, "down (lora_down / lora_A)")?;
            let up = read(&pair.up, "up (lora_up / lora_B)")?;
            let rank = down.size().first().copied().unwrap_or(1).max(1);
            let alpha = match &pair.alpha {
                Some(k) => {
                    let t = index.read(k)?;
                    let value = (t.numel() == 1)
                        .then(|| {
                            t.to_kind(Kind::Double)
                                .reshape([1])
                                .f_double_value(&[0])
                                .ok()
                        })
                        .flatten()
                        .filter(|a| a.is_finite());
                    Some(value.ok_or_else(|| LoraError::Incomplete {
                        path: path.clone(),
                        layer: pair.name.clone(),
                        missing: "single finite alpha value (its `.alpha` has another shape or is not finite)",
                    })?)
                }
                None => None,
            };
            // kohya's `.alpha`, else the PEFT adapter config diffusers saves in the metadata, else 1.
            let alpha = alpha.or_else(|| adapter_config.alpha(network, &pair.name));
            // PEFT's rank-stabilised LoRA scales by alpha / sqrt(rank).
            let divisor = if adapter_config.rslora(network) {
                (rank as f64).sqrt()
            } else {
                rank as f64
            };
            let base = alpha.map_or(1.0, |a| a / divisor);
            layers.push(LoraLayer {
                network,
                weight,
                down,
                up,
                scale: base * spec.scale,
            });
        }
        if let Some(first) = unknown.first() {
            return Err(LoraError::Unknown {
                path,
                format,
                count: unknown.len(),
                first: first.clone(),
            });
        }
        Ok(Self {
            path,
            format,
            layers,
        })
    }
}

/// The PEFT adapter config diffusers' `save_lora_weights` stores in a file's metadata (`lora_adapter_metadata`:
/// `unet.lora_alpha`, `unet.alpha_pattern`, … per network): where it is, the scale is its alpha over the rank.
#[derive(Default)]
struct AdapterConfig {
    json: Option<serde_json::Value>,
}

impl AdapterConfig {
    fn from_metadata(metadata: &std::collections::BTreeMap<String, String>) -> Self {
        Self {
            json: metadata
                .get("lora_adapter_metadata")
                .and_then(|s| serde_json::from_str(s).ok()),
        }
    }

    fn rslora(&self, network: Network) -> bool {
        self.json
            .as_ref()
            .and_then(|j| j.get(format!("{}.use_rslora", Self::prefix(network))))
            .and_then(|v| v.as_bool())
            .unwrap_or(false)
    }

    fn prefix(network: Network) -> &'static str {
        network.component()
    }

    /// The alpha of one layer (`name` as the file writes it): a pattern naming its module, else the network's.
    fn alpha(&self, network: Network, name: &str) -> Option<f64> {
        let json = self.json.as_ref()?;
        let prefix = network.component();
        let module = name
            .strip_prefix(&format!("{prefix}."))
            .unwrap_or(name)
            .trim_end_matches(".lora")
            .to_owned();
        let pattern = json
            .get(format!("{prefix}.alpha_pattern"))
            .and_then(|p| p.as_object())
            .and_then(|p| {
                p.iter()
                    .find(|(k, _)| module == **k || module.ends_with(&format!(".{k}")))
                    .and_then(|(_, v)| v.as_f64())
            });
        pattern.or_else(|| json.get(format!("{prefix}.lora_alpha"))?.as_f64())
    }
}

/// Reads each of `specs` against the variables of the text encoders' stores (each with its network: one for SD,
/// SDXL's two, a refiner's `text_encoder_2` alone) and the UNet's.
pub fn read_set(
    specs: &[LoraSpec],
    text: &[(Network, &tch::nn::VarStore)],
    unet: &tch::nn::VarStore,
    unet_ldm_key: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Lora>, LoraError> {
    let names =
        |store: &tch::nn::VarStore| -> Vec<String> { store.variables().into_keys().collect() };
    let unet_names = names(unet);
    let text_names: Vec<(Network, Vec<String>)> =
        text.iter().map(|(n, store)| (*n, names(store))).collect();
    let vars = |n: Network| match n {
        Network::Unet => unet_names.clone(),
        text => text_names
            .iter()
            .filter(|(m, _)| *m == text)
            .flat_map(|(_, v)| v.clone())
            .collect(),
    };
    specs
        .iter()
        .map(|spec| Lora::read(spec, &vars, unet_ldm_key))
        .collect()
}

/// Whether a file looks like a LoRA (for messages elsewhere).
pub fn looks_like_lora(path: &Path) -> bool {
    TensorIndex::open(&[path.to_path_buf()])
        .map(|i| !keys::pairs(&i).0.is_empty())
        .unwrap_or(false)
}
