//! [`ClipScorer`]: transformers' `CLIPModel` loaded from a folder in the `openai/clip-vit-large-patch14` layout,
//! scoring each (image, text) pair as torchmetrics' `CLIPScore` does: 100 × max(cos(image, text), 0), the
//! filter ALIA and He et al. apply to generated training data.

use crate::diffusion::layers;
use std::path::{Path, PathBuf};

use image::RgbImage;
use serde_json::Value;
use tch::{nn, nn::Module, Device, Kind, Tensor};

use super::clip_vision::{ClipVisionConfig, ClipVisionTransformer};
use super::error::{read_json, ScoreError};
use super::preprocess::Preprocess;
use crate::diffusion::clip::ClipTextTransformer;
use crate::diffusion::config::ClipTextConfig;
use crate::diffusion::hub;
use crate::diffusion::single_file::find_clip_vocab;
use crate::diffusion::tokenizer::ClipTokenizer;
use crate::diffusion::weights::{self, Source, TensorIndex};

/// transformers' `CLIPConfig.projection_dim` default.
const DEFAULT_PROJECTION_DIM: i64 = 512;
/// transformers' `logit_scale_init_value`; only the value a checkpoint lacking nothing overwrites.
const LOGIT_SCALE_INIT: f64 = 2.6592;
/// Pairs per forward pass: bounds activation memory for a long list (ViT-L/14 at 224 px: ~60 MB a pair).
const CHUNK: usize = 16;

/// A CLIPModel's config.json, each tower's keys defaulting as transformers' configs do.
#[derive(Debug, Clone)]
pub struct ClipModelConfig {
    pub text: ClipTextConfig,
    pub vision: ClipVisionConfig,
    pub projection_dim: i64,
}

impl ClipModelConfig {
    pub fn from_file(path: &Path) -> Result<Self, ScoreError> {
        let v = read_json(path)?;
        Self::from_json(&v, path)
    }

    pub fn from_json(v: &Value, path: &Path) -> Result<Self, ScoreError> {
        if !v.is_object() {
            return Err(ScoreError::field(
                path,
                "(top level)",
                "is not a JSON object",
                "save the model with transformers' `CLIPModel.save_pretrained(dir)`",
            ));
        }
        let text: ClipTextConfig = tower(v, "text_config", path)?;
        let vision: ClipVisionConfig = tower(v, "vision_config", path)?;
        let projection_dim = match v.get("projection_dim") {
            None | Some(Value::Null) => DEFAULT_PROJECTION_DIM,
            Some(p) => p.as_i64().filter(|p| *p > 0).ok_or_else(|| {
                ScoreError::field(
                    path,
                    "projection_dim",
                    format!("is {p}"),
                    "it must be a positive integer (768 for ViT-L/14)",
                )
            })?,
        };
        validate_text(&text, path)?;
        vision.validate(path)?;
        Ok(ClipModelConfig {
            text,
            vision,
            projection_dim,
        })
    }
}

/// One tower's config: `<key>` with transformers' legacy `<key>_dict` laid over it (as `CLIPConfig` merges them;
/// openai/clip-vit-large-patch14 still carries both).
fn tower<T: serde::de::DeserializeOwned>(
    v: &Value,
    key: &str,
    path: &Path,
) -> Result<T, ScoreError> {
    let mut merged = serde_json::Map::new();
    for k in [key.to_owned(), format!("{key}_dict")] {
        match v.get(&k) {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) => merged.extend(m.clone()),
            Some(other) => {
                return Err(ScoreError::field(
                    path,
                    &k,
                    format!("is {other}, not an object"),
                    "save the model with transformers' `CLIPModel.save_pretrained(dir)`",
                ))
            }
        }
    }
    serde_json::from_value(Value::Object(merged)).map_err(|e| {
        ScoreError::field(
            path,
            key,
            format!("does not describe a CLIP tower: {e}"),
            "save the model with transformers' `CLIPModel.save_pretrained(dir)`",
        )
    })
}

fn validate_text(c: &ClipTextConfig, path: &Path) -> Result<(), ScoreError> {
    let bad = |field: &str, message: String, fix: &str| {
        Err(ScoreError::field(
            path,
            &format!("text_config.{field}"),
            message,
            fix,
        ))
    };
    for (name, v) in [
        ("hidden_size", c.hidden_size),
        ("vocab_size", c.vocab_size),
        ("num_attention_heads", c.num_attention_heads),
        ("max_position_embeddings", c.max_position_embeddings),
    ] {
        if v <= 0 {
            return bad(
                name,
                format!("is {v}"),
                "it must be positive; re-download the model's config.json",
            );
        }
    }
    if c.hidden_size % c.num_attention_heads != 0 {
        return bad(
            "num_attention_heads",
            format!(
                "is {}, which does not divide hidden_size {}",
                c.num_attention_heads, c.hidden_size
            ),
            "use a head count that divides `hidden_size`",
        );
    }
    if !matches!(c.hidden_act.as_str(), "quick_gelu" | "gelu") {
        return bad(
            "hidden_act",
            format!("is `{}`, which texaug does not build", c.hidden_act),
            "use a CLIP model with quick_gelu (OpenAI) or gelu (OpenCLIP) activations",
        );
    }
    Ok(())
}

