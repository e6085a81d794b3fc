//! A text-encoder variable's key in a single file. SD 1.x stores transformers' CLIPTextModel under
//! `cond_stage_model.transformer.` (older files without the inner `text_model.`); SD 2.x stores open_clip's model
//! under `cond_stage_model.model.`, with q, k and v fused in one `in_proj` and one block more than the config's
//! layers (SD 2 conditions on the penultimate layer, so the last block is never read).

use crate::diffusion::weights::{Source, Transform};

use super::kind::{TextLayout, CLIP_PREFIX, OPEN_CLIP_PREFIX};

/// Where a CLIPTextModel variable (named `text_model.…`) comes from.
pub fn sources(name: &str, layout: TextLayout) -> Vec<Source> {
    let Some(inner) = name.strip_prefix("text_model.") else {
        return Vec::new();
    };
    match layout {
        TextLayout::Clip => vec![
            Source::same(format!("{CLIP_PREFIX}{name}")),
            Source::same(format!("{CLIP_PREFIX}{inner}")),
        ],
        TextLayout::OpenClip => open_clip_key(inner)
            .map(|(k, t)| vec![Source::with(format!("{OPEN_CLIP_PREFIX}{k}"), t)])
            .unwrap_or_default(),
    }
}

fn open_clip_key(inner: &str) -> Option<(String, Transform)> {
    let same = |k: String| Some((k, Transform::Same));
    match inner {
        "embeddings.token_embedding.weight" => return same("token_embedding.weight".into()),
        "embeddings.position_embedding.weight" => return same("positional_embedding".into()),
        _ => {}
    }
    if let Some(leaf) = inner.strip_prefix("final_layer_norm.") {
        return same(format!("ln_final.{leaf}"));
    }
    let rest = inner.strip_prefix("encoder.layers.")?;
    let (i, rest) = rest.split_once('.')?;
    let (module, leaf) = rest.rsplit_once('.')?;
    let block = format!("transformer.resblocks.{i}");
    let fused = |k: usize| Some((format!("{block}.attn.in_proj_{leaf}"), Transform::Third(k)));
    match module {
        "self_attn.q_proj" => fused(0),
        "self_attn.k_proj" => fused(1),
        "self_attn.v_proj" => fused(2),
        "self_attn.out_proj" => same(format!("{block}.attn.out_proj.{leaf}")),
        "layer_norm1" => same(format!("{block}.ln_1.{leaf}")),
        "layer_norm2" => same(format!("{block}.ln_2.{leaf}")),
        "mlp.fc1" => same(format!("{block}.mlp.c_fc.{leaf}")),
        "mlp.fc2" => same(format!("{block}.mlp.c_proj.{leaf}")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_clip_keys_and_the_fused_projection() {
        let s = sources(
            "text_model.encoder.layers.3.self_attn.v_proj.weight",
            TextLayout::OpenClip,
        );
        assert_eq!(
            s,
            vec![Source::with(
                "cond_stage_model.model.transformer.resblocks.3.attn.in_proj_weight",
                Transform::Third(2)
            )]
        );
        let s = sources(
            "text_model.encoder.layers.0.mlp.fc2.bias",
            TextLayout::OpenClip,
        );
        assert_eq!(
            s[0].key,
            "cond_stage_model.model.transformer.resblocks.0.mlp.c_proj.bias"
        );
        let s = sources(
            "text_model.embeddings.position_embedding.weight",
            TextLayout::OpenClip,
        );
        assert_eq!(s[0].key, "cond_stage_model.model.positional_embedding");
        let s = sources("text_model.final_layer_norm.weight", TextLayout::Clip);
        assert_eq!(
            s.iter().map(|s| s.key.as_str()).collect::<Vec<_>>(),
            [
                "cond_stage_model.transformer.text_model.final_layer_norm.weight",
                "cond_stage_model.transformer.final_layer_norm.weight"
            ]
        );
    }
}
