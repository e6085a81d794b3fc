//! The published diffusers configs of the base models a single-file checkpoint may be (as the Hub's
//! stable-diffusion-v1-5, stable-diffusion-2-1-base, stable-diffusion-2-1, stable-diffusion-2-depth, the two
//! inpainting repositories and stable-diffusion-xl-base-1.0 / -refiner-1.0 ship them), so a lone `.safetensors`
//! loads with no download. `[model] config = "folder"` overrides them with a diffusers folder's own.

use serde_json::{json, Value};

use super::kind::{CheckpointKind, TextLayout};

/// `unet/config.json`.
pub fn unet(kind: CheckpointKind) -> Value {
    match kind {
        CheckpointKind::Sdxl => return xl_unet(false),
        CheckpointKind::SdxlRefiner => return xl_unet(true),
        _ => {}
    }
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

/// SDXL's text_time UNet: base (320/640/1280, transformer depth 1/2/10, two encoders' 2048) or refiner
/// (384/768/1536/1536, depth 4, bigG's 1280, five time ids with the aesthetic score).
fn xl_unet(refiner: bool) -> Value {
    let mut cfg = json!({
        "_class_name": "UNet2DConditionModel",
        "act_fn": "silu",
        "addition_embed_type": "text_time",
        "addition_embed_type_num_heads": 64,
        "addition_time_embed_dim": 256,
        "attention_head_dim": [5, 10, 20],
        "block_out_channels": [320, 640, 1280],
        "center_input_sample": false,
        "cross_attention_dim": 2048,
        "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
        "downsample_padding": 1,
        "flip_sin_to_cos": true,
        "freq_shift": 0,
        "in_channels": 4,
        "layers_per_block": 2,
        "mid_block_scale_factor": 1,
        "mid_block_type": "UNetMidBlock2DCrossAttn",
        "norm_eps": 1e-05,
        "norm_num_groups": 32,
        "out_channels": 4,
        "projection_class_embeddings_input_dim": 2816,
        "sample_size": 128,
        "transformer_layers_per_block": [1, 2, 10],
        "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
        "use_linear_projection": true,
    });
    if refiner {
        cfg["attention_head_dim"] = json!([6, 12, 24, 24]);
        cfg["block_out_channels"] = json!([384, 768, 1536, 1536]);
        cfg["cross_attention_dim"] = json!(1280);
        cfg["down_block_types"] = json!([
            "DownBlock2D",
            "CrossAttnDownBlock2D",
            "CrossAttnDownBlock2D",
            "DownBlock2D"
        ]);
        cfg["up_block_types"] = json!([
            "UpBlock2D",
            "CrossAttnUpBlock2D",
            "CrossAttnUpBlock2D",
            "UpBlock2D"
        ]);
        cfg["projection_class_embeddings_input_dim"] = json!(2560);
        cfg["transformer_layers_per_block"] = json!(4);
    }
    cfg
}

/// `vae/config.json`: one VAE for every SD 1.x/2.x model; SDXL's has its own scaling factor and must run in
/// float32 (`force_upcast`: it overflows fp16).
pub fn vae(kind: CheckpointKind) -> Value {
    if kind.is_xl() {
        return json!({
            "_class_name": "AutoencoderKL",
            "act_fn": "silu",
            "block_out_channels": [128, 256, 512, 512],
            "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"],
            "force_upcast": true,
            "in_channels": 3,
            "latent_channels": 4,
            "layers_per_block": 2,
            "norm_num_groups": 32,
            "out_channels": 3,
            "sample_size": 1024,
            "scaling_factor": 0.13025,
            "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"],
        });
    }
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

