//! `config.json` of each network as diffusers and transformers write it. Defaults are theirs; fields we do not use
//! are ignored, because real configs carry many (`_class_name`, `_diffusers_version`, …).

use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Why a config could not be read or does not describe a network we can build.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}; check that the model folder is complete")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config {path} is not valid JSON for this network at line {line}, column {column}: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("config {path}: field `{field}` {message}; {fix}")]
    Invalid {
        path: PathBuf,
        field: String,
        message: String,
        fix: String,
    },
}

impl ConfigError {
    /// An `Invalid` error for a config not read from a file (built in code, or already parsed).
    pub fn invalid(field: &str, message: impl Into<String>, fix: impl Into<String>) -> Self {
        ConfigError::Invalid {
            path: PathBuf::from("<config>"),
            field: field.to_string(),
            message: message.into(),
            fix: fix.into(),
        }
    }

    /// Puts the file path into an error raised while validating a config in memory.
    pub fn at(self, file: &Path) -> Self {
        match self {
            ConfigError::Invalid {
                field,
                message,
                fix,
                ..
            } => ConfigError::Invalid {
                path: file.to_path_buf(),
                field,
                message,
                fix,
            },
            other => other,
        }
    }
}

pub(crate) fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    parse_json(path, &read_text(path)?)
}

pub(crate) fn read_text(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Parses `text`, read from `path`, reporting serde's line and column.
pub(crate) fn parse_json<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, ConfigError> {
    serde_json::from_str(text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })
}

/// serde's `default = "…"` needs a function per default value; this writes them one per line.
macro_rules! defaults {
    ($($name:ident: $t:ty = $v:expr;)*) => { $(pub(crate) fn $name() -> $t { $v })* };
}

/// A boolean a config may write as `null` (stable-diffusion-xl-base-1.0 has `"upcast_attention": null`): null
/// is false, as Python's truthiness reads it.
pub(crate) fn bool_or_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(<Option<bool> as serde::Deserialize>::deserialize(d)?.unwrap_or(false))
}

/// Default values of config fields, shared with the ControlNet config.
pub(crate) mod defaults {
    use super::PerBlock;
    defaults! {
    d_true: bool = true;
    d_4: i64 = 4;
    d_3: i64 = 3;
    d_1: i64 = 1;
    d_silu: String = "silu".into();
    d_eps: f64 = 1e-5;
    d_groups: Option<i64> = Some(32);
    d_one_f: f64 = 1.0;
    d_unet_down: Vec<String> = ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"]
        .map(String::from).to_vec();
    d_unet_up: Vec<String> = ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]
        .map(String::from).to_vec();
    d_mid: Option<String> = Some("UNetMidBlock2DCrossAttn".into());
    d_unet_channels: Vec<i64> = vec![320, 640, 1280, 1280];
    d_layers: PerBlock<i64> = PerBlock::One(2);
    d_head_dim: PerBlock<i64> = PerBlock::One(8);
    d_cross: PerBlock<i64> = PerBlock::One(1280);
    d_one_layer: PerBlock<i64> = PerBlock::One(1);
    d_false_per_block: PerBlock<bool> = PerBlock::One(false);
    d_default: String = "default".into();
    d_positional: String = "positional".into();
    d_rgb: String = "rgb".into();
    d_cond_channels: Vec<i64> = vec![16, 32, 96, 256];
    d_vae_down: Vec<String> = vec!["DownEncoderBlock2D".into()];
    d_vae_up: Vec<String> = vec!["UpDecoderBlock2D".into()];
    d_64: Vec<i64> = vec![64];
    d_vae_groups: i64 = 32;
    d_scaling: f64 = 0.18215;
    d_clip_layers: i64 = 12;
    d_vocab: i64 = 49408;
    d_512: i64 = 512;
    d_2048: i64 = 2048;
    d_8: i64 = 8;
    d_77: i64 = 77;
    d_quick_gelu: String = "quick_gelu".into();
    d_eos: i64 = 49407;
    }
}
use defaults::*;

