//! What a model load reads, resolved from what the recipe says ([`ModelRef`]): each component's config (a diffusers
//! folder's JSON, or texaug's built-in published configs for a single file), its weights (a diffusers folder, with
//! `variant` files first, or one single-file checkpoint) and an optional replacement VAE.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use super::config::{parse_json, AutoencoderKLConfig, ClipTextConfig, ConfigError};
use super::error::DiffusionError;
use super::hub;
use super::lora::LoraSpec;
use super::model_dir::{ModelDirError, ModelSource};
use super::schedulers::{SchedulerConfig, SchedulerError};
use super::single_file::{builtin, clip_vocab, CheckpointKind, SingleFile};
use super::textual_inversion::EmbeddingSpec;
use super::tokenizer::ClipTokenizer;
use super::unet_config::UNet2DConditionConfig;

/// A model as a recipe names it.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelRef {
    /// A diffusers folder, a hub id, or a single-file checkpoint.
    pub source: ModelSource,
    /// For a single file: the diffusers folder (or cached hub id) whose configs, tokenizer and scheduler to use
    /// instead of the built-in ones (its weights, if any, are not read).
    pub config: Option<ModelSource>,
    /// For a single file: what it is, when its header cannot tell.
    pub kind: Option<CheckpointKind>,
    /// A replacement VAE: a diffusers `AutoencoderKL` folder, or a `.safetensors` file (original or diffusers keys).
    pub vae: Option<PathBuf>,
    /// Weight files `<name>.<variant>.safetensors` first (e.g. `fp16`), as diffusers' `variant`.
    pub variant: Option<String>,
    /// For a single file: read the UNet's EMA copy (`model_ema.*`) instead of its plain weights.
    pub ema: bool,
    /// LoRAs merged into the UNet and text encoder at load, in order.
    pub loras: Vec<LoraSpec>,
    /// Textual-inversion embeddings whose tokens prompts may use.
    pub embeddings: Vec<EmbeddingSpec>,
}

impl From<ModelSource> for ModelRef {
    fn from(source: ModelSource) -> Self {
        Self {
            source,
            config: None,
            kind: None,
            vae: None,
            variant: None,
            ema: false,
            loras: Vec::new(),
            embeddings: Vec::new(),
        }
    }
}

/// Where the configs come from.
#[derive(Clone, Debug)]
pub enum ConfigSet {
    /// A diffusers folder: `unet/config.json`, …, `tokenizer/`, `scheduler/scheduler_config.json`.
    Folder(PathBuf),
    /// texaug's copy of the published configs of `kind`; `checkpoint` names the file in errors.
    Builtin {
        kind: CheckpointKind,
        checkpoint: PathBuf,
    },
}

/// Where the weights come from.
pub enum Weights {
    Folder(PathBuf),
    SingleFile(Box<SingleFile>),
}

/// A replacement VAE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VaeSource {
    /// `config.json` + `diffusion_pytorch_model[.variant].safetensors`.
    Folder(PathBuf),
    /// One `.safetensors` (the base model's VAE config).
    File(PathBuf),
}

/// Everything a load reads.
pub struct PipelineSource {
    pub id: String,
    pub configs: ConfigSet,
    pub weights: Weights,
    pub vae: Option<VaeSource>,
    pub variant: Option<String>,
    pub ema: bool,
    pub loras: Vec<LoraSpec>,
    pub embeddings: Vec<EmbeddingSpec>,
}

impl ModelRef {
    pub fn id(&self) -> String {
        self.source.id()
    }

