//! Tiny random-weight Stable Diffusion pipelines in the exact diffusers layout, for demos and tests that
//! must run without downloading a model: seeded, a few MB, 64×64-capable, with CLIP's real BPE (truncated).

use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde_json::{json, Value};
use tch::{nn::VarStore, Device};

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

/// Which pipeline to make.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TinyKind {
    /// SD 1.x: PNDM, epsilon, quick-GELU text encoder, pad `<|endoftext|>`.
    Sd1,
    /// SD 2.x: DDIM v-prediction, GELU text encoder, linear projections, upcast attention, pad `!`.
    Sd2,
    /// SD 2 depth: as Sd2 with a 5-channel UNet (latents + depth), epsilon, PNDM.
    Sd2Depth,
    /// The Sd1 pipeline plus a matching ControlNet in `controlnet/` (loaded with the pipeline).
    ControlNet,
    /// SD 1 inpainting: as Sd1 with a 9-channel UNet (latents + mask + masked image latents).
    Sd1Inpaint,
    /// SDXL: two text encoders (the second with projection), a `text_time` UNet, Euler, VAE scaling 0.13025.
    Sdxl,
    /// The Sdxl pipeline plus a matching SDXL ControlNet in `controlnet/`.
    SdxlControlNet,
}

impl FromStr for TinyKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().replace('_', "-").as_str() {
            "sd1" => Ok(Self::Sd1),
            "sd2" => Ok(Self::Sd2),
            "sd2-depth" => Ok(Self::Sd2Depth),
            "controlnet" => Ok(Self::ControlNet),
            "sd1-inpaint" => Ok(Self::Sd1Inpaint),
            "sdxl" => Ok(Self::Sdxl),
            "sdxl-controlnet" => Ok(Self::SdxlControlNet),
            _ => Err(format!(
                "unknown tiny model kind {s:?}; use sd1, sd2, sd2-depth, sd1-inpaint, controlnet, sdxl or \
                 sdxl-controlnet"
            )),
        }
    }
}

fn unet_config(kind: TinyKind) -> Value {
    let sd2 = matches!(kind, TinyKind::Sd2 | TinyKind::Sd2Depth);
    let mut v = json!({
        "_class_name": "UNet2DConditionModel", "_diffusers_version": DIFFUSERS_VERSION,
        "act_fn": "silu", "addition_embed_type": null, "addition_embed_type_num_heads": 64,
        "addition_time_embed_dim": null,
        "attention_head_dim": if sd2 { json!([2, 4]) } else { json!(8) },
        "attention_type": "default", "block_out_channels": [32, 64], "center_input_sample": false,
        "class_embed_type": null, "class_embeddings_concat": false, "conv_in_kernel": 3, "conv_out_kernel": 3,
        "cross_attention_dim": 32, "cross_attention_norm": null,
        "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"], "downsample_padding": 1, "dropout": 0.0,
        "in_channels": match kind { TinyKind::Sd2Depth => 5, TinyKind::Sd1Inpaint => 9, _ => 4 }
    });
    // Split in two: one json! of every key exceeds the macro recursion limit.
    let rest = json!({
        "dual_cross_attention": false, "encoder_hid_dim": null, "encoder_hid_dim_type": null,
        "flip_sin_to_cos": true, "freq_shift": 0,
        "layers_per_block": 1, "mid_block_only_cross_attention": null, "mid_block_scale_factor": 1,
        "mid_block_type": "UNetMidBlock2DCrossAttn", "norm_eps": 1e-05, "norm_num_groups": 32,
        "num_attention_heads": null, "num_class_embeds": null, "only_cross_attention": false, "out_channels": 4,
        "projection_class_embeddings_input_dim": null, "resnet_out_scale_factor": 1.0,
        "resnet_skip_time_act": false, "resnet_time_scale_shift": "default",
        "reverse_transformer_layers_per_block": null, "sample_size": 8, "time_cond_proj_dim": null,
        "time_embedding_act_fn": null, "time_embedding_dim": null, "time_embedding_type": "positional",
        "timestep_post_act": null, "transformer_layers_per_block": 1,
        "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"], "upcast_attention": sd2,
        "use_linear_projection": sd2
    });
    if let (Value::Object(a), Value::Object(b)) = (&mut v, rest) {
        a.extend(b);
    }
    v
}

