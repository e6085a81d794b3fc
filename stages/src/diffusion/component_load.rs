//! Builds each network of a pipeline and fills it from where [`PipelineSource`] says its weights are: a diffusers
//! folder (variant files first; older VAE attention names accepted) or a single-file checkpoint read key by key;
//! then the recipe's LoRAs merged, in float32, before the cast to the run's dtype.

use super::layers;
use std::path::{Path, PathBuf};

use tch::{nn, nn::VarStore, Device, Kind};

use super::clip::{checkpoint_has_prefix, ClipTextTransformer};
use super::config::{AutoencoderKLConfig, ClipTextConfig};
use super::error::DiffusionError;
use super::lora::{self, Network};
use super::pipeline_source::{PipelineSource, VaeSource, Weights};
use super::single_file::kind::VAE_PREFIX;
use super::single_file::{text_keys, unet_keys::UNetKeys, vae_keys};
use super::unet::UNet2DConditionModel;
use super::unet_config::UNet2DConditionConfig;
use super::vae::AutoencoderKL;
use super::weights::{self, Source, TensorIndex};

/// A network and the store that holds its tensors.
pub struct Loaded<T> {
    pub net: T,
    pub store: VarStore,
}

fn cast(vs: &mut VarStore, dtype: Kind) {
    if dtype != Kind::Float {
        vs.set_kind(dtype);
    }
}

fn folder_index(
    dir: &Path,
    stem: &str,
    variant: Option<&str>,
) -> Result<TensorIndex, DiffusionError> {
    let files = weights::find_weights(dir, stem, variant)?;
    Ok(TensorIndex::open(&files)?)
}

/// Fills `store` from a folder's `<stem>[.<variant>].safetensors` as they are named, then casts it to `dtype`
/// (a ControlNet: nothing to map or merge).
pub fn fill_from_folder(
    store: &mut VarStore,
    dir: &Path,
    stem: &str,
    variant: Option<&str>,
    dtype: Kind,
) -> Result<(), DiffusionError> {
    let index = folder_index(dir, stem, variant)?;
    weights::load_mapped(store, &index, |n| vec![Source::same(n)])?;
    cast(store, dtype);
    Ok(())
}

/// The text encoder of `component` (`text_encoder`, or SDXL's `text_encoder_2`) in float32 ([`finish_text_and_unet`]
/// casts it), with its `text_projection` when `projection` (`CLIPTextModelWithProjection`, keys beside
/// `text_model`).
pub fn text_encoder_at(
    src: &PipelineSource,
    component: &str,
    cfg: &ClipTextConfig,
    projection: bool,
    device: Device,
) -> Result<(ClipTextTransformer, Option<nn::Linear>, VarStore), DiffusionError> {
    let store = VarStore::new(device);
    let build_projection = |store: &VarStore| {
        projection.then(|| {
            let out = cfg.projection_dim.unwrap_or(cfg.hidden_size);
            layers::linear(
                store.root() / "text_projection",
                cfg.hidden_size,
                out,
                nn::LinearConfig {
                    bias: false,
                    ..Default::default()
                },
            )
        })
    };
    let (net, proj) = match &src.weights {
        Weights::Folder(root) => {
            let index = folder_index(&root.join(component), "model", src.variant.as_deref())?;
            let built = layers::for_loading(|| {
                let net = if checkpoint_has_prefix(index.names()) {
                    ClipTextTransformer::new(store.root(), cfg)
                } else {
                    ClipTextTransformer::new_at(store.root(), cfg)
                };
                (net, build_projection(&store))
            });
            weights::load_mapped(&store, &index, |n| vec![Source::same(n)])?;
            built
        }
        Weights::SingleFile(file) => {
            let built = layers::for_loading(|| {
                (
                    ClipTextTransformer::new(store.root(), cfg),
                    build_projection(&store),
                )
            });
            let layout = file.detected.text;
            weights::load_mapped(&store, &file.index, |n| {
                text_keys::sources(n, layout, component)
            })?;
            built
        }
    };
    Ok((net, proj, store))
}

/// The UNet in float32 ([`finish_text_and_unet`] casts it).
pub fn unet(
    src: &PipelineSource,
    cfg: &UNet2DConditionConfig,
    device: Device,
) -> Result<Loaded<UNet2DConditionModel>, DiffusionError> {
    let origin = src.configs.origin("unet/config.json");
    if ![4, 5, 9].contains(&cfg.in_channels) {
        return Err(DiffusionError::Channels {
            path: origin,
            channels: cfg.in_channels,
        });
    }
    let store = VarStore::new(device);
    let net = layers::for_loading(|| UNet2DConditionModel::new(store.root(), cfg))
        .map_err(|e| e.at(&origin))?;
    match &src.weights {
        Weights::Folder(root) => {
            let index = folder_index(
                &root.join("unet"),
                "diffusion_pytorch_model",
                src.variant.as_deref(),
            )?;
            weights::load_mapped(&store, &index, |n| vec![Source::same(n)])?;
        }
        Weights::SingleFile(file) => {
            let keys = UNetKeys::new(cfg, src.ema).map_err(|e| e.at(&origin))?;
            weights::load_mapped(&store, &file.index, |n| keys.sources(n))?;
        }
    }
    Ok(Loaded { net, store })
}

