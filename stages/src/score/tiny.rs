//! A tiny random CLIPModel in exactly the layout and key names of `openai/clip-vit-large-patch14`
//! (`config.json`, `model.safetensors`, `preprocessor_config.json`, the tokenizer files), for tests and demos
//! that score without downloading 1.7 GB. The vocabulary is CLIP's real one, so real prompts tokenize; the towers
//! are a few thousand parameters each. Seeded: the same bytes every time.

use crate::diffusion::layers;
use std::path::Path;

use serde_json::{json, Value};
use tch::{nn, Device};

use super::clip_model::{ClipModelConfig, ClipScorer};
use super::clip_vision::ClipVisionTransformer;
use super::error::ScoreError;
use super::preprocess::{CLIP_MEAN, CLIP_STD};
use crate::diffusion::clip::ClipTextTransformer;
use crate::diffusion::error::DiffusionError;
use crate::diffusion::noise;
use crate::diffusion::tiny::write_into_place;
use crate::diffusion::tiny_files::write_json;
use crate::diffusion::tokenizer::ClipTokenizer;
use crate::diffusion::weights;

/// The transformers release whose `save_pretrained` output the files copy.
const TRANSFORMERS_VERSION: &str = "5.23.0";
const IMAGE_SIZE: i64 = 32;

/// The config.json; the token ids are the legacy ones (bos 0, pad 1, eos 2) that openai/clip-vit-large-patch14
/// ships, so the scorer's "end token = largest id" reading is the one exercised, as with the real model.
fn config(vocab_size: usize) -> Value {
    json!({
        "architectures": ["CLIPModel"],
        "dtype": "float32",
        "initializer_factor": 1.0,
        "logit_scale_init_value": 2.6592,
        "model_type": "clip",
        "projection_dim": 16,
        "text_config": {
            "attention_dropout": 0.0, "bos_token_id": 0, "dtype": "float32", "eos_token_id": 2,
            "hidden_act": "quick_gelu", "hidden_size": 16, "initializer_factor": 1.0, "initializer_range": 0.02,
            "intermediate_size": 32, "layer_norm_eps": 1e-05, "max_position_embeddings": 77,
            "model_type": "clip_text_model", "num_attention_heads": 2, "num_hidden_layers": 2, "pad_token_id": 1,
            "projection_dim": 16, "vocab_size": vocab_size
        },
        "transformers_version": TRANSFORMERS_VERSION,
        "vision_config": {
            "attention_dropout": 0.0, "dtype": "float32", "hidden_act": "quick_gelu", "hidden_size": 32,
            "image_size": IMAGE_SIZE, "initializer_factor": 1.0, "initializer_range": 0.02, "intermediate_size": 37,
            "layer_norm_eps": 1e-05, "model_type": "clip_vision_model", "num_attention_heads": 4,
            "num_channels": 3, "num_hidden_layers": 2, "patch_size": 8, "projection_dim": 16
        }
    })
}

fn preprocessor_config() -> Value {
    json!({
        "crop_size": {"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        "do_center_crop": true, "do_convert_rgb": true, "do_normalize": true, "do_rescale": true,
        "do_resize": true, "image_mean": CLIP_MEAN, "image_processor_type": "CLIPImageProcessor",
        "image_std": CLIP_STD, "resample": 3, "rescale_factor": 1.0 / 255.0,
        "size": {"shortest_edge": IMAGE_SIZE}
    })
}

fn write_model(dir: &Path, vocab_gz: &Path, seed: u64) -> Result<(), ScoreError> {
    let tok = ClipTokenizer::from_bpe_gz(vocab_gz)?;
    tok.save_dir(dir).map_err(|source| DiffusionError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let config_path = dir.join("config.json");
    let cfg_json = config(tok.vocab_size());
    write_json(&config_path, &cfg_json)?;
    write_json(
        &dir.join("preprocessor_config.json"),
        &preprocessor_config(),
    )?;
    let cfg = ClipModelConfig::from_json(&cfg_json, &config_path)?;
    let store = nn::VarStore::new(Device::Cpu);
    let root = store.root();
    let no_bias = nn::LinearConfig {
        bias: false,
        ..Default::default()
    };
    noise::seeded(seed, || {
        ClipTextTransformer::new(store.root(), &cfg.text);
        ClipVisionTransformer::new(&root / "vision_model", &cfg.vision);
        layers::linear(
            &root / "text_projection",
            cfg.text.hidden_size,
            cfg.projection_dim,
            no_bias,
        );
        layers::linear(
            &root / "visual_projection",
            cfg.vision.hidden_size,
            cfg.projection_dim,
            no_bias,
        );
        let _ = root.var("logit_scale", &[], nn::Init::Const(2.6592));
    });
    let weights_path = dir.join("model.safetensors");
    weights::save_varstore(&store, &weights_path, None).map_err(DiffusionError::from)?;
    // Random towers give every image nearly one direction and every text another, so all pairs share the sign
    // of one cosine. Negating a projection is as likely a draw as the original; choosing the sign that makes a
    // neutral pair positive gives scores spread above zero, as a trained CLIP's are, instead of all clamped to 0.
    if neutral_cosine(dir)? < 0.0 {
        if let Some(w) = store.variables().get("visual_projection.weight") {
            let mut w = w.shallow_clone();
            tch::no_grad(|| {
                let _ = w.neg_();
            });
        }
        weights::save_varstore(&store, &weights_path, None).map_err(DiffusionError::from)?;
    }
    Ok(())
}

/// The cosine of a mid-grey picture with "a photo" under the model written in `dir`.
fn neutral_cosine(dir: &Path) -> Result<f64, ScoreError> {
    let clip = ClipScorer::load(dir, Device::Cpu)?;
    let grey = image::RgbImage::from_pixel(
        IMAGE_SIZE as u32,
        IMAGE_SIZE as u32,
        image::Rgb([128, 128, 128]),
    );
    let image = clip.image_embeds(&clip.pixel_values(&grey).unsqueeze(0));
    let text = clip.text_embeds(&clip.tokenize(&["a photo".to_owned()]));
    Ok((image * text).sum(tch::Kind::Double).double_value(&[]))
}

/// Writes the tiny CLIPModel to `out` from CLIP's `bpe_simple_vocab_16e6.txt.gz`, seeded; `out` is either
/// complete or untouched.
pub fn init_tiny_clip(out: &Path, vocab_gz: &Path, seed: u64) -> Result<(), ScoreError> {
    write_into_place(out, |tmp| write_model(tmp, vocab_gz, seed))
}
