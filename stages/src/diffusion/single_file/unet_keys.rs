//! A diffusers UNet variable's key in the original (LDM) layout. LDM numbers its blocks flat: `input_blocks.0` is
//! `conv_in`, then each down block's layers (`.0` the resnet, `.1` its attention) and its downsampler; each up
//! block has one layer more than its down block, its upsampler sitting in the last one (`.1`, or `.2` after an
//! attention). Resnets rename their layers (`in_layers.0` → `norm1`, …). SDXL's SGM files use the same numbering
//! (a block without attention simply has no `.1`), plus `label_emb` for the added embedding.

use crate::diffusion::config::ConfigError;
use crate::diffusion::unet_config::UNet2DConditionConfig;
use crate::diffusion::weights::Source;

use super::kind::UNET_PREFIX;

const RESNET: [(&str, &str); 6] = [
    ("norm1", "in_layers.0"),
    ("conv1", "in_layers.2"),
    ("time_emb_proj", "emb_layers.1"),
    ("norm2", "out_layers.0"),
    ("conv2", "out_layers.3"),
    ("conv_shortcut", "skip_connection"),
];

fn resnet(rest: &str) -> Option<String> {
    let (head, tail) = rest.split_once('.')?;
    RESNET
        .iter()
        .find(|(new, _)| *new == head)
        .map(|(_, old)| format!("{old}.{tail}"))
}

/// The block arithmetic of one UNet config.
pub struct UNetKeys {
    layers: Vec<i64>,
    up_has_attention: Vec<bool>,
    ema: bool,
}

impl UNetKeys {
    /// `ema`: read the `model_ema.*` copy instead (as diffusers' `extract_ema`).
    pub fn new(cfg: &UNet2DConditionConfig, ema: bool) -> Result<Self, ConfigError> {
        let n = cfg.down_block_types.len();
        Ok(Self {
            layers: cfg.layers_per_block.expand(n, "layers_per_block")?,
            up_has_attention: cfg
                .up_block_types
                .iter()
                .map(|t| t.starts_with("CrossAttn"))
                .collect(),
            ema,
        })
    }