/// Merges the recipe's LoRAs into the text encoders (each named by its network) and the UNet (still float32),
/// then casts them all to `dtype`.
pub fn finish_text_and_unet(
    src: &PipelineSource,
    unet_cfg: &UNet2DConditionConfig,
    text: &mut [(Network, &mut VarStore)],
    unet: &mut Loaded<UNet2DConditionModel>,
    dtype: Kind,
) -> Result<(), DiffusionError> {
    if !src.loras.is_empty() {
        let keys = UNetKeys::new(unet_cfg, false)
            .map_err(|e| e.at(&src.configs.origin("unet/config.json")))?;
        let towers: Vec<(Network, &VarStore)> = text.iter().map(|(n, s)| (*n, &**s)).collect();
        let loras = lora::read_set(&src.loras, &towers, &unet.store, &|n| keys.ldm_key(n))?;
        for (network, store) in towers {
            lora::merge::merge(store, network, &loras, None)?;
        }
        lora::merge::merge(&unet.store, Network::Unet, &loras, None)?;
    }
    for (_, store) in text.iter_mut() {
        cast(store, dtype);
    }
    cast(&mut unet.store, dtype);
    Ok(())
}

/// The VAE's config: the replacement folder's own, else the model's.
pub fn vae_config(src: &PipelineSource) -> Result<(PathBuf, AutoencoderKLConfig), DiffusionError> {
    match &src.vae {
        Some(VaeSource::Folder(dir)) => {
            let path = dir.join("config.json");
            Ok((path.clone(), AutoencoderKLConfig::from_file(&path)?))
        }
        _ => Ok((src.configs.origin("vae/config.json"), src.configs.vae()?)),
    }
}

/// How a standalone VAE file names its tensors.
fn vae_file_sources(index: &TensorIndex, up_blocks: usize) -> impl Fn(&str) -> Vec<Source> {
    let diffusers = index.contains("encoder.conv_in.weight")
        && index.names().any(|k| k.starts_with("encoder.down_blocks."));
    let prefix = if index.names().any(|k| k.starts_with(VAE_PREFIX)) {
        VAE_PREFIX
    } else {
        ""
    };
    move |n: &str| {
        if diffusers {
            vae_keys::folder_sources(n)
        } else {
            vae_keys::sources(n, up_blocks, prefix)
        }
    }
}

pub fn vae(
    src: &PipelineSource,
    cfg: &AutoencoderKLConfig,
    origin: &Path,
    device: Device,
    dtype: Kind,
) -> Result<Loaded<AutoencoderKL>, DiffusionError> {
    let mut store = VarStore::new(device);
    let net =
        layers::for_loading(|| AutoencoderKL::new(store.root(), cfg)).map_err(|e| e.at(origin))?;
    let up_blocks = cfg.up_block_types.len();
    match (&src.vae, &src.weights) {
        (Some(VaeSource::Folder(dir)), _) => {
            let index = folder_index(dir, "diffusion_pytorch_model", src.variant.as_deref())?;
            weights::load_mapped(&store, &index, vae_keys::folder_sources)?;
        }
        (Some(VaeSource::File(path)), _) => {
            if weights::is_pickle(path) {
                return Err(weights::WeightsError::Pickle { path: path.clone() }.into());
            }
            let index = TensorIndex::open(std::slice::from_ref(path))?;
            weights::load_mapped(&store, &index, vae_file_sources(&index, up_blocks))?;
        }
        (None, Weights::Folder(root)) => {
            let index = folder_index(
                &root.join("vae"),
                "diffusion_pytorch_model",
                src.variant.as_deref(),
            )?;
            weights::load_mapped(&store, &index, vae_keys::folder_sources)?;
        }
        (None, Weights::SingleFile(file)) => {
            weights::load_mapped(&store, &file.index, |n| {
                vae_keys::sources(n, up_blocks, VAE_PREFIX)
            })?;
        }
    }
    // As diffusers: a VAE marked `force_upcast` (SD's overflows in float16) stays in float32.
    cast(
        &mut store,
        if cfg.force_upcast { Kind::Float } else { dtype },
    );
    Ok(Loaded { net, store })
}
