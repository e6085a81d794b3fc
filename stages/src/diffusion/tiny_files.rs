//! What every tiny-model writer shares: the truncated vocabulary's size, the diffusers version the configs
//! claim, and config files written and parsed back with errors naming the file.

use std::path::Path;

use serde_json::Value;
use tch::{nn::VarStore, Device};

use super::config::AutoencoderKLConfig;
use super::controlnet::{ControlNetConfig, ControlNetModel};
use super::img2img::DiffusionError;
use super::unet::UNet2DConditionModel;
use super::unet_config::UNet2DConditionConfig;
use super::vae::AutoencoderKL;
use super::{noise, weights};

/// Merges kept from CLIP's list: a 1314-token vocabulary keeps the embedding table tiny.
pub(crate) const TINY_MERGES: usize = 800;
pub(crate) const DIFFUSERS_VERSION: &str = "0.36.0";

pub(crate) fn write_json(path: &Path, v: &Value) -> Result<(), DiffusionError> {
    let text = serde_json::to_string_pretty(v).unwrap_or_default() + "\n";
    std::fs::write(path, text).map_err(|source| DiffusionError::Io {
        path: path.to_path_buf(),
        source,
    })
}

pub(crate) fn mkdir(path: &Path) -> Result<(), DiffusionError> {
    std::fs::create_dir_all(path).map_err(|source| DiffusionError::Io {
        path: path.to_path_buf(),
        source,
    })
}

pub(crate) fn parse<T: serde::de::DeserializeOwned>(
    v: &Value,
    path: &Path,
) -> Result<T, DiffusionError> {
    serde_json::from_value(v.clone()).map_err(|e| DiffusionError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
    })
}

/// `dir/controlnet/`: a ControlNet of `config` with weights drawn from `seed`.
pub(crate) fn write_controlnet(
    dir: &Path,
    config: &Value,
    seed: u64,
) -> Result<(), DiffusionError> {
    mkdir(&dir.join("controlnet"))?;
    let cn_path = dir.join("controlnet/config.json");
    write_json(&cn_path, config)?;
    let cn_cfg: ControlNetConfig = parse(config, &cn_path)?;
    let cn_vs = VarStore::new(Device::Cpu);
    noise::seeded(seed, || ControlNetModel::new(cn_vs.root(), &cn_cfg))
        .map_err(|e| e.at(&cn_path))?;
    weights::save_varstore(
        &cn_vs,
        &dir.join("controlnet/diffusion_pytorch_model.safetensors"),
        None,
    )?;
    Ok(())
}

/// `dir/unet/`: a UNet of `config` with weights drawn from `seed`.
pub(crate) fn write_unet(dir: &Path, config: &Value, seed: u64) -> Result<(), DiffusionError> {
    let path = dir.join("unet/config.json");
    write_json(&path, config)?;
    let cfg: UNet2DConditionConfig = parse(config, &path)?;
    let vs = VarStore::new(Device::Cpu);
    noise::seeded(seed, || UNet2DConditionModel::new(vs.root(), &cfg)).map_err(|e| e.at(&path))?;
    weights::save_varstore(
        &vs,
        &dir.join("unet/diffusion_pytorch_model.safetensors"),
        None,
    )?;
    Ok(())
}

/// `dir/vae/`: an AutoencoderKL of `config` with weights drawn from `seed`.
pub(crate) fn write_vae(dir: &Path, config: &Value, seed: u64) -> Result<(), DiffusionError> {
    let path = dir.join("vae/config.json");
    write_json(&path, config)?;
    let cfg: AutoencoderKLConfig = parse(config, &path)?;
    let vs = VarStore::new(Device::Cpu);
    noise::seeded(seed, || AutoencoderKL::new(vs.root(), &cfg)).map_err(|e| e.at(&path))?;
    weights::save_varstore(
        &vs,
        &dir.join("vae/diffusion_pytorch_model.safetensors"),
        None,
    )?;
    Ok(())
}
