//! `unet/config.json` of a `UNet2DConditionModel`, and the per-block settings it resolves to.

use serde::Deserialize;
use std::path::Path;

use super::config::defaults::*;
use super::config::{
    bool_or_null, check_common, check_groups, read_json, unsupported, ConfigError, PerBlock,
};

/// `unet/config.json` of a `UNet2DConditionModel`.
#[derive(Debug, Clone, Deserialize)]
pub struct UNet2DConditionConfig {
    #[serde(default)]
    pub sample_size: Option<serde_json::Value>,
    #[serde(default = "d_4")]
    pub in_channels: i64,
    #[serde(default = "d_4")]
    pub out_channels: i64,
    #[serde(default, deserialize_with = "bool_or_null")]
    pub center_input_sample: bool,
    #[serde(default = "d_true")]
    pub flip_sin_to_cos: bool,
    #[serde(default)]
    pub freq_shift: f64,
    #[serde(default = "d_unet_down")]
    pub down_block_types: Vec<String>,
    #[serde(default = "d_mid")]
    pub mid_block_type: Option<String>,
    #[serde(default = "d_unet_up")]
    pub up_block_types: Vec<String>,
    #[serde(default = "d_false_per_block")]
    pub only_cross_attention: PerBlock<bool>,
    #[serde(default = "d_unet_channels")]
    pub block_out_channels: Vec<i64>,
    #[serde(default = "d_layers")]
    pub layers_per_block: PerBlock<i64>,
    #[serde(default = "d_1")]
    pub downsample_padding: i64,
    #[serde(default = "d_one_f")]
    pub mid_block_scale_factor: f64,
    #[serde(default = "d_silu")]
    pub act_fn: String,
    #[serde(default = "d_groups")]
    pub norm_num_groups: Option<i64>,
    #[serde(default = "d_eps")]
    pub norm_eps: f64,
    #[serde(default = "d_cross")]
    pub cross_attention_dim: PerBlock<i64>,
    #[serde(default = "d_one_layer")]
    pub transformer_layers_per_block: PerBlock<i64>,
    #[serde(default = "d_head_dim")]
    pub attention_head_dim: PerBlock<i64>,
    #[serde(default)]
    pub num_attention_heads: Option<PerBlock<i64>>,
    #[serde(default, deserialize_with = "bool_or_null")]
    pub dual_cross_attention: bool,
    #[serde(default, deserialize_with = "bool_or_null")]
    pub use_linear_projection: bool,
    #[serde(default)]
    pub class_embed_type: Option<String>,
    #[serde(default)]
    pub addition_embed_type: Option<String>,
    #[serde(default)]
    pub num_class_embeds: Option<i64>,
    /// SDXL: width of each size/crop id's sinusoidal embedding (`add_time_proj`).
    #[serde(default)]
    pub addition_time_embed_dim: Option<i64>,
    /// SDXL: `add_embedding`'s input width, `projection_dim + addition_time_embed_dim × ids`.
    #[serde(default)]
    pub projection_class_embeddings_input_dim: Option<i64>,
    #[serde(default, deserialize_with = "bool_or_null")]
    pub upcast_attention: bool,
    #[serde(default = "d_default")]
    pub resnet_time_scale_shift: String,
    #[serde(default = "d_one_f")]
    pub resnet_out_scale_factor: f64,
    #[serde(default = "d_positional")]
    pub time_embedding_type: String,
    #[serde(default)]
    pub time_embedding_dim: Option<i64>,
    #[serde(default)]
    pub time_embedding_act_fn: Option<String>,
    #[serde(default)]
    pub timestep_post_act: Option<String>,
    #[serde(default)]
    pub time_cond_proj_dim: Option<i64>,
    #[serde(default = "d_3")]
    pub conv_in_kernel: i64,
    #[serde(default = "d_3")]
    pub conv_out_kernel: i64,
    #[serde(default)]
    pub encoder_hid_dim: Option<i64>,
    #[serde(default)]
    pub mid_block_only_cross_attention: Option<bool>,
    #[serde(default)]
    pub cross_attention_norm: Option<String>,
}