/// A folder path, or a hub id (`org/name[@revision]`) resolved in the local Hugging Face cache.
fn resolve(dir: &Path) -> Result<PathBuf, ScoreError> {
    if dir.is_dir() {
        return Ok(dir.to_path_buf());
    }
    let s = dir.to_string_lossy();
    let (repo, revision) = match s.split_once('@') {
        Some((r, rev)) => (r, Some(rev)),
        None => (s.as_ref(), None),
    };
    if hub::is_repo_id(repo) {
        return Ok(hub::snapshot_dir(&hub::cache_dir(), repo, revision)?);
    }
    Err(ScoreError::NoFolder {
        path: dir.to_path_buf(),
    })
}

/// The folder's own tokenizer files, else CLIP's BPE vocabulary (every OpenAI CLIP shares it).
fn tokenizer(dir: &Path) -> Result<ClipTokenizer, ScoreError> {
    let has = |n: &str| dir.join(n).is_file();
    if (has("vocab.json") && has("merges.txt")) || has("tokenizer.json") {
        return Ok(ClipTokenizer::from_dir(dir)?);
    }
    let gz = find_clip_vocab().map_err(|tried| ScoreError::NoVocab {
        dir: dir.to_path_buf(),
        tried,
    })?;
    Ok(ClipTokenizer::from_bpe_gz(&gz)?)
}

/// transformers' `CLIPModel` for scoring: both towers, both projections, its tokenizer and image processor.
pub struct ClipScorer {
    text: ClipTextTransformer,
    vision: ClipVisionTransformer,
    text_projection: nn::Linear,
    visual_projection: nn::Linear,
    logit_scale: Tensor,
    tokenizer: ClipTokenizer,
    preprocess: Preprocess,
    config: ClipModelConfig,
    config_path: PathBuf,
    device: Device,
    _store: nn::VarStore,
}

impl std::fmt::Debug for ClipScorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClipScorer")
            .field("config", &self.config)
            .field("config_path", &self.config_path)
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

impl ClipScorer {
    /// Loads `dir` (or a hub id in the local cache) in float32 on `device`: `config.json`, `model.safetensors`
    /// (or its shards), `preprocessor_config.json` when present, the tokenizer files when present.
    pub fn load(dir: &Path, device: Device) -> Result<ClipScorer, ScoreError> {
        let dir = resolve(dir)?;
        let config_path = dir.join("config.json");
        let config = ClipModelConfig::from_file(&config_path)?;
        let image_size = config.vision.image_size as u32;
        let pre_path = dir.join("preprocessor_config.json");
        let preprocess = if pre_path.is_file() {
            Preprocess::from_file(&pre_path, image_size)?
        } else {
            Preprocess::clip(image_size)
        };
        let tokenizer = tokenizer(&dir)?;
        let files = weights::find_weights(&dir, "model", None)?;
        let index = TensorIndex::open(&files)?;
        let store = nn::VarStore::new(device);
        let root = store.root();
        let no_bias = nn::LinearConfig {
            bias: false,
            ..Default::default()
        };
        let (text, vision, text_projection, visual_projection, logit_scale) =
            layers::for_loading(|| {
                (
                    ClipTextTransformer::new(root.clone(), &config.text),
                    ClipVisionTransformer::new(&root / "vision_model", &config.vision),
                    layers::linear(
                        &root / "text_projection",
                        config.text.hidden_size,
                        config.projection_dim,
                        no_bias,
                    ),
                    layers::linear(
                        &root / "visual_projection",
                        config.vision.hidden_size,
                        config.projection_dim,
                        no_bias,
                    ),
                    root.var("logit_scale", &[], nn::Init::Const(LOGIT_SCALE_INIT)),
                )
            });
        weights::load_mapped(&store, &index, |n| vec![Source::same(n)])?;
        Ok(ClipScorer {
            text,
            vision,
            text_projection,
            visual_projection,
            logit_scale,
            tokenizer,
            preprocess,
            config,
            config_path,
            device,
            _store: store,
        })
    }

