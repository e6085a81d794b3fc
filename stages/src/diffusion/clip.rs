//! CLIP text encoder as transformers' `CLIPTextModel`: token + position embeddings, pre-norm transformer layers
//! under a causal mask, final layer norm. Stable Diffusion conditions on the last hidden state. The encoder layer
//! is shared with the CLIP vision tower of the scorer (`score/clip_vision.rs`), which runs it unmasked.

use super::attention::multi_head_attention;
use super::config::ClipTextConfig;
use super::layers;
use super::unet::{check_shape, InputError};
use tch::{nn, nn::Module, Tensor};

/// The two activations CLIP configs use (text and vision towers alike).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Activation {
    /// `x * sigmoid(1.702 x)`, OpenAI CLIP (SD 1.x).
    QuickGelu,
    /// Exact (erf) GELU, OpenCLIP (SD 2.x).
    Gelu,
}

impl Activation {
    /// An unknown name falls back to quick GELU; the configs' `validate` rejects it before any build.
    pub(crate) fn from_name(hidden_act: &str) -> Self {
        if hidden_act == "gelu" {
            Activation::Gelu
        } else {
            Activation::QuickGelu
        }
    }
}

impl Module for Activation {
    fn forward(&self, xs: &Tensor) -> Tensor {
        match self {
            Activation::QuickGelu => xs * (xs * 1.702).sigmoid(),
            Activation::Gelu => xs.gelu("none"),
        }
    }
}

pub(crate) fn layer_norm(vs: nn::Path, dim: i64, eps: f64) -> layers::LayerNorm {
    layers::layer_norm(
        vs,
        vec![dim],
        nn::LayerNormConfig {
            eps,
            ..Default::default()
        },
    )
}

/// The sizes of one `CLIPEncoderLayer`; the text and vision towers build the same layer from their configs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EncoderDims {
    pub hidden_size: i64,
    pub intermediate_size: i64,
    pub num_attention_heads: i64,
    pub layer_norm_eps: f64,
    pub act: Activation,
}

/// `CLIPEncoderLayer`: `x + attn(ln1(x))`, then `x + mlp(ln2(x))`.
#[derive(Debug)]
pub(crate) struct EncoderLayer {
    layer_norm1: layers::LayerNorm,
    q_proj: nn::Linear,
    k_proj: nn::Linear,
    v_proj: nn::Linear,
    out_proj: nn::Linear,
    layer_norm2: layers::LayerNorm,
    fc1: nn::Linear,
    fc2: nn::Linear,
    heads: i64,
    act: Activation,
}

impl EncoderLayer {
    fn new(vs: nn::Path, cfg: &ClipTextConfig, act: Activation) -> Self {
        Self::with_dims(
            vs,
            EncoderDims {
                hidden_size: cfg.hidden_size,
                intermediate_size: cfg.intermediate_size,
                num_attention_heads: cfg.num_attention_heads,
                layer_norm_eps: cfg.layer_norm_eps,
                act,
            },
        )
    }

    pub(crate) fn with_dims(vs: nn::Path, dims: EncoderDims) -> Self {
        let d = dims.hidden_size;
        let eps = dims.layer_norm_eps;
        let attn = &vs / "self_attn";
        let mlp = &vs / "mlp";
        let lin = |p: nn::Path, i, o| layers::linear(p, i, o, Default::default());
        EncoderLayer {
            layer_norm1: layer_norm(&vs / "layer_norm1", d, eps),
            q_proj: lin(&attn / "q_proj", d, d),
            k_proj: lin(&attn / "k_proj", d, d),
            v_proj: lin(&attn / "v_proj", d, d),
            out_proj: lin(&attn / "out_proj", d, d),
            layer_norm2: layer_norm(&vs / "layer_norm2", d, eps),
            fc1: lin(&mlp / "fc1", d, dims.intermediate_size),
            fc2: lin(&mlp / "fc2", dims.intermediate_size, d),
            heads: dims.num_attention_heads,
            act: dims.act,
        }
    }

    /// `[b, n, d]` → `[b, n, d]` under the text tower's causal mask.
    fn forward(&self, x: &Tensor) -> Tensor {
        self.forward_masked(x, true)
    }

    /// `[b, n, d]` → `[b, n, d]`; the vision tower attends without a mask (`causal` false).
    pub(crate) fn forward_masked(&self, x: &Tensor, causal: bool) -> Tensor {
        let h = self.layer_norm1.forward(x);
        let (q, k, v) = (
            self.q_proj.forward(&h),
            self.k_proj.forward(&h),
            self.v_proj.forward(&h),
        );
        let x = self
            .out_proj
            .forward(&multi_head_attention(&q, &k, &v, self.heads, causal, false))
            + x;
        let h = self
            .act
            .forward(&self.fc1.forward(&self.layer_norm2.forward(&x)));
        self.fc2.forward(&h) + x
    }
}

