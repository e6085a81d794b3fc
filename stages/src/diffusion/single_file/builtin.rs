//! The published diffusers configs of the base models a single-file checkpoint may be (as the Hub's
//! stable-diffusion-v1-5, stable-diffusion-2-1-base, stable-diffusion-2-1, stable-diffusion-2-depth and the two
//! inpainting repositories ship them), so a lone `.safetensors` loads with no download. `[model] config =
//! "folder"` overrides them with a diffusers folder's own.

use serde_json::{json, Value};

use super::kind::{CheckpointKind, TextLayout};

/// `unet/config.json`.
pub fn unet(kind: CheckpointKind) -> Value {
    let mut cfg = json!({
        "_class_name": "UNet2DConditionModel",
        "act_fn": "silu",
        "attention_head_dim": 8,
        "block_out_channels": [320, 640, 1280, 1280],
        "center_input_sample": false,
        "cross_attention_dim": 768,
        "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
        "downsample_padding": 1,
        "flip_sin_to_cos": true,
        "freq_shift": 0,
        "in_channels": kind.in_channels(),
        "layers_per_block": 2,
        "mid_block_scale_factor": 1,
        "norm_eps": 1e-05,
        "norm_num_groups": 32,
        "out_channels": 4,
        "sample_size": 64,
        "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    });
    if kind.text_layout() == TextLayout::OpenClip {
        cfg["attention_head_dim"] = json!([5, 10, 20, 20]);
        cfg["cross_attention_dim"] = json!(1024);
        cfg["use_linear_projection"] = json!(true);
    }
    if kind == CheckpointKind::Sd2V {
        // The 768² v-prediction model overflows fp16 in attention; diffusers' config upcasts it.
        cfg["sample_size"] = json!(96);
        cfg["upcast_attention"] = json!(true);
    }
    cfg
}

/// `vae/config.json`: one VAE for every SD 1.x/2.x model.
pub fn vae(kind: CheckpointKind) -> Value {
    json!({
        "_class_name": "AutoencoderKL",
        "act_fn": "silu",
        "block_out_channels": [128, 256, 512, 512],
        "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"],
        "in_channels": 3,
        "latent_channels": 4,
        "layers_per_block": 2,
        "norm_num_groups": 32,
        "out_channels": 3,
        "sample_size": if kind == CheckpointKind::Sd2V { 768 } else { 512 },
        "scaling_factor": 0.18215,
        "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"],
    })
}

/// `text_encoder/config.json`: OpenAI's CLIP ViT-L/14 text model (SD 1.x), or OpenCLIP ViT-H/14's with 23 of
/// its 24 layers (SD 2.x conditions on the penultimate layer).
pub fn text_encoder(kind: CheckpointKind) -> Value {
    match kind.text_layout() {
        TextLayout::Clip => json!({
            "architectures": ["CLIPTextModel"],
            "hidden_act": "quick_gelu",
            "hidden_size": 768,
            "intermediate_size": 3072,
            "layer_norm_eps": 1e-05,
            "max_position_embeddings": 77,
            "num_attention_heads": 12,
            "num_hidden_layers": 12,
            "projection_dim": 768,
            "vocab_size": 49408,
            "bos_token_id": 0,
            "eos_token_id": 2,
            "pad_token_id": 1,
        }),
        TextLayout::OpenClip => json!({
            "architectures": ["CLIPTextModel"],
            "hidden_act": "gelu",
            "hidden_size": 1024,
            "intermediate_size": 4096,
            "layer_norm_eps": 1e-05,
            "max_position_embeddings": 77,
            "num_attention_heads": 16,
            "num_hidden_layers": 23,
            "projection_dim": 512,
            "vocab_size": 49408,
            "bos_token_id": 0,
            "eos_token_id": 2,
            "pad_token_id": 1,
        }),
    }
}

/// `scheduler/scheduler_config.json`.
pub fn scheduler(kind: CheckpointKind) -> Value {
    let mut cfg = json!({
        "_class_name": "PNDMScheduler",
        "beta_end": 0.012,
        "beta_schedule": "scaled_linear",
        "beta_start": 0.00085,
        "clip_sample": false,
        "num_train_timesteps": 1000,
        "prediction_type": "epsilon",
        "set_alpha_to_one": false,
        "skip_prk_steps": true,
        "steps_offset": 1,
        "trained_betas": null,
    });
    if kind == CheckpointKind::Sd2V {
        cfg["_class_name"] = json!("DDIMScheduler");
        cfg["prediction_type"] = json!("v_prediction");
    }
    cfg
}

/// The tokenizer's padding token: SD 1.x pads with `<|endoftext|>`, SD 2.x with `!` (id 0).
pub fn pad_token(kind: CheckpointKind) -> &'static str {
    match kind.text_layout() {
        TextLayout::Clip => "<|endoftext|>",
        TextLayout::OpenClip => "!",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diffusion::pipeline_source::ConfigSet;

    /// Every built-in config parses and validates as the loader reads it, and describes what its kind says.
    #[test]
    fn every_builtin_config_parses_and_fits_its_kind() {
        for kind in CheckpointKind::ALL {
            let set = ConfigSet::Builtin {
                kind,
                checkpoint: "x.safetensors".into(),
            };
            let unet = set.unet().unwrap_or_else(|e| panic!("{kind}: {e}"));
            assert_eq!(unet.in_channels, kind.in_channels(), "{kind}");
            set.vae().unwrap_or_else(|e| panic!("{kind}: {e}"));
            let text = set.text_encoder().unwrap_or_else(|e| panic!("{kind}: {e}"));
            let width = if kind.text_layout() == TextLayout::Clip {
                768
            } else {
                1024
            };
            assert_eq!(text.hidden_size, width, "{kind}");
            set.scheduler().unwrap_or_else(|e| panic!("{kind}: {e}"));
            let v = scheduler(kind)["prediction_type"] == "v_prediction";
            assert_eq!(v, kind == CheckpointKind::Sd2V, "{kind}");
        }
    }
}
