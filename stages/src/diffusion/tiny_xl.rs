//! Tiny random-weight SDXL pipelines in the exact diffusers layout (`StableDiffusionXLImg2ImgPipeline`): two text
//! encoders (the second with its projection) and tokenizers, a `text_time` UNet with SDXL's block structure (no
//! attention at the highest resolution, deeper transformers below), SDXL's VAE scaling and scheduler; optionally a
//! matching ControlNet in `controlnet/`. Seeded, about 2 MB, 64×64-capable.

use super::layers;
use std::path::Path;

use serde_json::{json, Value};
use tch::{nn, nn::VarStore, Device};

use super::clip::ClipTextTransformer;
use super::config::ClipTextConfig;
use super::img2img::DiffusionError;
use super::noise;
use super::tiny_files::{
    mkdir, parse, write_controlnet, write_json, write_unet, write_vae, DIFFUSERS_VERSION,
    TINY_MERGES,
};
use super::tokenizer::{ClipTokenizer, EOS};
use super::weights;

/// The down path an SDXL UNet and its ControlNet share: three levels, the first without attention, transformer
/// depth growing with depth, 32 + 40 text features, six size ids of 8 plus a 24-wide pooled embedding.
fn down_path() -> Value {
    json!({
        "act_fn": "silu", "addition_embed_type": "text_time", "addition_embed_type_num_heads": 64,
        "addition_time_embed_dim": 8, "attention_head_dim": [2, 3, 4], "block_out_channels": [16, 24, 32],
        "class_embed_type": null, "cross_attention_dim": 72,
        "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
        "downsample_padding": 1, "encoder_hid_dim": null, "encoder_hid_dim_type": null, "flip_sin_to_cos": true,
        "freq_shift": 0, "in_channels": 4, "layers_per_block": 1, "mid_block_type": "UNetMidBlock2DCrossAttn",
        "norm_eps": 1e-05, "norm_num_groups": 8, "num_attention_heads": null, "num_class_embeds": null,
        "only_cross_attention": false, "projection_class_embeddings_input_dim": 72,
        "resnet_time_scale_shift": "default", "transformer_layers_per_block": [1, 1, 2],
        "upcast_attention": false, "use_linear_projection": true
    })
}

fn with(mut base: Value, extra: Value) -> Value {
    if let (Value::Object(a), Value::Object(b)) = (&mut base, extra) {
        a.extend(b);
    }
    base
}

fn unet_config() -> Value {
    with(
        down_path(),
        json!({
            "_class_name": "UNet2DConditionModel", "_diffusers_version": DIFFUSERS_VERSION,
            "center_input_sample": false, "conv_in_kernel": 3, "conv_out_kernel": 3, "mid_block_scale_factor": 1,
            "out_channels": 4, "sample_size": 8, "time_embedding_type": "positional",
            "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"]
        }),
    )
}

fn controlnet_config() -> Value {
    with(
        down_path(),
        json!({
            "_class_name": "ControlNetModel", "_diffusers_version": DIFFUSERS_VERSION, "conditioning_channels": 3,
            "conditioning_embedding_out_channels": [8, 16, 16, 32], "controlnet_conditioning_channel_order": "rgb",
            "global_pool_conditions": false, "mid_block_scale_factor": 1
        }),
    )
}

fn vae_config() -> Value {
    json!({
        "_class_name": "AutoencoderKL", "_diffusers_version": DIFFUSERS_VERSION, "act_fn": "silu",
        "block_out_channels": [8, 16, 16, 16],
        "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"],
        "force_upcast": true, "in_channels": 3, "latent_channels": 4, "layers_per_block": 1, "norm_num_groups": 4,
        "out_channels": 3, "sample_size": 64, "scaling_factor": 0.13025,
        "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"]
    })
}

/// `text_encoder` (CLIP ViT-L's shape, quick GELU) or `text_encoder_2` (OpenCLIP bigG's: GELU, with projection,
/// and the legacy `eos_token_id` 2 the real config has, which pools at the highest id).
fn text_encoder_config(second: bool, tok: &ClipTokenizer) -> Value {
    json!({
        "architectures": [if second { "CLIPTextModelWithProjection" } else { "CLIPTextModel" }],
        "attention_dropout": 0.0, "bos_token_id": tok.bos_id(), "dtype": "float32",
        "eos_token_id": if second { 2 } else { tok.eos_id() },
        "hidden_act": if second { "gelu" } else { "quick_gelu" }, "hidden_size": if second { 40 } else { 32 },
        "initializer_factor": 1.0, "initializer_range": 0.02, "intermediate_size": if second { 45 } else { 37 },
        "layer_norm_eps": 1e-05, "max_position_embeddings": 77, "model_type": "clip_text_model",
        "num_attention_heads": 4, "num_hidden_layers": 3, "pad_token_id": tok.pad_id(),
        "projection_dim": if second { 24 } else { 32 }, "vocab_size": tok.vocab_size()
    })
}