/// `CLIPTextModel`; variables live under `text_model.` as in the checkpoint.
#[derive(Debug)]
pub struct ClipTextTransformer {
    token_embedding: layers::Embedding,
    position_embedding: layers::Embedding,
    layers: Vec<EncoderLayer>,
    final_layer_norm: layers::LayerNorm,
    cfg: ClipTextConfig,
    /// Rows for ids at and past `vocab_size`: textual-inversion tokens added to the tokenizer, in id order.
    added: Option<Tensor>,
}

impl ClipTextTransformer {
    /// `vs` is the checkpoint's root and variables are named `text_model.…`, as in the checkpoints on the Hub
    /// (transformers 4). An unknown `hidden_act` falls back to quick GELU (`validate` rejects it).
    pub fn new(vs: nn::Path, cfg: &ClipTextConfig) -> Self {
        Self::new_at(&vs / "text_model", cfg)
    }

    /// As [`new`](Self::new) with `vs` the text model itself: transformers 5's `save_pretrained` writes
    /// `CLIPTextModel` keys without the `text_model.` prefix (`embeddings.token_embedding.weight`, …).
    pub fn new_at(vs: nn::Path, cfg: &ClipTextConfig) -> Self {
        let tm = vs;
        let emb = &tm / "embeddings";
        let act = Activation::from_name(&cfg.hidden_act);
        let layers_vs = &tm / "encoder" / "layers";
        ClipTextTransformer {
            token_embedding: layers::embedding(
                &emb / "token_embedding",
                cfg.vocab_size,
                cfg.hidden_size,
            ),
            position_embedding: layers::embedding(
                &emb / "position_embedding",
                cfg.max_position_embeddings,
                cfg.hidden_size,
            ),
            layers: (0..cfg.num_hidden_layers)
                .map(|i| EncoderLayer::new(&layers_vs / i, cfg, act))
                .collect(),
            final_layer_norm: layer_norm(
                &tm / "final_layer_norm",
                cfg.hidden_size,
                cfg.layer_norm_eps,
            ),
            cfg: cfg.clone(),
            added: None,
        }
    }

    /// Token vectors for the ids `vocab_size..vocab_size + n` (`[n, hidden]`), as diffusers' textual inversion
    /// appends rows to the embedding table.
    pub fn set_added_tokens(&mut self, rows: Option<Tensor>) {
        let token_kind = self.token_embedding.ws.kind();
        let device = self.token_embedding.ws.device();
        self.added = rows.map(|r| r.to_kind(token_kind).to_device(device));
    }

    pub fn added_tokens(&self) -> i64 {
        self.added.as_ref().map_or(0, |t| t.size()[0])
    }

    /// `[b, n]` i64 token ids (n ≤ `max_position_embeddings`) → last hidden state `[b, n, hidden]`.
    pub fn forward(&self, input_ids: &Tensor) -> Tensor {
        self.forward_layers(input_ids, self.layers.len())
    }

    /// Runs only the first `layers` encoder layers, then the final layer norm (CLIP "skip" as some tools use it).
    pub fn forward_layers(&self, input_ids: &Tensor, layers: usize) -> Tensor {
        let n = input_ids.size().last().copied().unwrap_or(0);
        let positions = Tensor::arange(n, (tch::Kind::Int64, input_ids.device())).unsqueeze(0);
        let mut h = self.embed_tokens(input_ids) + self.position_embedding.forward(&positions);
        for layer in self.layers.iter().take(layers) {
            h = layer.forward(&h);
        }
        self.final_layer_norm.forward(&h)
    }

    /// `[b, n]` ids → `[b, n, d]` token vectors, textual-inversion rows included.
    fn embed_tokens(&self, input_ids: &Tensor) -> Tensor {
        match &self.added {
            // The table with the added rows at its end; ids past the vocabulary index into them.
            // Cast here: the store may have been cast to fp16/bf16 after the rows were added.
            Some(added) => Tensor::embedding(
                &Tensor::cat(
                    &[
                        &self.token_embedding.ws,
                        &added.to_kind(self.token_embedding.ws.kind()),
                    ],
                    0,
                ),
                input_ids,
                -1,
                false,
                false,
            ),
            None => self.token_embedding.forward(input_ids),
        }
    }

    /// SDXL's view of the encoder: the penultimate layer's output (`hidden_states[-2]`, no final norm) and the
    /// final-normed state at each row's end-of-text token (transformers' `pooled_output`).
    pub fn forward_penultimate(&self, input_ids: &Tensor) -> (Tensor, Tensor) {
        let n = input_ids.size().last().copied().unwrap_or(0);
        let positions = Tensor::arange(n, (tch::Kind::Int64, input_ids.device())).unsqueeze(0);
        let mut h = self.embed_tokens(input_ids) + self.position_embedding.forward(&positions);
        let mut penultimate = h.shallow_clone();
        let last = self.layers.len().saturating_sub(1);
        for (i, layer) in self.layers.iter().enumerate() {
            h = layer.forward(&h);
            if i + 1 == last {
                penultimate = h.shallow_clone();
            }
        }
        let last_hidden = self.final_layer_norm.forward(&h);
        (penultimate, self.pooled(&last_hidden, input_ids))
    }

