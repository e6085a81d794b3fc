//! A diffusers folder written as one single-file checkpoint in the original layout (what A1111, ComfyUI and
//! `from_single_file` read): every tensor under the LDM key the loader reads it from, 1×1 convolutions and
//! OpenCLIP's fused `in_proj` rebuilt. The inverse of the loader's mapping, so the same tables serve both ways.

use std::collections::BTreeMap;
use std::path::Path;

use tch::{Kind, Tensor};

use super::kind::TextLayout;
use super::unet_keys::UNetKeys;
use super::{text_keys, vae_keys};
use crate::diffusion::config::{AutoencoderKLConfig, ClipTextConfig};
use crate::diffusion::error::DiffusionError;
use crate::diffusion::unet_config::UNet2DConditionConfig;
use crate::diffusion::weights::{find_weights, Source, TensorIndex, Transform, WeightsError};

/// A diffusers key's place in the single file.
type KeyMap<'a> = dyn Fn(&str) -> Vec<Source> + 'a;

/// The text encoder layout a folder's config implies: SD 2's OpenCLIP uses GELU, SD 1's CLIP quick GELU.
pub fn text_layout_of(cfg: &ClipTextConfig) -> TextLayout {
    if cfg.hidden_act == "gelu" {
        TextLayout::OpenClip
    } else {
        TextLayout::Clip
    }
}

/// Writes `dir` (a diffusers folder) as one `.safetensors` at `out`, tensors cast to `kind` (or kept).
/// Returns the number of tensors written.
pub fn export_folder(
    dir: &Path,
    out: &Path,
    layout: Option<TextLayout>,
    kind: Option<Kind>,
) -> Result<usize, DiffusionError> {
    let unet_cfg = UNet2DConditionConfig::from_file(&dir.join("unet/config.json"))?;
    let vae_cfg = AutoencoderKLConfig::from_file(&dir.join("vae/config.json"))?;
    let has = |c: &str| dir.join(c).join("config.json").is_file();
    // SDXL (a `text_encoder_2`) is written in SGM's layout; SD 1/2 as their text encoder's activation says.
    let layout = match (layout, has("text_encoder_2"), has("text_encoder")) {
        (Some(l), _, _) => l,
        (None, true, true) => TextLayout::Xl,
        (None, true, false) => TextLayout::XlRefiner,
        (None, false, _) => text_layout_of(&ClipTextConfig::from_file(
            &dir.join("text_encoder/config.json"),
        )?),
    };
    let towers: &[&str] = match layout {
        TextLayout::Clip | TextLayout::OpenClip => &["text_encoder"],
        TextLayout::Xl => &["text_encoder", "text_encoder_2"],
        TextLayout::XlRefiner => &["text_encoder_2"],
    };
    let unet_keys =
        UNetKeys::new(&unet_cfg, false).map_err(|e| e.at(&dir.join("unet/config.json")))?;
    let up_blocks = vae_cfg.up_block_types.len();
    let mut tensors: BTreeMap<String, Tensor> = BTreeMap::new();
    let mut fused: BTreeMap<String, [Option<Tensor>; 3]> = BTreeMap::new();
    let unet_map = |n: &str| unet_keys.sources(n);
    let vae_map = |n: &str| vae_keys::sources(n, up_blocks, super::kind::VAE_PREFIX);
    let text_maps: Vec<(&str, Box<KeyMap>)> = towers
        .iter()
        .map(|&tower| {
            let map: Box<KeyMap> = Box::new(move |n: &str| {
                // transformers 5 saves CLIPTextModel without the `text_model.` its variables are named by
                let name = if n.starts_with("text_model.") || n == "text_projection.weight" {
                    n.to_owned()
                } else {
                    format!("text_model.{n}")
                };
                text_keys::sources(&name, layout, tower)
            });
            (tower, map)
        })
        .collect();
    let mut parts: Vec<(&str, &str, &KeyMap)> = vec![
        ("unet", "diffusion_pytorch_model", &unet_map),
        ("vae", "diffusion_pytorch_model", &vae_map),
    ];
    parts.extend(text_maps.iter().map(|(t, m)| (*t, "model", m.as_ref())));
    for (part, stem, map) in parts {
        let index = TensorIndex::open(&find_weights(&dir.join(part), stem, None)?)?;
        for name in index.names() {
            if name.ends_with("position_ids") {
                continue;
            }
            let Some(src) = map(name).into_iter().next() else {
                return Err(WeightsError::Format {
                    path: dir.join(part),
                    reason: format!(
                        "tensor {name:?} has no place in the original layout (not an SD 1.x/2.x/XL {part})"
                    ),
                }
                .into());
            };
            let t = index.read(name)?;
            let t = kind.map_or_else(|| t.shallow_clone(), |k| t.to_kind(k));
            match src.transform {
                Transform::Same => {
                    tensors.insert(src.key, t.contiguous());
                }
                Transform::SqueezeConv => {
                    tensors.insert(src.key, t.unsqueeze(-1).unsqueeze(-1).contiguous());
                }
                Transform::Third(k) => {
                    fused.entry(src.key).or_default()[k] = Some(t);
                }
                Transform::Transpose => {
                    tensors.insert(src.key, t.tr().contiguous());
                }
            }
        }
    }
    for (key, parts) in fused {
        let [Some(q), Some(k), Some(v)] = parts else {
            return Err(WeightsError::Format {
                path: dir.to_path_buf(),
                reason: format!("{key}: q, k and v projections are not all there"),
            }
            .into());
        };
        tensors.insert(key, Tensor::cat(&[q, k, v], 0).contiguous());
    }
    let named: Vec<(String, Tensor)> = tensors.into_iter().collect();
    let count = named.len();
    // Atomic: tch writes a temp file beside `out`, which is synced and renamed into place.
    let write_err = |reason: String| WeightsError::Write {
        path: out.to_path_buf(),
        reason,
    };
    let dir = out
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| write_err(e.to_string()))?;
    let tmp = dir.join(format!(
        "{}{}",
        crate::files::temp_prefix_for(out),
        std::process::id()
    ));
    let result = Tensor::write_safetensors(&named, &tmp)
        .map_err(|e| e.to_string())
        .and_then(|()| {
            std::fs::File::open(&tmp)
                .and_then(|f| f.sync_all())
                .and_then(|()| std::fs::rename(&tmp, out))
                .map_err(|e| e.to_string())
        });
    if let Err(reason) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(write_err(reason).into());
    }
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(count)
}