/// A setting given once for all blocks or once per block (diffusers accepts both).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum PerBlock<T> {
    One(T),
    Each(Vec<T>),
}

impl<T: Clone> PerBlock<T> {
    /// The value for each of `n` blocks; a list of another length is an error naming `field`.
    pub fn expand(&self, n: usize, field: &str) -> Result<Vec<T>, ConfigError> {
        match self {
            PerBlock::One(v) => Ok(vec![v.clone(); n]),
            PerBlock::Each(v) if v.len() == n => Ok(v.clone()),
            PerBlock::Each(v) => Err(ConfigError::invalid(
                field,
                format!("has {} entries but there are {n} down blocks", v.len()),
                "give one value, or one per entry of `down_block_types`",
            )),
        }
    }
}

pub(crate) fn unsupported(field: &str, value: &str) -> ConfigError {
    ConfigError::invalid(
        field,
        format!("is `{value}`, which texaug does not build"),
        "use a Stable Diffusion 1.x/2.x model (UNet2DConditionModel with cross-attention blocks)",
    )
}

pub(crate) fn check_groups(groups: i64, channels: &[i64], field: &str) -> Result<(), ConfigError> {
    if let Some(c) = channels.iter().find(|&&c| groups <= 0 || c % groups != 0) {
        return Err(ConfigError::invalid(
            field,
            format!("is {groups}, which does not divide {c} channels"),
            "use a group count that divides every entry of `block_out_channels`",
        ));
    }
    Ok(())
}

pub(crate) fn check_common(
    act_fn: &str,
    class_embed: Option<&str>,
    shift: &str,
) -> Result<(), ConfigError> {
    if act_fn != "silu" && act_fn != "swish" {
        return Err(unsupported("act_fn", act_fn));
    }
    if let Some(t) = class_embed {
        return Err(unsupported("class_embed_type", t));
    }
    if shift != "default" {
        return Err(unsupported("resnet_time_scale_shift", shift));
    }
    Ok(())
}

/// `vae/config.json` of an `AutoencoderKL`.
#[derive(Debug, Clone, Deserialize)]
pub struct AutoencoderKLConfig {
    #[serde(default = "d_3")]
    pub in_channels: i64,
    #[serde(default = "d_3")]
    pub out_channels: i64,
    #[serde(default = "d_vae_down")]
    pub down_block_types: Vec<String>,
    #[serde(default = "d_vae_up")]
    pub up_block_types: Vec<String>,
    #[serde(default = "d_64")]
    pub block_out_channels: Vec<i64>,
    #[serde(default = "d_1")]
    pub layers_per_block: i64,
    #[serde(default = "d_silu")]
    pub act_fn: String,
    #[serde(default = "d_4")]
    pub latent_channels: i64,
    #[serde(default = "d_vae_groups")]
    pub norm_num_groups: i64,
    #[serde(default)]
    pub sample_size: Option<serde_json::Value>,
    #[serde(default = "d_scaling")]
    pub scaling_factor: f64,
    #[serde(default)]
    pub shift_factor: Option<f64>,
    #[serde(default = "d_true")]
    pub force_upcast: bool,
    #[serde(default = "d_true")]
    pub use_quant_conv: bool,
    #[serde(default = "d_true")]
    pub use_post_quant_conv: bool,
    #[serde(default = "d_true")]
    pub mid_block_add_attention: bool,
}

impl Default for AutoencoderKLConfig {
    fn default() -> Self {
        serde_json::from_str("{}").unwrap_or_else(|_| unreachable!("every field has a default"))
    }
}