    /// Finds every file the load needs (nothing is read but single-file headers).
    pub fn resolve(&self) -> Result<PipelineSource, DiffusionError> {
        let vae = self.vae.as_ref().map(|p| resolve_vae(p)).transpose()?;
        let (configs, weights) = match &self.source {
            ModelSource::File(path) => {
                if !path.is_file() {
                    return Err(ModelDirError::NoFile { path: path.clone() }.into());
                }
                let file = SingleFile::open(path, self.kind)?;
                if self.ema && file.detected.ema_tensors == 0 {
                    return Err(ModelDirError::NoEma { path: path.clone() }.into());
                }
                let configs = match &self.config {
                    Some(c) => ConfigSet::Folder(config_folder(c)?),
                    None => ConfigSet::Builtin {
                        kind: file.detected.require_kind(path)?,
                        checkpoint: path.clone(),
                    },
                };
                (configs, Weights::SingleFile(Box::new(file)))
            }
            other => {
                let dir = other.resolve()?;
                (
                    ConfigSet::Folder(dir.root.clone()),
                    Weights::Folder(dir.root),
                )
            }
        };
        Ok(PipelineSource {
            id: self.id(),
            configs,
            weights,
            vae,
            variant: self.variant.clone(),
            ema: self.ema,
            loras: self.loras.clone(),
            embeddings: self.embeddings.clone(),
        })
    }
}

/// A `config` folder (or cached hub snapshot): the component configs must be there; weights need not be.
fn config_folder(source: &ModelSource) -> Result<PathBuf, DiffusionError> {
    let root = match source {
        ModelSource::Dir(p) => p.clone(),
        ModelSource::Hub { repo, revision } => {
            hub::snapshot_dir(&hub::cache_dir(), repo, revision.as_deref())
                .map_err(ModelDirError::from)?
        }
        ModelSource::File(p) => {
            return Err(ModelDirError::ConfigIsFile { path: p.clone() }.into());
        }
    };
    // What the folder's pipeline has: SDXL adds text_encoder_2/tokenizer_2, its refiner lacks the first pair.
    let mut missing = Vec::new();
    for component in super::model_dir::folder_components(&root) {
        let c = root.join(component);
        match component {
            "tokenizer" | "tokenizer_2" => {
                if !(c.join("vocab.json").is_file() || c.join("tokenizer.json").is_file()) {
                    missing.push(format!("{component}/vocab.json"));
                }
            }
            "scheduler" => {
                if !c.join("scheduler_config.json").is_file() {
                    missing.push("scheduler/scheduler_config.json".to_owned());
                }
            }
            _ => {
                if !c.join("config.json").is_file() {
                    missing.push(format!("{component}/config.json"));
                }
            }
        }
    }
    if missing.is_empty() {
        Ok(root)
    } else {
        Err(ModelDirError::Incomplete {
            path: root,
            missing: missing.join(", "),
        }
        .into())
    }
}

fn resolve_vae(path: &Path) -> Result<VaeSource, DiffusionError> {
    if path.is_dir() {
        if !path.join("config.json").is_file() {
            return Err(ModelDirError::Incomplete {
                path: path.into(),
                missing: "config.json (an AutoencoderKL folder)".into(),
            }
            .into());
        }
        Ok(VaeSource::Folder(path.into()))
    } else if path.is_file() {
        Ok(VaeSource::File(path.into()))
    } else {
        Err(ModelDirError::NoFile { path: path.into() }.into())
    }
}

impl ConfigSet {
    fn text(&self, rel: &str) -> Result<(PathBuf, String), ConfigError> {
        match self {
            Self::Folder(root) => {
                let path = root.join(rel);
                let text = super::config::read_text(&path)?;
                Ok((path, text))
            }
            Self::Builtin { kind, checkpoint } => {
                let value = match rel {
                    "unet/config.json" => builtin::unet(*kind),
                    "vae/config.json" => builtin::vae(*kind),
                    "text_encoder/config.json" => builtin::text_encoder(*kind),
                    "text_encoder_2/config.json" => builtin::text_encoder_2(),
                    _ => builtin::scheduler(*kind),
                };
                let origin = PathBuf::from(format!(
                    "{} (texaug's built-in {kind} {rel})",
                    checkpoint.display()
                ));
                Ok((origin, value.to_string()))
            }
        }
    }

    fn parse<T: DeserializeOwned>(&self, rel: &str) -> Result<(PathBuf, T), ConfigError> {
        let (origin, text) = self.text(rel)?;
        let value = parse_json(&origin, &text)?;
        Ok((origin, value))
    }

