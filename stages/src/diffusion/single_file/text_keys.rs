//! A text-encoder variable's key in a single file. SD 1.x stores transformers' CLIPTextModel under
//! `cond_stage_model.transformer.` (older files without the inner `text_model.`); SD 2.x stores open_clip's model
//! under `cond_stage_model.model.`, with q, k and v fused in one `in_proj` and one block more than the config's
//! layers (SD 2 conditions on the penultimate layer, so the last block is never read). SDXL (SGM) stores CLIP
//! ViT-L as transformers names it under `conditioner.embedders.0.transformer.` and OpenCLIP bigG as open_clip
//! names it under `conditioner.embedders.1.model.` (the refiner: `.0.model.`), its `text_projection` a matrix
//! applied as `x @ p`, the transpose of the diffusers Linear.

use crate::diffusion::weights::{Source, Transform};

use super::kind::{
    TextLayout, CLIP_PREFIX, OPEN_CLIP_PREFIX, XL_CLIP_PREFIX, XL_OPEN_CLIP_PREFIX,
    XL_REFINER_OPEN_CLIP_PREFIX,
};

/// Where a variable of the text encoder in `component` (`text_encoder`, or SDXL's `text_encoder_2`) comes from:
/// a CLIPTextModel variable named `text_model.…`, or `text_projection.weight` of a CLIPTextModelWithProjection.
pub fn sources(name: &str, layout: TextLayout, component: &str) -> Vec<Source> {
    let second = component == "text_encoder_2";
    let (prefix, open_clip) = match (layout, second) {
        (TextLayout::Clip, false) => (CLIP_PREFIX, false),
        (TextLayout::OpenClip, false) => (OPEN_CLIP_PREFIX, true),
        (TextLayout::Xl, false) => (XL_CLIP_PREFIX, false),
        (TextLayout::Xl, true) => (XL_OPEN_CLIP_PREFIX, true),
        (TextLayout::XlRefiner, true) => (XL_REFINER_OPEN_CLIP_PREFIX, true),
        // The file has no such encoder: nothing to read (the load names the missing variable).
        _ => return Vec::new(),
    };
    if name == "text_projection.weight" {
        return if open_clip {
            vec![Source::with(
                format!("{prefix}text_projection"),
                Transform::Transpose,
            )]
        } else {
            Vec::new()
        };
    }
    let Some(inner) = name.strip_prefix("text_model.") else {
        return Vec::new();
    };
    if open_clip {
        open_clip_key(inner)
            .map(|(k, t)| vec![Source::with(format!("{prefix}{k}"), t)])
            .unwrap_or_default()
    } else {
        vec![
            Source::same(format!("{prefix}{name}")),
            Source::same(format!("{prefix}{inner}")),
        ]
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
            "text_encoder",
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
            "text_encoder",
        );
        assert_eq!(
            s[0].key,
            "cond_stage_model.model.transformer.resblocks.0.mlp.c_proj.bias"
        );
        let s = sources(
            "text_model.embeddings.position_embedding.weight",
            TextLayout::OpenClip,
            "text_encoder",
        );
        assert_eq!(s[0].key, "cond_stage_model.model.positional_embedding");
        let s = sources(
            "text_model.final_layer_norm.weight",
            TextLayout::Clip,
            "text_encoder",
        );
        assert_eq!(
            s.iter().map(|s| s.key.as_str()).collect::<Vec<_>>(),
            [
                "cond_stage_model.transformer.text_model.final_layer_norm.weight",
                "cond_stage_model.transformer.final_layer_norm.weight"
            ]
        );
    }

    #[test]
    fn sdxl_towers_read_their_own_prefixes() {
        let s = sources(
            "text_model.encoder.layers.1.mlp.fc1.weight",
            TextLayout::Xl,
            "text_encoder",
        );
        assert_eq!(
            s[0].key,
            "conditioner.embedders.0.transformer.text_model.encoder.layers.1.mlp.fc1.weight"
        );
        let s = sources(
            "text_model.encoder.layers.1.self_attn.k_proj.bias",
            TextLayout::Xl,
            "text_encoder_2",
        );
        assert_eq!(
            s,
            vec![Source::with(
                "conditioner.embedders.1.model.transformer.resblocks.1.attn.in_proj_bias",
                Transform::Third(1)
            )]
        );
        let s = sources(
            "text_projection.weight",
            TextLayout::XlRefiner,
            "text_encoder_2",
        );
        assert_eq!(
            s,
            vec![Source::with(
                "conditioner.embedders.0.model.text_projection",
                Transform::Transpose
            )]
        );
        // a refiner file has no first encoder, an SD file no second
        assert!(sources(
            "text_model.final_layer_norm.bias",
            TextLayout::XlRefiner,
            "text_encoder"
        )
        .is_empty());
        assert!(sources(
            "text_model.final_layer_norm.bias",
            TextLayout::Clip,
            "text_encoder_2"
        )
        .is_empty());
    }
}
