//! Attention as diffusers builds it for Stable Diffusion: `Attention` (self/cross, and the VAE's spatial form),
//! `FeedForward` with GEGLU, `BasicTransformerBlock` and the continuous-input `Transformer2DModel`.

use super::layers;
use super::resnet::{conv2d, group_norm};
use tch::{nn, nn::Module, Kind, Tensor};

/// Multi-head attention with `to_q`, `to_k`, `to_v` and `to_out.0` projections. Scores go through
/// `scaled_dot_product_attention`; with `upcast` they are computed in float32 when the weights are half precision
/// (diffusers' `upcast_attention`, which keeps SD 2.x from overflowing in fp16).
#[derive(Debug)]
pub struct Attention {
    to_q: nn::Linear,
    to_k: nn::Linear,
    to_v: nn::Linear,
    to_out: nn::Linear,
    heads: i64,
    upcast: bool,
}

/// Construction settings of an [`Attention`].
#[derive(Debug, Clone, Copy)]
pub struct AttentionConfig {
    pub query_dim: i64,
    /// Width of the keys' source; the query's own width for self-attention.
    pub context_dim: i64,
    pub heads: i64,
    pub head_dim: i64,
    /// Whether `to_q`/`to_k`/`to_v` carry a bias (the VAE's do, the UNet's do not).
    pub qkv_bias: bool,
    pub upcast: bool,
}

impl Attention {
    pub fn new(vs: nn::Path, c: AttentionConfig) -> Self {
        let inner = c.heads * c.head_dim;
        let lin = |name: &str, i, o, bias| {
            layers::linear(
                &vs / name,
                i,
                o,
                nn::LinearConfig {
                    bias,
                    ..Default::default()
                },
            )
        };
        Attention {
            to_q: lin("to_q", c.query_dim, inner, c.qkv_bias),
            to_k: lin("to_k", c.context_dim, inner, c.qkv_bias),
            to_v: lin("to_v", c.context_dim, inner, c.qkv_bias),
            to_out: layers::linear(&vs / "to_out" / 0, inner, c.query_dim, Default::default()),
            heads: c.heads,
            upcast: c.upcast,
        }
    }

    /// `x [b, n, query_dim]`, `context [b, m, context_dim]` (self-attention when `None`) → `[b, n, query_dim]`.
    pub fn forward(&self, x: &Tensor, context: Option<&Tensor>) -> Tensor {
        let context = context.unwrap_or(x);
        let q = self.to_q.forward(x);
        let k = self.to_k.forward(context);
        let v = self.to_v.forward(context);
        let out = multi_head_attention(&q, &k, &v, self.heads, false, self.upcast);
        self.to_out.forward(&out)
    }
}

/// Splits `[b, n, heads * d]` projections into heads, attends, and merges back to `[b, n, heads * d]`.
pub fn multi_head_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    heads: i64,
    causal: bool,
    upcast: bool,
) -> Tensor {
    let (b, _, inner) = q.size3().unwrap_or((0, 0, 0));
    let d = inner / heads.max(1);
    let split = |t: &Tensor| t.view([b, -1, heads, d]).transpose(1, 2);
    let (q, k, v) = (split(q), split(k), split(v));
    let kind = q.kind();
    let half = matches!(kind, Kind::Half | Kind::BFloat16);
    // [b, heads, n, d]
    let out = if upcast && half {
        Tensor::scaled_dot_product_attention(
            &q.to_kind(Kind::Float),
            &k.to_kind(Kind::Float),
            &v.to_kind(Kind::Float),
            None::<Tensor>,
            0.0,
            causal,
            None,
            false,
        )
        .to_kind(kind)
    } else {
        Tensor::scaled_dot_product_attention(&q, &k, &v, None::<Tensor>, 0.0, causal, None, false)
    };
    out.transpose(1, 2).reshape([b, -1, heads * d])
}

/// `FeedForward` with GEGLU: `net.2(h * gelu(gate))` where `[h, gate] = net.0.proj(x)`.
#[derive(Debug)]
pub struct FeedForward {
    proj: nn::Linear,
    out: nn::Linear,
}

impl FeedForward {
    pub fn new(vs: nn::Path, dim: i64, mult: i64) -> Self {
        let inner = dim * mult;
        FeedForward {
            proj: layers::linear(&vs / "net" / 0 / "proj", dim, inner * 2, Default::default()),
            out: layers::linear(&vs / "net" / 2, inner, dim, Default::default()),
        }
    }
}

impl Module for FeedForward {
    fn forward(&self, xs: &Tensor) -> Tensor {
        let hg = self.proj.forward(xs).chunk(2, -1);
        self.out.forward(&(&hg[0] * hg[1].gelu("none")))
    }
}

/// `BasicTransformerBlock` with layer norms: self-attention, cross-attention, feed-forward, each pre-normed and
/// residual. With `only_cross_attention` the first attention also looks at the context.
#[derive(Debug)]
pub struct BasicTransformerBlock {
    norm1: layers::LayerNorm,
    attn1: Attention,
    norm2: layers::LayerNorm,
    attn2: Attention,
    norm3: layers::LayerNorm,
    ff: FeedForward,
    only_cross_attention: bool,
}