    /// One score per (image, text) pair, in order; images any size (preprocessed here).
    pub fn score(&self, images: &[RgbImage], texts: &[String]) -> Result<Vec<f64>, ScoreError> {
        if images.len() != texts.len() {
            return Err(ScoreError::Pairs {
                images: images.len(),
                texts: texts.len(),
            });
        }
        if let Some((index, img)) = images
            .iter()
            .enumerate()
            .find(|(_, i)| i.width() == 0 || i.height() == 0)
        {
            return Err(ScoreError::EmptyImage {
                index,
                width: img.width(),
                height: img.height(),
            });
        }
        let mut scores = Vec::with_capacity(images.len());
        for (start, (imgs, txts)) in (0..)
            .step_by(CHUNK)
            .zip(images.chunks(CHUNK).zip(texts.chunks(CHUNK)))
        {
            let ids = self.tokenize(txts);
            if self.text.check_ids(&ids).is_err() {
                let vocab = self.config.text.vocab_size;
                let row = (0..txts.len())
                    .find(|&i| ids.get(i as i64).max().int64_value(&[]) >= vocab)
                    .unwrap_or(0);
                return Err(ScoreError::Vocab {
                    index: start + row,
                    vocab,
                    config: self.config_path.clone(),
                });
            }
            let refs: Vec<&RgbImage> = imgs.iter().collect();
            let pixels = self.preprocess.batch(&refs, self.device);
            let cos = tch::no_grad(|| {
                (self.image_embeds(&pixels) * self.text_embeds(&ids)).sum_dim_intlist(
                    -1,
                    false,
                    Kind::Float,
                )
            });
            // torchmetrics' CLIPScore: 100 × cosine, clamped at 0 (an anti-aligned pair scores 0, not below).
            let batch: Vec<f64> = Vec::try_from((cos * 100.0).clamp_min(0.0).to_kind(Kind::Double))
                .unwrap_or_default();
            scores.extend(batch);
        }
        Ok(scores)
    }

    /// `[b, 3, H, W]` preprocessed → `[b, projection_dim]`, unit length.
    pub fn image_embeds(&self, pixel_values: &Tensor) -> Tensor {
        tch::no_grad(|| {
            let pooled = self.vision.forward(&pixel_values.to_device(self.device));
            unit(&self.visual_projection.forward(&pooled))
        })
    }

    /// `[b, 77]` token ids → `[b, projection_dim]`, unit length. The pooled state is the final-layer-normed one at
    /// the end-of-text token, found as transformers finds it.
    pub fn text_embeds(&self, input_ids: &Tensor) -> Tensor {
        tch::no_grad(|| {
            let ids = input_ids.to_device(self.device).to_kind(Kind::Int64);
            let hidden = self.text.forward(&ids);
            let eos = self.config.text.eos_token_id;
            // Configs written before transformers fixed the id say 2; for them the end token is the largest id
            // (<|endoftext|> is the vocabulary's last entry), as transformers still reads them.
            let at = if eos == 2 {
                ids.argmax(-1, false)
            } else {
                ids.eq(eos).to_kind(Kind::Int).argmax(-1, false)
            };
            let (b, _, d) = hidden.size3().unwrap_or((0, 0, 0));
            let pooled = hidden
                .gather(1, &at.view([b, 1, 1]).expand([b, 1, d], false), false)
                .squeeze_dim(1);
            unit(&self.text_projection.forward(&pooled))
        })
    }

    /// `texts` as `[n, max_length]` ids (77 for CLIP), each `<|startoftext|> … <|endoftext|>` padded.
    pub fn tokenize(&self, texts: &[String]) -> Tensor {
        let rows: Vec<Tensor> = texts
            .iter()
            .map(|t| Tensor::from_slice(&self.tokenizer.encode(t)))
            .collect();
        if rows.is_empty() {
            return Tensor::zeros(
                [0, self.tokenizer.max_length() as i64],
                (Kind::Int64, Device::Cpu),
            );
        }
        Tensor::stack(&rows, 0)
    }

    /// `[3, h, w]` pixel values of one image, as CLIPImageProcessor makes them for this model.
    pub fn pixel_values(&self, image: &RgbImage) -> Tensor {
        self.preprocess.pixel_values(image)
    }

    /// The learned temperature (`exp` of it scales CLIP's logits); the score does not use it.
    pub fn logit_scale(&self) -> f64 {
        self.logit_scale.double_value(&[])
    }

    pub fn config(&self) -> &ClipModelConfig {
        &self.config
    }
}

/// `x / ‖x‖` along the last axis, with transformers' `_get_vector_norm` arithmetic (sum of squares, then sqrt).
fn unit(x: &Tensor) -> Tensor {
    let norm = x
        .pow_tensor_scalar(2)
        .sum_dim_intlist(-1, true, x.kind())
        .pow_tensor_scalar(0.5);
    x / norm
}