impl AutoencoderKLConfig {
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let cfg: Self = read_json(path)?;
        cfg.validate().map_err(|e| e.at(path))?;
        Ok(cfg)
    }

    /// Pixels per latent along each side: every block but the last halves the resolution.
    pub fn scale_factor(&self) -> i64 {
        1 << (self.block_out_channels.len().max(1) - 1)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let n = self.block_out_channels.len();
        if n == 0 || self.down_block_types.len() != n || self.up_block_types.len() != n {
            return Err(ConfigError::invalid(
                "block_out_channels",
                format!(
                    "has {n} entries, `down_block_types` {} and `up_block_types` {}",
                    self.down_block_types.len(),
                    self.up_block_types.len()
                ),
                "give the three lists the same non-zero length",
            ));
        }
        if let Some(t) = self
            .down_block_types
            .iter()
            .find(|t| *t != "DownEncoderBlock2D")
        {
            return Err(unsupported("down_block_types", t));
        }
        if let Some(t) = self
            .up_block_types
            .iter()
            .find(|t| *t != "UpDecoderBlock2D")
        {
            return Err(unsupported("up_block_types", t));
        }
        check_groups(
            self.norm_num_groups,
            &self.block_out_channels,
            "norm_num_groups",
        )?;
        check_common(&self.act_fn, None, "default")
    }
}

/// `text_encoder/config.json` of a `CLIPTextModel`.
#[derive(Debug, Clone, Deserialize)]
pub struct ClipTextConfig {
    #[serde(default = "d_vocab")]
    pub vocab_size: i64,
    #[serde(default = "d_512")]
    pub hidden_size: i64,
    #[serde(default = "d_2048")]
    pub intermediate_size: i64,
    #[serde(default)]
    pub projection_dim: Option<i64>,
    #[serde(default = "d_clip_layers")]
    pub num_hidden_layers: i64,
    #[serde(default = "d_8")]
    pub num_attention_heads: i64,
    #[serde(default = "d_77")]
    pub max_position_embeddings: i64,
    #[serde(default = "d_quick_gelu")]
    pub hidden_act: String,
    #[serde(default = "d_eps")]
    pub layer_norm_eps: f64,
    #[serde(default)]
    pub pad_token_id: Option<i64>,
    #[serde(default)]
    pub bos_token_id: Option<i64>,
    #[serde(default = "d_eos")]
    pub eos_token_id: i64,
}

impl Default for ClipTextConfig {
    fn default() -> Self {
        serde_json::from_str("{}").unwrap_or_else(|_| unreachable!("every field has a default"))
    }
}

impl ClipTextConfig {
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let cfg: Self = read_json(path)?;
        cfg.validate().map_err(|e| e.at(path))?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.num_attention_heads <= 0 || self.hidden_size % self.num_attention_heads != 0 {
            return Err(ConfigError::invalid(
                "num_attention_heads",
                format!(
                    "is {}, which does not divide hidden_size {}",
                    self.num_attention_heads, self.hidden_size
                ),
                "use a head count that divides `hidden_size`",
            ));
        }
        if !matches!(self.hidden_act.as_str(), "quick_gelu" | "gelu") {
            return Err(unsupported("hidden_act", &self.hidden_act));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vae_scale_factor() {
        let c: AutoencoderKLConfig = serde_json::from_str(
            r#"{"block_out_channels": [128, 256, 512, 512],
               "down_block_types": ["DownEncoderBlock2D","DownEncoderBlock2D","DownEncoderBlock2D","DownEncoderBlock2D"],
               "up_block_types": ["UpDecoderBlock2D","UpDecoderBlock2D","UpDecoderBlock2D","UpDecoderBlock2D"]}"#,
        )
        .unwrap();
        c.validate().unwrap();
        assert_eq!(c.scale_factor(), 8);
        assert_eq!(c.scaling_factor, 0.18215);
    }

    #[test]
    fn clip_defaults() {
        let c = ClipTextConfig::default();
        assert_eq!(c.hidden_act, "quick_gelu");
        assert_eq!(c.max_position_embeddings, 77);
    }
}