/// A ControlNet matching the Sd1 UNet; the control image embedding goes 64×64 → 8×8 in three stride-2 convs.
fn controlnet_config() -> Value {
    let mut v = json!({
        "_class_name": "ControlNetModel", "_diffusers_version": DIFFUSERS_VERSION, "act_fn": "silu",
        "addition_embed_type": null, "addition_embed_type_num_heads": 64, "addition_time_embed_dim": null,
        "attention_head_dim": 8, "block_out_channels": [32, 64], "class_embed_type": null,
        "conditioning_channels": 3, "conditioning_embedding_out_channels": [8, 16, 16, 32],
        "controlnet_conditioning_channel_order": "rgb", "cross_attention_dim": 32,
        "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"], "downsample_padding": 1
    });
    let rest = json!({
        "encoder_hid_dim": null, "encoder_hid_dim_type": null, "flip_sin_to_cos": true, "freq_shift": 0,
        "global_pool_conditions": false, "in_channels": 4, "layers_per_block": 1, "mid_block_scale_factor": 1,
        "mid_block_type": "UNetMidBlock2DCrossAttn", "norm_eps": 1e-05, "norm_num_groups": 32,
        "num_attention_heads": null, "num_class_embeds": null, "only_cross_attention": false,
        "projection_class_embeddings_input_dim": null, "resnet_time_scale_shift": "default",
        "transformer_layers_per_block": 1, "upcast_attention": false, "use_linear_projection": false
    });
    if let (Value::Object(a), Value::Object(b)) = (&mut v, rest) {
        a.extend(b);
    }
    v
}

fn vae_config() -> Value {
    json!({
        "_class_name": "AutoencoderKL", "_diffusers_version": DIFFUSERS_VERSION, "act_fn": "silu",
        "block_out_channels": [8, 16, 16, 16],
        "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"],
        "force_upcast": true, "in_channels": 3, "latent_channels": 4, "latents_mean": null, "latents_std": null,
        "layers_per_block": 1, "mid_block_add_attention": true, "norm_num_groups": 4, "out_channels": 3,
        "sample_size": 64, "scaling_factor": 0.18215, "shift_factor": null,
        "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"],
        "use_post_quant_conv": true, "use_quant_conv": true
    })
}

fn text_encoder_config(kind: TinyKind, tok: &ClipTokenizer) -> Value {
    let sd2 = matches!(kind, TinyKind::Sd2 | TinyKind::Sd2Depth);
    json!({
        "architectures": ["CLIPTextModel"], "attention_dropout": 0.0, "bos_token_id": tok.bos_id(),
        "dtype": "float32", "eos_token_id": tok.eos_id(), "hidden_act": if sd2 { "gelu" } else { "quick_gelu" },
        "hidden_size": 32, "initializer_factor": 1.0, "initializer_range": 0.02, "intermediate_size": 37,
        "layer_norm_eps": 1e-05, "max_position_embeddings": 77, "model_type": "clip_text_model",
        "num_attention_heads": 4, "num_hidden_layers": 3, "pad_token_id": tok.pad_id(), "projection_dim": 32,
        "vocab_size": tok.vocab_size()
    })
}

fn scheduler_config(kind: TinyKind) -> Value {
    // As SD 1.5 and SD 2 ship theirs: sparse, without timestep_spacing.
    let mut v = json!({
        "_diffusers_version": DIFFUSERS_VERSION, "beta_end": 0.012, "beta_schedule": "scaled_linear",
        "beta_start": 0.00085, "clip_sample": false, "num_train_timesteps": 1000, "set_alpha_to_one": false,
        "skip_prk_steps": true, "steps_offset": 1, "trained_betas": null
    });
    if kind == TinyKind::Sd2 {
        v["_class_name"] = json!("DDIMScheduler");
        v["prediction_type"] = json!("v_prediction");
    } else {
        v["_class_name"] = json!("PNDMScheduler");
    }
    v
}

fn model_index(kind: TinyKind) -> Value {
    let scheduler = if kind == TinyKind::Sd2 {
        "DDIMScheduler"
    } else {
        "PNDMScheduler"
    };
    let mut v = json!({
        "_diffusers_version": DIFFUSERS_VERSION,
        "scheduler": ["diffusers", scheduler], "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"], "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"]
    });
    if kind == TinyKind::ControlNet {
        v["controlnet"] = json!(["diffusers", "ControlNetModel"]);
    }
    if kind == TinyKind::Sd2Depth {
        v["_class_name"] = json!("StableDiffusionDepth2ImgPipeline");
        v["depth_estimator"] = json!([null, null]);
        v["feature_extractor"] = json!([null, null]);
    } else {
        v["_class_name"] = json!(match kind {
            TinyKind::ControlNet => "StableDiffusionControlNetPipeline",
            TinyKind::Sd1Inpaint => "StableDiffusionInpaintPipeline",
            _ => "StableDiffusionPipeline",
        });
        v["feature_extractor"] = json!([null, null]);
        v["image_encoder"] = json!([null, null]);
        v["requires_safety_checker"] = json!(false);
        v["safety_checker"] = json!([null, null]);
    }
    v
}