/// `text_encoder/config.json`: OpenAI's CLIP ViT-L/14 text model (SD 1.x, and SDXL base's first encoder), or
/// OpenCLIP ViT-H/14's with 23 of its 24 layers (SD 2.x conditions on the penultimate layer).
pub fn text_encoder(kind: CheckpointKind) -> Value {
    match kind.text_layout() {
        TextLayout::XlRefiner => text_encoder_2(),
        TextLayout::Clip | TextLayout::Xl => json!({
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

/// `text_encoder_2/config.json` of SDXL base and refiner: OpenCLIP ViT-bigG/14 as transformers'
/// `CLIPTextModelWithProjection`, all 32 layers (SDXL reads the penultimate one's output and the pooled one).
pub fn text_encoder_2() -> Value {
    json!({
        "architectures": ["CLIPTextModelWithProjection"],
        "hidden_act": "gelu",
        "hidden_size": 1280,
        "intermediate_size": 5120,
        "layer_norm_eps": 1e-05,
        "max_position_embeddings": 77,
        "num_attention_heads": 20,
        "num_hidden_layers": 32,
        "projection_dim": 1280,
        "vocab_size": 49408,
        "bos_token_id": 0,
        "eos_token_id": 2,
        "pad_token_id": 1,
    })
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
    if kind.is_xl() {
        // As stable-diffusion-xl-base-1.0 and -refiner-1.0 ship it.
        cfg["_class_name"] = json!("EulerDiscreteScheduler");
        cfg["interpolation_type"] = json!("linear");
        cfg["sample_max_value"] = json!(1.0);
        cfg["timestep_spacing"] = json!("leading");
        cfg["use_karras_sigmas"] = json!(false);
    }
    cfg
}

/// The padding token of the tokenizer in `component`: SD 1.x (and SDXL's `tokenizer`) pads with
/// `<|endoftext|>`, SD 2.x (and SDXL's `tokenizer_2`) with `!` (id 0).
pub fn pad_token(kind: CheckpointKind, component: &str) -> &'static str {
    match (kind.text_layout(), component) {
        (TextLayout::Clip, _) | (TextLayout::Xl, "tokenizer") => "<|endoftext|>",
        _ => "!",
    }
}

/// The built-in configs a kind has (`rel` as in a diffusers folder).
pub fn has(kind: CheckpointKind, rel: &str) -> bool {
    let common = [
        "unet/config.json",
        "vae/config.json",
        "scheduler/scheduler_config.json",
    ];
    common.contains(&rel)
        || match kind.text_layout() {
            TextLayout::Clip | TextLayout::OpenClip => rel == "text_encoder/config.json",
            TextLayout::Xl => matches!(
                rel,
                "text_encoder/config.json" | "text_encoder_2/config.json"
            ),
            TextLayout::XlRefiner => rel == "text_encoder_2/config.json",
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
            let width = match kind.text_layout() {
                TextLayout::Clip | TextLayout::Xl => 768,
                TextLayout::OpenClip => 1024,
                TextLayout::XlRefiner => 1280,
            };
            assert_eq!(text.hidden_size, width, "{kind}");
            assert_eq!(set.is_xl(), kind.is_xl(), "{kind}");
            if kind.is_xl() {
                let two = set
                    .text_encoder_at("text_encoder_2")
                    .unwrap_or_else(|e| panic!("{kind}: {e}"));
                // what the UNet's cross-attention and add_embedding take from the encoders
                let context = if kind == CheckpointKind::Sdxl {
                    768 + 1280
                } else {
                    1280
                };
                let plan = unet.block_plan().expect("plan");
                assert_eq!(plan.cross_attention_dim[0], context, "{kind}");
                let ids = if kind == CheckpointKind::Sdxl { 6 } else { 5 };
                let (time_dim, add_in) = unet.text_time_dims().expect("text_time");
                assert_eq!(
                    add_in,
                    two.projection_dim.unwrap() + ids * time_dim,
                    "{kind}"
                );
            }
            set.scheduler().unwrap_or_else(|e| panic!("{kind}: {e}"));
            let v = scheduler(kind)["prediction_type"] == "v_prediction";
            assert_eq!(v, kind == CheckpointKind::Sd2V, "{kind}");
        }
    }
}