    /// The LDM key (without `model.diffusion_model.`) of a diffusers UNet key.
    pub fn ldm_key(&self, name: &str) -> Option<String> {
        let p: Vec<&str> = name.split('.').collect();
        let rest = |from: usize| p.get(from..).map(|r| r.join("."));
        let simple = [
            ("time_embedding.linear_1", "time_embed.0"),
            ("time_embedding.linear_2", "time_embed.2"),
            ("conv_in", "input_blocks.0.0"),
            ("conv_norm_out", "out.0"),
            ("conv_out", "out.2"),
            // SDXL's text_time embedding: SGM's `label_emb` is Sequential(Linear, SiLU, Linear).
            ("add_embedding.linear_1", "label_emb.0.0"),
            ("add_embedding.linear_2", "label_emb.0.2"),
        ];
        for (new, old) in simple {
            let depth = new.matches('.').count() + 1;
            if p.len() > depth && p[..depth].join(".") == new {
                return Some(format!("{old}.{}", rest(depth)?));
            }
        }
        let index = |i: usize| p.get(i)?.parse::<usize>().ok();
        match *p.first()? {
            "down_blocks" => {
                let (b, i) = (index(1)?, index(3)?);
                let start = 1 + self.layers.get(..b)?.iter().map(|l| l + 1).sum::<i64>();
                match *p.get(2)? {
                    "resnets" => Some(format!(
                        "input_blocks.{}.0.{}",
                        start + i as i64,
                        resnet(&rest(4)?)?
                    )),
                    "attentions" => {
                        Some(format!("input_blocks.{}.1.{}", start + i as i64, rest(4)?))
                    }
                    "downsamplers" => Some(format!(
                        "input_blocks.{}.0.op.{}",
                        start + self.layers.get(b)?,
                        rest(5)?
                    )),
                    _ => None,
                }
            }
            "mid_block" => {
                let i = index(2)?;
                match *p.get(1)? {
                    "resnets" => Some(format!("middle_block.{}.{}", 2 * i, resnet(&rest(3)?)?)),
                    "attentions" if i == 0 => Some(format!("middle_block.1.{}", rest(3)?)),
                    _ => None,
                }
            }
            "up_blocks" => {
                let rev: Vec<i64> = self.layers.iter().rev().copied().collect();
                let (b, i) = (index(1)?, index(3)?);
                let start = rev.get(..b)?.iter().map(|l| l + 1).sum::<i64>();
                match *p.get(2)? {
                    "resnets" => Some(format!(
                        "output_blocks.{}.0.{}",
                        start + i as i64,
                        resnet(&rest(4)?)?
                    )),
                    "attentions" => {
                        Some(format!("output_blocks.{}.1.{}", start + i as i64, rest(4)?))
                    }
                    "upsamplers" => {
                        let slot = if *self.up_has_attention.get(b)? { 2 } else { 1 };
                        Some(format!(
                            "output_blocks.{}.{slot}.{}",
                            start + rev.get(b)?,
                            rest(4)?
                        ))
                    }
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// Where a UNet variable comes from in the single file.
    pub fn sources(&self, name: &str) -> Vec<Source> {
        let Some(ldm) = self.ldm_key(name) else {
            return Vec::new();
        };
        if self.ema {
            // diffusers' `extract_ema`: the EMA copy's keys are the plain ones with every dot removed.
            let flat = format!("diffusion_model.{ldm}").replace('.', "");
            return vec![Source::same(format!("model_ema.{flat}"))];
        }
        vec![Source::same(format!("{UNET_PREFIX}{ldm}"))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sd15() -> UNetKeys {
        let cfg: UNet2DConditionConfig = serde_json::from_value(serde_json::json!({
            "block_out_channels": [320, 640, 1280, 1280],
            "layers_per_block": 2,
            "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
            "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
        }))
        .unwrap();
        UNetKeys::new(&cfg, false).unwrap()
    }

    #[test]
    fn sd15_keys_land_where_the_original_layout_has_them() {
        let k = sd15();
        for (diffusers, ldm) in [
            ("conv_in.weight", "input_blocks.0.0.weight"),
            ("time_embedding.linear_2.bias", "time_embed.2.bias"),
            (
                "down_blocks.0.resnets.1.conv1.weight",
                "input_blocks.2.0.in_layers.2.weight",
            ),
            (
                "down_blocks.0.attentions.1.transformer_blocks.0.attn2.to_k.weight",
                "input_blocks.2.1.transformer_blocks.0.attn2.to_k.weight",
            ),
            (
                "down_blocks.0.downsamplers.0.conv.weight",
                "input_blocks.3.0.op.weight",
            ),
            (
                "down_blocks.1.resnets.0.conv_shortcut.bias",
                "input_blocks.4.0.skip_connection.bias",
            ),
            (
                "down_blocks.3.resnets.1.norm2.weight",
                "input_blocks.11.0.out_layers.0.weight",
            ),
            (
                "mid_block.resnets.1.time_emb_proj.weight",
                "middle_block.2.emb_layers.1.weight",
            ),
            (
                "mid_block.attentions.0.proj_in.weight",
                "middle_block.1.proj_in.weight",
            ),
            (
                "up_blocks.0.resnets.2.conv2.weight",
                "output_blocks.2.0.out_layers.3.weight",
            ),
            (
                "up_blocks.0.upsamplers.0.conv.weight",
                "output_blocks.2.1.conv.weight",
            ),
            (
                "up_blocks.1.upsamplers.0.conv.bias",
                "output_blocks.5.2.conv.bias",
            ),
            (
                "up_blocks.3.resnets.2.conv_shortcut.weight",
                "output_blocks.11.0.skip_connection.weight",
            ),
            (
                "up_blocks.3.attentions.2.proj_out.bias",
                "output_blocks.11.1.proj_out.bias",
            ),
            ("conv_norm_out.weight", "out.0.weight"),
            ("conv_out.bias", "out.2.bias"),
        ] {
            assert_eq!(k.ldm_key(diffusers).as_deref(), Some(ldm), "{diffusers}");
        }
        assert_eq!(k.ldm_key("class_embedding.linear_1.weight"), None);
        assert_eq!(k.ldm_key("down_blocks.x.resnets.0.conv1.weight"), None);
    }

    #[test]
    fn ema_keys_are_the_flattened_names() {
        let cfg: UNet2DConditionConfig = serde_json::from_value(serde_json::json!({})).unwrap();
        let k = UNetKeys::new(&cfg, true).unwrap();
        assert_eq!(
            k.sources("conv_in.weight")[0].key,
            "model_ema.diffusion_modelinput_blocks00weight"
        );
    }
}