    /// `[b, d]`: each row's state at its end-of-text token. Configs with the legacy `eos_token_id` 2 (OpenAI's
    /// and SDXL's) take the highest id, as transformers does; others the first `eos_token_id`.
    fn pooled(&self, last_hidden: &Tensor, input_ids: &Tensor) -> Tensor {
        let at = if self.cfg.eos_token_id == 2 {
            input_ids.argmax(-1, false)
        } else {
            input_ids
                .eq(self.cfg.eos_token_id)
                .to_kind(tch::Kind::Int)
                .argmax(-1, false)
        };
        let rows = Tensor::arange(at.size()[0], (tch::Kind::Int64, at.device()));
        last_hidden.index(&[Some(rows), Some(at)])
    }

    /// Checks token ids for [`forward`](Self::forward): `[b, n]` integers, n ≤ `max_position_embeddings`, each
    /// below `vocab_size`.
    pub fn check_ids(&self, input_ids: &Tensor) -> Result<(), InputError> {
        let max = self.cfg.max_position_embeddings;
        let fix = "tokenize with the model's own tokenizer (max_length 77)";
        check_shape(
            "text encoder",
            "input_ids",
            input_ids,
            2,
            &[],
            &format!("[b, n ≤ {max}]"),
            fix,
        )?;
        let size = input_ids.size();
        let is_int = matches!(input_ids.kind(), tch::Kind::Int64 | tch::Kind::Int);
        let in_vocab = is_int
            && input_ids.min().int64_value(&[]) >= 0
            && input_ids.max().int64_value(&[]) < self.cfg.vocab_size + self.added_tokens();
        if size[1] > max || !in_vocab {
            return Err(InputError {
                network: "text encoder",
                what: "input_ids",
                got: size,
                expected: format!(
                    "[b, n ≤ {max}] of integer ids in [0, {})",
                    self.cfg.vocab_size
                ),
                fix: fix.into(),
            });
        }
        Ok(())
    }

    pub fn config(&self) -> &ClipTextConfig {
        &self.cfg
    }
}

/// Whether a checkpoint's tensor names carry the `text_model.` prefix: build with [`ClipTextTransformer::new`]
/// when they do, with [`ClipTextTransformer::new_at`] when they do not.
pub fn checkpoint_has_prefix<'a>(names: impl IntoIterator<Item = &'a str>) -> bool {
    names.into_iter().any(|n| n.starts_with("text_model."))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn names_shapes_and_causality() {
        let cfg: ClipTextConfig = serde_json::from_value(serde_json::json!({
            "vocab_size": 100, "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 2,
            "num_attention_heads": 2, "max_position_embeddings": 10, "hidden_act": "gelu"
        }))
        .unwrap();
        let vs = nn::VarStore::new(Device::Cpu);
        let clip = ClipTextTransformer::new(vs.root(), &cfg);
        let ids = Tensor::from_slice(&[5i64, 7, 9, 11, 13, 1, 2, 3]).view([2, 4]);
        let out = clip.forward(&ids);
        assert_eq!(out.size(), [2, 4, 16]);
        // changing the last token leaves earlier positions unchanged (causal mask)
        let ids2 = Tensor::from_slice(&[5i64, 7, 9, 99, 13, 1, 2, 3]).view([2, 4]);
        let out2 = clip.forward(&ids2);
        let d = (out.narrow(1, 0, 3) - out2.narrow(1, 0, 3))
            .abs()
            .max()
            .double_value(&[]);
        assert!(d < 1e-6, "{d}");
        let vars = vs.variables();
        for key in [
            "text_model.embeddings.token_embedding.weight",
            "text_model.embeddings.position_embedding.weight",
            "text_model.encoder.layers.1.self_attn.out_proj.bias",
            "text_model.encoder.layers.0.mlp.fc2.weight",
            "text_model.final_layer_norm.weight",
        ] {
            assert!(vars.contains_key(key), "missing {key}");
        }
        let q = Activation::QuickGelu.forward(&Tensor::from_slice(&[1.0f32]));
        let want = 1.0 / (1.0 + (-1.702f64).exp());
        assert!((q.double_value(&[0]) - want).abs() < 1e-6);
        assert!(clip.check_ids(&ids).is_ok());
        assert!(clip
            .check_ids(&Tensor::from_slice(&[5i64, 100]).view([1, 2]))
            .is_err());
        assert!(clip
            .check_ids(&Tensor::zeros([1, 11], (Kind::Int64, Device::Cpu)))
            .is_err());
        assert!(clip
            .check_ids(&Tensor::zeros([1, 4], (Kind::Float, Device::Cpu)))
            .is_err());
    }
}