/// Settings shared by the transformer blocks of one `Transformer2DModel`.
#[derive(Debug, Clone, Copy)]
pub struct TransformerConfig {
    pub heads: i64,
    pub head_dim: i64,
    pub cross_attention_dim: i64,
    pub num_layers: i64,
    pub groups: i64,
    pub norm_eps: f64,
    pub use_linear_projection: bool,
    pub only_cross_attention: bool,
    pub upcast_attention: bool,
}

impl BasicTransformerBlock {
    pub fn new(vs: nn::Path, c: &TransformerConfig) -> Self {
        let dim = c.heads * c.head_dim;
        let ln = |name: &str| {
            layers::layer_norm(
                &vs / name,
                vec![dim],
                nn::LayerNormConfig {
                    eps: c.norm_eps,
                    ..Default::default()
                },
            )
        };
        let attn = |name: &str, context_dim| {
            Attention::new(
                &vs / name,
                AttentionConfig {
                    query_dim: dim,
                    context_dim,
                    heads: c.heads,
                    head_dim: c.head_dim,
                    qkv_bias: false,
                    upcast: c.upcast_attention,
                },
            )
        };
        let attn1_context = if c.only_cross_attention {
            c.cross_attention_dim
        } else {
            dim
        };
        BasicTransformerBlock {
            norm1: ln("norm1"),
            attn1: attn("attn1", attn1_context),
            norm2: ln("norm2"),
            attn2: attn("attn2", c.cross_attention_dim),
            norm3: ln("norm3"),
            ff: FeedForward::new(&vs / "ff", dim, 4),
            only_cross_attention: c.only_cross_attention,
        }
    }

    /// `x [b, n, dim]`, `context [b, m, cross_attention_dim]` → `[b, n, dim]`.
    pub fn forward(&self, x: &Tensor, context: &Tensor) -> Tensor {
        let ctx1 = self.only_cross_attention.then_some(context);
        let x = self.attn1.forward(&self.norm1.forward(x), ctx1) + x;
        let x = self.attn2.forward(&self.norm2.forward(&x), Some(context)) + x;
        self.ff.forward(&self.norm3.forward(&x)) + x
    }
}

/// Projection in and out of a [`Transformer2DModel`]: a 1×1 convolution (SD 1.x) or a linear (SD 2.x).
#[derive(Debug)]
enum Projection {
    Conv(layers::Conv2d),
    Linear(nn::Linear),
}

/// `Transformer2DModel` on continuous input: group norm, project in, transformer blocks, project out, residual.
#[derive(Debug)]
pub struct Transformer2DModel {
    norm: layers::GroupNorm,
    proj_in: Projection,
    blocks: Vec<BasicTransformerBlock>,
    proj_out: Projection,
}

impl Transformer2DModel {
    pub fn new(vs: nn::Path, in_channels: i64, c: &TransformerConfig) -> Self {
        let inner = c.heads * c.head_dim;
        let proj = |name: &str, i, o| {
            if c.use_linear_projection {
                Projection::Linear(layers::linear(&vs / name, i, o, Default::default()))
            } else {
                Projection::Conv(conv2d(&vs / name, i, o, 1, 1, 0))
            }
        };
        let tb = &vs / "transformer_blocks";
        Transformer2DModel {
            norm: group_norm(&vs / "norm", c.groups, in_channels, 1e-6),
            proj_in: proj("proj_in", in_channels, inner),
            blocks: (0..c.num_layers)
                .map(|i| BasicTransformerBlock::new(&tb / i, c))
                .collect(),
            proj_out: proj("proj_out", inner, in_channels),
        }
    }

    /// `[b, c, h, w]`, `context [b, m, cross_attention_dim]` → `[b, c, h, w]`.
    pub fn forward(&self, x: &Tensor, context: &Tensor) -> Tensor {
        let (b, _, h, w) = x.size4().unwrap_or((0, 0, 0, 0));
        let tokens = |t: &Tensor| {
            let c = t.size()[1];
            t.permute([0, 2, 3, 1]).reshape([b, h * w, c])
        };
        let image = |t: &Tensor| {
            let c = t.size()[2];
            t.reshape([b, h, w, c]).permute([0, 3, 1, 2]).contiguous()
        };
        let normed = self.norm.forward(x);
        // [b, h*w, inner]
        let mut s = match &self.proj_in {
            Projection::Conv(c) => tokens(&c.forward(&normed)),
            Projection::Linear(l) => l.forward(&tokens(&normed)),
        };
        for block in &self.blocks {
            s = block.forward(&s, context);
        }
        let out = match &self.proj_out {
            Projection::Conv(c) => c.forward(&image(&s)),
            Projection::Linear(l) => image(&l.forward(&s)),
        };
        out + x
    }
}

/// The VAE's single-head spatial self-attention (`Attention` with a group norm, biased projections, residual).
#[derive(Debug)]
pub struct SpatialSelfAttention {
    group_norm: layers::GroupNorm,
    attn: Attention,
}

