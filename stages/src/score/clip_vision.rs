//! CLIP's image tower as transformers' `CLIPVisionModel`: non-overlapping patches embedded by a bias-free
//! convolution, a learned class token in front, learned positions, `pre_layrnorm` (transformers' spelling, and
//! the checkpoints'), the text tower's encoder layers without a mask, and `post_layernorm` on the class token,
//! which is the pooled output the projection reads.

use crate::diffusion::layers;
use std::path::Path;

use serde::Deserialize;
use tch::{nn, nn::Module, Kind, Tensor};

use super::error::ScoreError;
use crate::diffusion::clip::{layer_norm, Activation, EncoderDims, EncoderLayer};

/// `vision_config` of a CLIPModel's config.json; a missing key takes transformers' `CLIPVisionConfig` default.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ClipVisionConfig {
    pub hidden_size: i64,
    pub intermediate_size: i64,
    pub num_hidden_layers: i64,
    pub num_attention_heads: i64,
    pub num_channels: i64,
    pub image_size: i64,
    pub patch_size: i64,
    pub hidden_act: String,
    pub layer_norm_eps: f64,
}

impl Default for ClipVisionConfig {
    fn default() -> Self {
        ClipVisionConfig {
            hidden_size: 768,
            intermediate_size: 3072,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            num_channels: 3,
            image_size: 224,
            patch_size: 32,
            hidden_act: "quick_gelu".into(),
            layer_norm_eps: 1e-5,
        }
    }
}

impl ClipVisionConfig {
    /// Checks what the build relies on; `path` is the config.json the values came from.
    pub fn validate(&self, path: &Path) -> Result<(), ScoreError> {
        let field = |name: &str, message: String, fix: &str| {
            Err(ScoreError::field(
                path,
                &format!("vision_config.{name}"),
                message,
                fix,
            ))
        };
        for (name, v) in [
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_attention_heads", self.num_attention_heads),
            ("patch_size", self.patch_size),
        ] {
            if v <= 0 {
                return field(
                    name,
                    format!("is {v}"),
                    "it must be positive; re-download the model's config.json",
                );
            }
        }
        if self.hidden_size % self.num_attention_heads != 0 {
            return field(
                "num_attention_heads",
                format!(
                    "is {}, which does not divide hidden_size {}",
                    self.num_attention_heads, self.hidden_size
                ),
                "use a head count that divides `hidden_size`",
            );
        }
        if self.image_size < self.patch_size {
            return field(
                "image_size",
                format!(
                    "is {}, smaller than patch_size {}",
                    self.image_size, self.patch_size
                ),
                "the image must hold at least one patch; re-download the model's config.json",
            );
        }
        if self.num_channels != 3 {
            return field(
                "num_channels",
                format!("is {}", self.num_channels),
                "texaug scores RGB images: use a CLIP model with 3 input channels",
            );
        }
        if !matches!(self.hidden_act.as_str(), "quick_gelu" | "gelu") {
            return field(
                "hidden_act",
                format!("is `{}`, which texaug does not build", self.hidden_act),
                "use a CLIP model with quick_gelu (OpenAI) or gelu (OpenCLIP) activations",
            );
        }
        Ok(())
    }

    /// Patches along one side; the class token makes the sequence one longer than their square.
    pub fn grid(&self) -> i64 {
        self.image_size / self.patch_size
    }
}

/// `CLIPVisionModel`; variables live under the `nn::Path` given (`vision_model` in a CLIPModel checkpoint).
#[derive(Debug)]
pub struct ClipVisionTransformer {
    patch_embedding: layers::Conv2d,
    class_embedding: Tensor,
    position_embedding: layers::Embedding,
    pre_layrnorm: layers::LayerNorm,
    layers: Vec<EncoderLayer>,
    post_layernorm: layers::LayerNorm,
    cfg: ClipVisionConfig,
}

impl ClipVisionTransformer {
    pub fn new(vs: nn::Path, cfg: &ClipVisionConfig) -> Self {
        let d = cfg.hidden_size;
        let emb = &vs / "embeddings";
        let dims = EncoderDims {
            hidden_size: d,
            intermediate_size: cfg.intermediate_size,
            num_attention_heads: cfg.num_attention_heads,
            layer_norm_eps: cfg.layer_norm_eps,
            act: Activation::from_name(&cfg.hidden_act),
        };
        let layers_vs = &vs / "encoder" / "layers";
        let positions = cfg.grid() * cfg.grid() + 1;
        ClipVisionTransformer {
            patch_embedding: layers::conv2d(
                &emb / "patch_embedding",
                cfg.num_channels,
                d,
                cfg.patch_size,
                nn::ConvConfig {
                    stride: cfg.patch_size,
                    bias: false,
                    ..Default::default()
                },
            ),
            class_embedding: emb.var(
                "class_embedding",
                &[d],
                nn::Init::Randn {
                    mean: 0.0,
                    stdev: 1.0,
                },
            ),
            position_embedding: layers::embedding(&emb / "position_embedding", positions, d),
            pre_layrnorm: layer_norm(&vs / "pre_layrnorm", d, cfg.layer_norm_eps),
            layers: (0..cfg.num_hidden_layers)
                .map(|i| EncoderLayer::with_dims(&layers_vs / i, dims))
                .collect(),
            post_layernorm: layer_norm(&vs / "post_layernorm", d, cfg.layer_norm_eps),
            cfg: cfg.clone(),
        }
    }