    /// Where `rel` is (or what stands for it in messages).
    pub fn origin(&self, rel: &str) -> PathBuf {
        self.text(rel)
            .map(|(o, _)| o)
            .unwrap_or_else(|_| PathBuf::from(rel))
    }

    pub fn unet(&self) -> Result<UNet2DConditionConfig, ConfigError> {
        let (origin, cfg): (_, UNet2DConditionConfig) = self.parse("unet/config.json")?;
        cfg.validate().map_err(|e| e.at(&origin))?;
        Ok(cfg)
    }

    pub fn vae(&self) -> Result<AutoencoderKLConfig, ConfigError> {
        let (origin, cfg): (_, AutoencoderKLConfig) = self.parse("vae/config.json")?;
        cfg.validate().map_err(|e| e.at(&origin))?;
        Ok(cfg)
    }

    pub fn text_encoder(&self) -> Result<ClipTextConfig, ConfigError> {
        self.text_encoder_at("text_encoder")
    }

    /// The config of the text encoder in `component` (`text_encoder`, or SDXL's `text_encoder_2`).
    pub fn text_encoder_at(&self, component: &str) -> Result<ClipTextConfig, ConfigError> {
        let (origin, cfg): (_, ClipTextConfig) = self.parse(&format!("{component}/config.json"))?;
        cfg.validate().map_err(|e| e.at(&origin))?;
        Ok(cfg)
    }

    /// Whether the set has `rel` (a folder's file, or a built-in config of its kind).
    pub fn has(&self, rel: &str) -> bool {
        match self {
            Self::Folder(root) => root.join(rel).is_file(),
            Self::Builtin { kind, .. } => builtin::has(*kind, rel),
        }
    }

    /// SDXL's pipeline shape: a second text encoder (with projection) beside or instead of the first.
    pub fn is_xl(&self) -> bool {
        self.has("text_encoder_2/config.json")
    }

    /// A diffusers folder's `model_index.json`, when there is one.
    pub fn model_index(&self) -> Option<PathBuf> {
        match self {
            Self::Folder(root) => Some(root.join("model_index.json")).filter(|p| p.is_file()),
            Self::Builtin { .. } => None,
        }
    }

    pub fn scheduler(&self) -> Result<SchedulerConfig, SchedulerError> {
        let rel = "scheduler/scheduler_config.json";
        match self {
            Self::Folder(root) => SchedulerConfig::from_file(&root.join(rel)),
            Self::Builtin { .. } => {
                let (origin, text) = self.text(rel).map_err(|e| SchedulerError::Json {
                    path: rel.into(),
                    reason: e.to_string(),
                })?;
                SchedulerConfig::from_json_str(&text, &origin)
            }
        }
    }

    /// The scheduler config as JSON (its class tells the default scheduler's name).
    pub fn scheduler_json(&self) -> Option<serde_json::Value> {
        let (_, text) = self.text("scheduler/scheduler_config.json").ok()?;
        serde_json::from_str(&text).ok()
    }

    pub fn tokenizer(&self) -> Result<ClipTokenizer, DiffusionError> {
        self.tokenizer_at("tokenizer")
    }

    /// The tokenizer in `component` (`tokenizer`, or SDXL's `tokenizer_2`).
    pub fn tokenizer_at(&self, component: &str) -> Result<ClipTokenizer, DiffusionError> {
        match self {
            Self::Folder(root) => Ok(ClipTokenizer::from_dir(&root.join(component))?),
            Self::Builtin { kind, checkpoint } => {
                let vocab = clip_vocab(checkpoint, *kind)?;
                Ok(ClipTokenizer::from_bpe_gz_with_pad(
                    &vocab,
                    builtin::pad_token(*kind, component),
                )?)
            }
        }
    }
}

impl PipelineSource {
    /// A diffusers folder's own `controlnet/`, loaded with the model.
    pub fn own_controlnet(&self) -> Option<PathBuf> {
        match &self.weights {
            Weights::Folder(root) => {
                Some(root.join("controlnet")).filter(|d| d.join("config.json").is_file())
            }
            Weights::SingleFile(_) => None,
        }
    }
}