/// As stabilityai/stable-diffusion-xl-base-1.0 ships it.
fn scheduler_config() -> Value {
    json!({
        "_class_name": "EulerDiscreteScheduler", "_diffusers_version": DIFFUSERS_VERSION, "beta_end": 0.012,
        "beta_schedule": "scaled_linear", "beta_start": 0.00085, "clip_sample": false,
        "interpolation_type": "linear", "num_train_timesteps": 1000, "prediction_type": "epsilon",
        "sample_max_value": 1.0, "set_alpha_to_one": false, "skip_prk_steps": true, "steps_offset": 1,
        "timestep_spacing": "leading", "trained_betas": null, "use_karras_sigmas": false
    })
}

fn model_index(controlnet: bool) -> Value {
    let mut v = json!({
        "_class_name": "StableDiffusionXLImg2ImgPipeline", "_diffusers_version": DIFFUSERS_VERSION,
        "feature_extractor": [null, null], "force_zeros_for_empty_prompt": true, "image_encoder": [null, null],
        "requires_aesthetics_score": false, "scheduler": ["diffusers", "EulerDiscreteScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
        "tokenizer": ["transformers", "CLIPTokenizer"], "tokenizer_2": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"]
    });
    if controlnet {
        v["_class_name"] = json!("StableDiffusionXLControlNetImg2ImgPipeline");
        v["controlnet"] = json!(["diffusers", "ControlNetModel"]);
    }
    v
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DiffusionError + '_ {
    move |source| DiffusionError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One text encoder with its tokenizer, seeded; the second also gets `text_projection` (no bias).
fn write_text_encoder(
    dir: &Path,
    second: bool,
    vocab_gz: &Path,
    seed: u64,
) -> Result<(), DiffusionError> {
    let (tok_dir, te_dir) = if second {
        (dir.join("tokenizer_2"), dir.join("text_encoder_2"))
    } else {
        (dir.join("tokenizer"), dir.join("text_encoder"))
    };
    let tok = ClipTokenizer::from_bpe_gz_truncated(
        vocab_gz,
        TINY_MERGES,
        if second { "!" } else { EOS },
    )?;
    mkdir(&tok_dir)?;
    tok.save_dir(&tok_dir).map_err(io(&tok_dir))?;
    mkdir(&te_dir)?;
    let path = te_dir.join("config.json");
    let json = text_encoder_config(second, &tok);
    write_json(&path, &json)?;
    let cfg: ClipTextConfig = parse(&json, &path)?;
    let vs = VarStore::new(Device::Cpu);
    noise::seeded(seed, || {
        ClipTextTransformer::new(vs.root(), &cfg);
        if second {
            let no_bias = nn::LinearConfig {
                bias: false,
                ..Default::default()
            };
            let out = cfg.projection_dim.unwrap_or(cfg.hidden_size);
            layers::linear(vs.root() / "text_projection", cfg.hidden_size, out, no_bias);
        }
    });
    weights::save_varstore(&vs, &te_dir.join("model.safetensors"), None)?;
    Ok(())
}

/// Writes the SDXL pipeline (with a ControlNet in `controlnet/` when asked) into `dir`, empty.
pub(crate) fn write_xl_pipeline(
    dir: &Path,
    vocab_gz: &Path,
    seed: u64,
    controlnet: bool,
) -> Result<(), DiffusionError> {
    for c in ["scheduler", "unet", "vae"] {
        mkdir(&dir.join(c))?;
    }
    write_json(&dir.join("model_index.json"), &model_index(controlnet))?;
    write_json(
        &dir.join("scheduler/scheduler_config.json"),
        &scheduler_config(),
    )?;
    write_text_encoder(dir, false, vocab_gz, seed)?;
    write_text_encoder(dir, true, vocab_gz, seed.wrapping_add(1))?;

    write_unet(dir, &unet_config(), seed.wrapping_add(2))?;
    write_vae(dir, &vae_config(), seed.wrapping_add(3))?;
    if controlnet {
        write_controlnet(dir, &controlnet_config(), seed.wrapping_add(4))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diffusion::config::AutoencoderKLConfig;
    use crate::diffusion::unet_config::UNet2DConditionConfig;

    #[test]
    fn configs_parse_and_validate() {
        let u: UNet2DConditionConfig = serde_json::from_value(unet_config()).unwrap();
        u.validate().unwrap();
        assert_eq!(u.text_time_dims(), Some((8, 72)));
        let c: crate::diffusion::controlnet::ControlNetConfig =
            serde_json::from_value(controlnet_config()).unwrap();
        c.validate().unwrap();
        let v: AutoencoderKLConfig = serde_json::from_value(vae_config()).unwrap();
        assert_eq!(v.scale_factor(), 8);
    }
}