/// Writes the pipeline into `dir` (which exists and is empty).
fn write_pipeline(
    kind: TinyKind,
    dir: &Path,
    vocab_gz: &Path,
    seed: u64,
) -> Result<(), DiffusionError> {
    let pad = if matches!(kind, TinyKind::Sd2 | TinyKind::Sd2Depth) {
        "!"
    } else {
        EOS
    };
    let tok = ClipTokenizer::from_bpe_gz_truncated(vocab_gz, TINY_MERGES, pad)?;
    for c in ["scheduler", "text_encoder", "tokenizer", "unet", "vae"] {
        mkdir(&dir.join(c))?;
    }
    write_json(&dir.join("model_index.json"), &model_index(kind))?;
    write_json(
        &dir.join("scheduler/scheduler_config.json"),
        &scheduler_config(kind),
    )?;
    tok.save_dir(&dir.join("tokenizer"))
        .map_err(|source| DiffusionError::Io {
            path: dir.join("tokenizer"),
            source,
        })?;

    let te_path = dir.join("text_encoder/config.json");
    let te_json = text_encoder_config(kind, &tok);
    write_json(&te_path, &te_json)?;
    let te_cfg: ClipTextConfig = parse(&te_json, &te_path)?;
    // Each component gets its own seed so changing one network's shape leaves the others' weights alone.
    let te_vs = VarStore::new(Device::Cpu);
    noise::seeded(seed, || ClipTextTransformer::new(te_vs.root(), &te_cfg));
    weights::save_varstore(&te_vs, &dir.join("text_encoder/model.safetensors"), None)?;
    write_unet(dir, &unet_config(kind), seed.wrapping_add(1))?;
    write_vae(dir, &vae_config(), seed.wrapping_add(2))?;
    if kind == TinyKind::ControlNet {
        write_controlnet(dir, &controlnet_config(), seed.wrapping_add(3))?;
    }
    Ok(())
}

/// Makes a tiny `kind` pipeline at `out` from CLIP's `bpe_simple_vocab_16e6.txt.gz`, seeded. Written to a
/// temporary folder next to `out` and renamed into place, so `out` is either complete or untouched.
pub fn init_tiny(
    kind: TinyKind,
    out: &Path,
    vocab_gz: &Path,
    seed: u64,
) -> Result<(), DiffusionError> {
    write_into_place(out, |tmp| match kind {
        TinyKind::Sdxl => super::tiny_xl::write_xl_pipeline(tmp, vocab_gz, seed, false),
        TinyKind::SdxlControlNet => super::tiny_xl::write_xl_pipeline(tmp, vocab_gz, seed, true),
        _ => write_pipeline(kind, tmp, vocab_gz, seed),
    })
}

/// Runs `write` on an empty temporary folder beside `out`, then renames it to `out` (an existing `out` is
/// replaced only once the new one is complete).
pub(crate) fn write_into_place<E: From<DiffusionError>>(
    out: &Path,
    write: impl FnOnce(&Path) -> Result<(), E>,
) -> Result<(), E> {
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    mkdir(parent)?;
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    let tmp: PathBuf = parent.join(format!(".{name}.tmp-{}", std::process::id()));
    if tmp.exists() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    mkdir(&tmp)?;
    if let Err(e) = write(&tmp) {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DiffusionError::Io { path, source }
    };
    if out.exists() {
        // Swap: the old folder moves aside first so a failure leaves one complete model in place.
        let old = parent.join(format!(".{name}.old-{}", std::process::id()));
        std::fs::rename(out, &old).map_err(io(out))?;
        std::fs::rename(&tmp, out).map_err(io(out))?;
        let _ = std::fs::remove_dir_all(&old);
    } else {
        std::fs::rename(&tmp, out).map_err(io(out))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diffusion::config::AutoencoderKLConfig;
    use crate::diffusion::unet_config::UNet2DConditionConfig;

    #[test]
    fn kinds_parse() {
        assert_eq!("sd2-depth".parse::<TinyKind>().unwrap(), TinyKind::Sd2Depth);
        assert_eq!("SD1".parse::<TinyKind>().unwrap(), TinyKind::Sd1);
        assert_eq!("sdxl".parse::<TinyKind>().unwrap(), TinyKind::Sdxl);
        assert!("sd3".parse::<TinyKind>().unwrap_err().contains("sd2-depth"));
    }

    #[test]
    fn configs_parse_as_the_networks_expect() {
        for kind in [TinyKind::Sd1, TinyKind::Sd2, TinyKind::Sd2Depth] {
            let u: UNet2DConditionConfig = serde_json::from_value(unet_config(kind)).unwrap();
            u.validate().unwrap();
            let v: AutoencoderKLConfig = serde_json::from_value(vae_config()).unwrap();
            assert_eq!(v.scale_factor(), 8);
        }
    }
}