impl Default for UNet2DConditionConfig {
    fn default() -> Self {
        serde_json::from_str("{}").unwrap_or_else(|_| unreachable!("every field has a default"))
    }
}

/// The settings each down block needs, resolved from the per-model config (legacy names undone).
#[derive(Debug, Clone, PartialEq)]
pub struct BlockPlan {
    pub layers: Vec<i64>,
    pub heads: Vec<i64>,
    pub cross_attention_dim: Vec<i64>,
    pub transformer_layers: Vec<i64>,
    pub only_cross_attention: Vec<bool>,
}

impl UNet2DConditionConfig {
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let cfg: Self = read_json(path)?;
        cfg.validate().map_err(|e| e.at(path))?;
        Ok(cfg)
    }

    /// Attention heads per down block. diffusers names this `num_attention_heads`; configs that lack it put the
    /// head count in `attention_head_dim` (a naming kept for backward compatibility), so SD 1.x's `8` means 8 heads.
    pub fn heads_per_block(&self) -> Vec<i64> {
        let n = self.down_block_types.len();
        let heads = self
            .num_attention_heads
            .as_ref()
            .unwrap_or(&self.attention_head_dim);
        heads
            .expand(n, "attention_head_dim")
            .unwrap_or_else(|_| vec![8; n])
    }

    /// Group count of every GroupNorm (`validate` rejects `null`).
    pub fn groups(&self) -> i64 {
        self.norm_num_groups.unwrap_or(32)
    }

    /// Per-block settings, checked against the number of down blocks.
    pub fn block_plan(&self) -> Result<BlockPlan, ConfigError> {
        let n = self.down_block_types.len();
        let heads = match &self.num_attention_heads {
            Some(h) => h.expand(n, "num_attention_heads")?,
            None => self.attention_head_dim.expand(n, "attention_head_dim")?,
        };
        Ok(BlockPlan {
            layers: self.layers_per_block.expand(n, "layers_per_block")?,
            heads,
            cross_attention_dim: self.cross_attention_dim.expand(n, "cross_attention_dim")?,
            transformer_layers: self
                .transformer_layers_per_block
                .expand(n, "transformer_layers_per_block")?,
            only_cross_attention: self
                .only_cross_attention
                .expand(n, "only_cross_attention")?,
        })
    }

    /// Whether the UNet takes SDXL's pooled text embedding and size/crop ids (`addition_embed_type = "text_time"`).
    pub fn has_text_time(&self) -> bool {
        self.addition_embed_type.as_deref() == Some("text_time")
    }

    /// `(addition_time_embed_dim, projection_class_embeddings_input_dim)` of an SDXL UNet.
    pub fn text_time_dims(&self) -> Option<(i64, i64)> {
        if !self.has_text_time() {
            return None;
        }
        Some((
            self.addition_time_embed_dim?,
            self.projection_class_embeddings_input_dim?,
        ))
    }

    fn check_text_time(&self) -> Result<(), ConfigError> {
        match self.addition_embed_type.as_deref() {
            None => Ok(()),
            Some("text_time") => match self.text_time_dims() {
                Some((t, p)) if t > 0 && p > t => Ok(()),
                _ => Err(ConfigError::invalid(
                    "addition_time_embed_dim",
                    "is missing or not positive, or `projection_class_embeddings_input_dim` is missing or not \
                     larger, for addition_embed_type \"text_time\"",
                    "give both as the SDXL checkpoint's config.json does (256 and 2816 for SDXL base)",
                )),
            },
            Some(other) => Err(unsupported("addition_embed_type", other)),
        }
    }

    /// Rejects what the networks here do not build, with the field to change.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let n = self.down_block_types.len();
        if n == 0 || n != self.block_out_channels.len() || n != self.up_block_types.len() {
            return Err(ConfigError::invalid(
                "down_block_types",
                format!(
                    "has {n} entries, `up_block_types` {} and `block_out_channels` {}",
                    self.up_block_types.len(),
                    self.block_out_channels.len()
                ),
                "give the three lists the same non-zero length",
            ));
        }
        for t in &self.down_block_types {
            if t != "CrossAttnDownBlock2D" && t != "DownBlock2D" {
                return Err(unsupported("down_block_types", t));
            }
        }
        for t in &self.up_block_types {
            if t != "CrossAttnUpBlock2D" && t != "UpBlock2D" {
                return Err(unsupported("up_block_types", t));
            }
        }
        if let Some(t) = &self.mid_block_type {
            if t != "UNetMidBlock2DCrossAttn" {
                return Err(unsupported("mid_block_type", t));
            }
        }
        let plan = self.block_plan()?;
        for (i, (&h, &c)) in plan.heads.iter().zip(&self.block_out_channels).enumerate() {
            if h <= 0 || c % h != 0 {
                return Err(ConfigError::invalid(
                    "num_attention_heads",
                    format!("gives {h} heads to block {i} of {c} channels"),
                    "use a head count that divides the block's channels",
                ));
            }
        }
        if self.norm_num_groups.is_none() {
            return Err(ConfigError::invalid(
                "norm_num_groups",
                "is null, which diffusers cannot build for these block types either",
                "set it to the group count of the checkpoint's GroupNorms (32 for Stable Diffusion)",
            ));
        }
        check_groups(self.groups(), &self.block_out_channels, "norm_num_groups")?;
        check_common(
            &self.act_fn,
            self.class_embed_type.as_deref(),
            &self.resnet_time_scale_shift,
        )?;
        self.check_text_time()?;
        if self.time_embedding_type != "positional" {
            return Err(unsupported(
                "time_embedding_type",
                &self.time_embedding_type,
            ));
        }
        if self.dual_cross_attention {
            return Err(unsupported("dual_cross_attention", "true"));
        }
        if self.encoder_hid_dim.is_some() || self.time_cond_proj_dim.is_some() {
            return Err(unsupported("encoder_hid_dim/time_cond_proj_dim", "set"));
        }
        if self.conv_in_kernel % 2 == 0 || self.conv_out_kernel % 2 == 0 {
            return Err(ConfigError::invalid(
                "conv_in_kernel",
                "is even",
                "use an odd kernel size (diffusers pads by (k - 1) / 2)",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The published SDXL base config writes `"upcast_attention": null` (and other nulls) and must parse.
    #[test]
    fn null_booleans_of_published_configs_read_as_false() {
        let c: UNet2DConditionConfig = serde_json::from_value(serde_json::json!({
            "upcast_attention": null, "use_linear_projection": true, "center_input_sample": null,
            "num_attention_heads": null, "class_embed_type": null, "addition_embed_type": "text_time",
        }))
        .unwrap();
        assert!(!c.upcast_attention && !c.center_input_sample && c.use_linear_projection);
    }

    #[test]
    fn legacy_head_dim_means_heads() {
        let c: UNet2DConditionConfig =
            serde_json::from_str(r#"{"attention_head_dim": 8}"#).unwrap();
        assert_eq!(c.heads_per_block(), vec![8, 8, 8, 8]);
        let c: UNet2DConditionConfig = serde_json::from_str(
            r#"{"attention_head_dim": [5, 10, 20, 20], "_class_name": "UNet2DConditionModel"}"#,
        )
        .unwrap();
        assert_eq!(c.heads_per_block(), vec![5, 10, 20, 20]);
        let c: UNet2DConditionConfig = serde_json::from_str(
            r#"{"attention_head_dim": 64, "num_attention_heads": [5, 10, 20, 20]}"#,
        )
        .unwrap();
        assert_eq!(c.heads_per_block(), vec![5, 10, 20, 20]);
        c.validate().unwrap();
    }

    #[test]
    fn wrong_list_length_is_reported() {
        let c: UNet2DConditionConfig =
            serde_json::from_str(r#"{"layers_per_block": [1, 2]}"#).unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("layers_per_block"), "{e}");
    }

    #[test]
    fn parse_error_has_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.json");
        std::fs::write(&p, "{\n \"in_channels\": \"x\"\n}").unwrap();
        match UNet2DConditionConfig::from_file(&p) {
            Err(ConfigError::Parse { line, .. }) => assert_eq!(line, 2),
            other => panic!("expected a parse error, got {other:?}"),
        }
    }
}