    /// `[b, 3, image_size, image_size]` preprocessed pixels → pooled output `[b, hidden]`. Another size is a
    /// caller's bug (the scorer preprocesses to the model's size), so it panics with what was expected.
    pub fn forward(&self, pixel_values: &Tensor) -> Tensor {
        let size = pixel_values.size();
        let s = self.cfg.image_size;
        assert!(
            size.len() == 4 && size[1] == self.cfg.num_channels && size[2] == s && size[3] == s,
            "CLIP vision tower: pixel_values are {size:?}, expected [b, {}, {s}, {s}] (preprocess with the \
             model's preprocessor_config.json)",
            self.cfg.num_channels
        );
        let b = size[0];
        let kind = self.class_embedding.kind();
        // [b, d, grid, grid] → [b, grid², d]
        let patches = self
            .patch_embedding
            .forward(&pixel_values.to_kind(kind))
            .flatten(2, -1)
            .transpose(1, 2);
        let class = self.class_embedding.expand([b, 1, -1], false);
        let n = patches.size()[1] + 1;
        let positions = Tensor::arange(n, (Kind::Int64, pixel_values.device())).unsqueeze(0);
        let mut h = Tensor::cat(&[class, patches], 1) + self.position_embedding.forward(&positions);
        h = self.pre_layrnorm.forward(&h);
        for layer in &self.layers {
            h = layer.forward_masked(&h, false);
        }
        self.post_layernorm.forward(&h.select(1, 0))
    }

    pub fn config(&self) -> &ClipVisionConfig {
        &self.cfg
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn tiny() -> ClipVisionConfig {
        ClipVisionConfig {
            hidden_size: 16,
            intermediate_size: 24,
            num_hidden_layers: 2,
            num_attention_heads: 2,
            image_size: 16,
            patch_size: 8,
            ..Default::default()
        }
    }

    #[test]
    fn names_and_shapes_are_transformers() {
        let vs = nn::VarStore::new(Device::Cpu);
        let net = ClipVisionTransformer::new(&vs.root() / "vision_model", &tiny());
        let vars = vs.variables();
        for (key, shape) in [
            (
                "vision_model.embeddings.patch_embedding.weight",
                vec![16, 3, 8, 8],
            ),
            ("vision_model.embeddings.class_embedding", vec![16]),
            (
                "vision_model.embeddings.position_embedding.weight",
                vec![5, 16],
            ),
            ("vision_model.pre_layrnorm.weight", vec![16]),
            ("vision_model.encoder.layers.1.mlp.fc1.weight", vec![24, 16]),
            ("vision_model.post_layernorm.bias", vec![16]),
        ] {
            assert_eq!(vars.get(key).map(Tensor::size), Some(shape), "{key}");
        }
        assert!(!vars.contains_key("vision_model.embeddings.patch_embedding.bias"));
        let out = net.forward(&Tensor::randn([2, 3, 16, 16], (Kind::Float, Device::Cpu)));
        assert_eq!(out.size(), [2, 16]);
    }

    #[test]
    fn every_patch_reaches_the_class_token() {
        // No causal mask: changing the last patch moves the pooled output.
        let vs = nn::VarStore::new(Device::Cpu);
        let net = ClipVisionTransformer::new(vs.root(), &tiny());
        let x = Tensor::randn([1, 3, 16, 16], (Kind::Float, Device::Cpu));
        let y = x.copy();
        let _ = y.narrow(2, 8, 8).narrow(3, 8, 8).fill_(3.0);
        let d = (net.forward(&x) - net.forward(&y))
            .abs()
            .max()
            .double_value(&[]);
        assert!(d > 1e-4, "{d}");
    }

    #[test]
    fn bad_configs_name_the_field() {
        let p = Path::new("m/config.json");
        let mut c = tiny();
        c.num_attention_heads = 3;
        let e = c.validate(p).unwrap_err().to_string();
        assert!(
            e.contains("vision_config.num_attention_heads") && e.contains("m/config.json"),
            "{e}"
        );
        let mut c = tiny();
        c.hidden_act = "relu".into();
        assert!(c
            .validate(p)
            .unwrap_err()
            .to_string()
            .contains("hidden_act"));
    }
}