impl SpatialSelfAttention {
    pub fn new(vs: nn::Path, channels: i64, groups: i64, eps: f64) -> Self {
        SpatialSelfAttention {
            group_norm: group_norm(&vs / "group_norm", groups, channels, eps),
            attn: Attention::new(
                vs,
                AttentionConfig {
                    query_dim: channels,
                    context_dim: channels,
                    heads: 1,
                    head_dim: channels,
                    qkv_bias: true,
                    upcast: false,
                },
            ),
        }
    }

    /// `[b, c, h, w]` → `[b, c, h, w]`.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let (b, c, h, w) = x.size4().unwrap_or((0, 0, 0, 0));
        // [b, h*w, c]
        let t = self
            .group_norm
            .forward(x)
            .view([b, c, h * w])
            .transpose(1, 2);
        let out = self.attn.forward(&t, None);
        out.transpose(1, 2).reshape([b, c, h, w]) + x
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn attention_equals_softmax_formula() {
        let q = Tensor::randn([2, 5, 8], (Kind::Float, Device::Cpu));
        let k = Tensor::randn([2, 7, 8], (Kind::Float, Device::Cpu));
        let v = Tensor::randn([2, 7, 8], (Kind::Float, Device::Cpu));
        let got = multi_head_attention(&q, &k, &v, 2, false, false);
        // head 0 by hand: softmax(q k^T / sqrt(4)) v
        let (q0, k0, v0) = (q.narrow(2, 0, 4), k.narrow(2, 0, 4), v.narrow(2, 0, 4));
        let w = (q0.matmul(&k0.transpose(1, 2)) / 2.0).softmax(-1, Kind::Float);
        let want = w.matmul(&v0);
        let diff = (got.narrow(2, 0, 4) - want).abs().max().double_value(&[]);
        assert!(diff < 1e-5, "{diff}");
    }

    #[test]
    fn upcast_runs_half_precision_in_float32() {
        // Fixed inputs (not the global generator, which parallel tests share): the bound must not be luck.
        let wave = |phase: f64, scale: f64| {
            ((Tensor::arange(48, (Kind::Float, Device::Cpu)) * 0.7 + phase).sin() * scale)
                .view([1, 6, 8])
        };
        let (q, k, v) = (wave(0.0, 4.0), wave(1.3, 4.0), wave(2.1, 1.0));
        let want = multi_head_attention(&q, &k, &v, 2, false, false);
        let bf = |t: &Tensor| t.to_kind(Kind::BFloat16);
        let up = multi_head_attention(&bf(&q), &bf(&k), &bf(&v), 2, false, true);
        assert_eq!(up.kind(), Kind::BFloat16);
        let d = (up.to_kind(Kind::Float) - want)
            .abs()
            .max()
            .double_value(&[]);
        assert!(d < 1e-2, "{d}");
    }

    #[test]
    fn causal_mask_hides_the_future() {
        let q = Tensor::randn([1, 4, 6], (Kind::Float, Device::Cpu));
        let k = Tensor::randn([1, 4, 6], (Kind::Float, Device::Cpu));
        let v = Tensor::randn([1, 4, 6], (Kind::Float, Device::Cpu));
        let a = multi_head_attention(&q, &k, &v, 3, true, false);
        // changing the last value must not change the first position's output
        let v2 = v.copy();
        let _ = v2.narrow(1, 3, 1).fill_(100.0);
        let b = multi_head_attention(&q, &k, &v2, 3, true, false);
        let d = (a.narrow(1, 0, 3) - b.narrow(1, 0, 3))
            .abs()
            .max()
            .double_value(&[]);
        assert!(d < 1e-6, "{d}");
    }

    #[test]
    fn transformer_names_and_shapes() {
        for linear in [false, true] {
            let vs = nn::VarStore::new(Device::Cpu);
            let c = TransformerConfig {
                heads: 2,
                head_dim: 8,
                cross_attention_dim: 12,
                num_layers: 2,
                groups: 4,
                norm_eps: 1e-5,
                use_linear_projection: linear,
                only_cross_attention: false,
                upcast_attention: false,
            };
            let t = Transformer2DModel::new(vs.root(), 16, &c);
            let x = Tensor::randn([2, 16, 3, 5], (Kind::Float, Device::Cpu));
            let ctx = Tensor::randn([2, 7, 12], (Kind::Float, Device::Cpu));
            assert_eq!(t.forward(&x, &ctx).size(), [2, 16, 3, 5]);
            let vars = vs.variables();
            assert!(vars.contains_key("transformer_blocks.1.attn2.to_k.weight"));
            assert!(!vars.contains_key("transformer_blocks.1.attn2.to_k.bias"));
            assert!(vars.contains_key("transformer_blocks.0.ff.net.0.proj.weight"));
            assert!(vars.contains_key("transformer_blocks.0.ff.net.2.bias"));
            assert!(vars.contains_key("transformer_blocks.0.attn1.to_out.0.bias"));
            assert_eq!(vars["proj_in.weight"].dim(), if linear { 2 } else { 4 });
        }
    }
}
