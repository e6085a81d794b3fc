//! A diffusers AutoencoderKL variable's key in the original (LDM) layout: `down.{i}.block.{j}`,
//! `mid.block_{1,2}`, `mid.attn_1` (its q/k/v/proj_out are 1×1 convolutions, read as linear weights), and the
//! decoder's `up.{i}` numbered from the lowest resolution, the reverse of diffusers' `up_blocks`. Also the older
//! diffusers names of the mid-block attention (`query`, `key`, `value`, `proj_attn`), which diffusers still renames
//! on load.

use crate::diffusion::weights::{Source, Transform};

const ATTENTION: [(&str, &str); 5] = [
    ("group_norm", "norm"),
    ("to_q", "q"),
    ("to_k", "k"),
    ("to_v", "v"),
    ("to_out.0", "proj_out"),
];

const LEGACY_ATTENTION: [(&str, &str); 4] = [
    ("to_q", "query"),
    ("to_k", "key"),
    ("to_v", "value"),
    ("to_out.0", "proj_attn"),
];

/// The LDM key (without `first_stage_model.`) of a diffusers VAE key, and whether it is a 1×1 conv to squeeze.
/// `up_blocks`: the number of decoder blocks.
pub fn ldm_key(name: &str, up_blocks: usize) -> Option<(String, Transform)> {
    let p: Vec<&str> = name.split('.').collect();
    let side = *p.first()?;
    if matches!(side, "quant_conv" | "post_quant_conv") {
        return Some((name.to_owned(), Transform::Same));
    }
    if !matches!(side, "encoder" | "decoder") {
        return None;
    }
    let same = |k: String| Some((k, Transform::Same));
    let leaf = *p.last()?;
    let shortcut = |parts: &[&str]| parts.join(".").replace("conv_shortcut", "nin_shortcut");
    match *p.get(1)? {
        "conv_in" | "conv_out" => same(name.to_owned()),
        "conv_norm_out" => same(format!("{side}.norm_out.{leaf}")),
        "mid_block" => match *p.get(2)? {
            "resnets" => {
                let i: usize = p.get(3)?.parse().ok()?;
                same(format!(
                    "{side}.mid.block_{}.{}",
                    i + 1,
                    shortcut(p.get(4..)?)
                ))
            }
            "attentions" => {
                let inner = p.get(4..p.len() - 1)?.join(".");
                let (_, old) = ATTENTION.iter().find(|(new, _)| *new == inner)?;
                let transform = if inner != "group_norm" && leaf == "weight" {
                    Transform::SqueezeConv
                } else {
                    Transform::Same
                };
                Some((format!("{side}.mid.attn_1.{old}.{leaf}"), transform))
            }
            _ => None,
        },
        blocks @ ("down_blocks" | "up_blocks") => {
            let i: usize = p.get(2)?.parse().ok()?;
            let (ldm_i, block, sampler) = if blocks == "down_blocks" {
                (i, "down", "downsample")
            } else {
                (up_blocks.checked_sub(i + 1)?, "up", "upsample")
            };
            match *p.get(3)? {
                "resnets" => same(format!(
                    "{side}.{block}.{ldm_i}.block.{}.{}",
                    p.get(4)?,
                    shortcut(p.get(5..)?)
                )),
                "downsamplers" | "upsamplers" => {
                    same(format!("{side}.{block}.{ldm_i}.{sampler}.conv.{leaf}"))
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// Where a VAE variable comes from in a single file whose VAE tensors start with `prefix` (`first_stage_model.` in
/// a full checkpoint, nothing in a standalone VAE file).
pub fn sources(name: &str, up_blocks: usize, prefix: &str) -> Vec<Source> {
    ldm_key(name, up_blocks)
        .map(|(k, t)| vec![Source::with(format!("{prefix}{k}"), t)])
        .unwrap_or_default()
}

/// A diffusers-folder VAE variable: its own name, then the older diffusers name of the same attention weight.
pub fn folder_sources(name: &str) -> Vec<Source> {
    let mut out = vec![Source::same(name)];
    if let Some((head, tail)) = name.split_once(".mid_block.attentions.0.") {
        for (new, old) in LEGACY_ATTENTION {
            if let Some(leaf) = tail.strip_prefix(&format!("{new}.")) {
                out.push(Source::same(format!(
                    "{head}.mid_block.attentions.0.{old}.{leaf}"
                )));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vae_keys_land_where_the_original_layout_has_them() {
        for (diffusers, ldm, t) in [
            (
                "encoder.conv_in.weight",
                "encoder.conv_in.weight",
                Transform::Same,
            ),
            (
                "encoder.conv_norm_out.bias",
                "encoder.norm_out.bias",
                Transform::Same,
            ),
            (
                "encoder.down_blocks.1.resnets.0.conv_shortcut.weight",
                "encoder.down.1.block.0.nin_shortcut.weight",
                Transform::Same,
            ),
            (
                "encoder.down_blocks.2.downsamplers.0.conv.bias",
                "encoder.down.2.downsample.conv.bias",
                Transform::Same,
            ),
            (
                "decoder.up_blocks.0.resnets.2.norm1.weight",
                "decoder.up.3.block.2.norm1.weight",
                Transform::Same,
            ),
            (
                "decoder.up_blocks.2.upsamplers.0.conv.weight",
                "decoder.up.1.upsample.conv.weight",
                Transform::Same,
            ),
            (
                "decoder.mid_block.resnets.1.conv2.weight",
                "decoder.mid.block_2.conv2.weight",
                Transform::Same,
            ),
            (
                "encoder.mid_block.attentions.0.to_out.0.weight",
                "encoder.mid.attn_1.proj_out.weight",
                Transform::SqueezeConv,
            ),
            (
                "encoder.mid_block.attentions.0.to_q.bias",
                "encoder.mid.attn_1.q.bias",
                Transform::Same,
            ),
            (
                "decoder.mid_block.attentions.0.group_norm.weight",
                "decoder.mid.attn_1.norm.weight",
                Transform::Same,
            ),
            (
                "post_quant_conv.weight",
                "post_quant_conv.weight",
                Transform::Same,
            ),
        ] {
            assert_eq!(
                ldm_key(diffusers, 4),
                Some((ldm.to_owned(), t)),
                "{diffusers}"
            );
        }
        assert_eq!(
            ldm_key("decoder.up_blocks.4.resnets.0.conv1.weight", 4),
            None
        );
    }

    #[test]
    fn legacy_attention_names_are_a_fallback() {
        let s = folder_sources("decoder.mid_block.attentions.0.to_out.0.bias");
        assert_eq!(s.len(), 2);
        assert_eq!(s[1].key, "decoder.mid_block.attentions.0.proj_attn.bias");
        assert_eq!(folder_sources("decoder.conv_in.weight").len(), 1);
    }
}
