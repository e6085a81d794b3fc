//! The layers the networks are built from — convolution, linear, group and layer norm, embedding — computed
//! exactly as tch's `nn` layers compute them, with one difference: built inside [`unfilled`], their parameters are
//! allocated but not initialized. Loading overwrites every parameter (or points it at the mapped file), and a
//! random init of a 4 GB model costs seconds of first-touch page faults for values nobody reads. Outside
//! [`unfilled`] they draw tch's own random init, in tch's order, which `model init-tiny` and the tests rely on.

use std::cell::Cell;

use tch::{nn, Tensor};

thread_local! {
    static UNFILLED: Cell<bool> = const { Cell::new(false) };
}

/// Builds with parameters left uninitialized, for a network whose every parameter is loaded next
/// ([`super::weights::load_mapped`] refuses a store with a parameter the files lack, so none is ever read unset).
pub fn unfilled<T>(build: impl FnOnce() -> T) -> T {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            UNFILLED.with(|u| u.set(self.0));
        }
    }
    let _restore = Restore(UNFILLED.with(|u| u.replace(true)));
    build()
}

/// Builds a network whose weights are loaded next: parameters unfilled, and the noise generator held, since a
/// parameter made outside these layers (a `Path::var` with random init) still draws from it while jobs may be
/// drawing their noise on another thread.
pub fn for_loading<T>(build: impl FnOnce() -> T) -> T {
    super::noise::with_rng_lock(|| unfilled(build))
}

fn is_unfilled() -> bool {
    UNFILLED.with(Cell::get)
}

/// An uninitialized parameter under `vs`, as `Path::var` names and shapes it.
fn param(vs: &nn::Path, name: &str, dims: &[i64]) -> Tensor {
    vs.add(name, Tensor::empty(dims, (vs.kind(), vs.device())), false)
}

/// A 2-D convolution (zero padding), as `nn::Conv2D` computes it.
#[derive(Debug)]
pub struct Conv2d {
    pub ws: Tensor,
    pub bs: Option<Tensor>,
    stride: [i64; 2],
    padding: [i64; 2],
    dilation: [i64; 2],
    groups: i64,
}

pub fn conv2d<'a>(
    vs: impl std::borrow::Borrow<nn::Path<'a>>,
    c_in: i64,
    c_out: i64,
    k: i64,
    cfg: nn::ConvConfig,
) -> Conv2d {
    let vs = vs.borrow();
    debug_assert!(matches!(cfg.padding_mode, nn::PaddingMode::Zeros));
    let (ws, bs) = if is_unfilled() {
        let bs = cfg.bias.then(|| param(vs, "bias", &[c_out]));
        (param(vs, "weight", &[c_out, c_in / cfg.groups, k, k]), bs)
    } else {
        let c = nn::conv2d(vs, c_in, c_out, k, cfg);
        (c.ws, c.bs)
    };
    Conv2d {
        ws,
        bs,
        stride: [cfg.stride; 2],
        padding: [cfg.padding; 2],
        dilation: [cfg.dilation; 2],
        groups: cfg.groups,
    }
}

impl nn::Module for Conv2d {
    fn forward(&self, xs: &Tensor) -> Tensor {
        xs.conv2d(
            &self.ws,
            self.bs.as_ref(),
            self.stride,
            self.padding,
            self.dilation,
            self.groups,
        )
    }
}

/// A linear layer: tch's own type (its fields are public), built here so it can be left unfilled.
pub fn linear<'a>(
    vs: impl std::borrow::Borrow<nn::Path<'a>>,
    c_in: i64,
    c_out: i64,
    cfg: nn::LinearConfig,
) -> nn::Linear {
    let vs = vs.borrow();
    if is_unfilled() {
        nn::Linear {
            ws: param(vs, "weight", &[c_out, c_in]),
            bs: cfg.bias.then(|| param(vs, "bias", &[c_out])),
        }
    } else {
        nn::linear(vs, c_in, c_out, cfg)
    }
}

/// GroupNorm with learned affine parameters, as `nn::GroupNorm` computes it.
#[derive(Debug)]
pub struct GroupNorm {
    ws: Option<Tensor>,
    bs: Option<Tensor>,
    groups: i64,
    eps: f64,
    cudnn_enabled: bool,
}

pub fn group_norm<'a>(
    vs: impl std::borrow::Borrow<nn::Path<'a>>,
    groups: i64,
    channels: i64,
    cfg: nn::GroupNormConfig,
) -> GroupNorm {
    let vs = vs.borrow();
    let (ws, bs) = if is_unfilled() {
        match cfg.affine {
            true => (
                Some(param(vs, "weight", &[channels])),
                Some(param(vs, "bias", &[channels])),
            ),
            false => (None, None),
        }
    } else {
        let g = nn::group_norm(vs, groups, channels, cfg);
        (g.ws, g.bs)
    };
    GroupNorm {
        ws,
        bs,
        groups,
        eps: cfg.eps,
        cudnn_enabled: cfg.cudnn_enabled,
    }
}

impl nn::Module for GroupNorm {
    fn forward(&self, xs: &Tensor) -> Tensor {
        Tensor::group_norm(
            xs,
            self.groups,
            self.ws.as_ref(),
            self.bs.as_ref(),
            self.eps,
            self.cudnn_enabled,
        )
    }
}

/// LayerNorm, as `nn::LayerNorm` computes it.
#[derive(Debug)]
pub struct LayerNorm {
    ws: Option<Tensor>,
    bs: Option<Tensor>,
    shape: Vec<i64>,
    eps: f64,
    cudnn_enabled: bool,
}

pub fn layer_norm<'a>(
    vs: impl std::borrow::Borrow<nn::Path<'a>>,
    shape: Vec<i64>,
    cfg: nn::LayerNormConfig,
) -> LayerNorm {
    let vs = vs.borrow();
    let (ws, bs) = if is_unfilled() {
        match cfg.elementwise_affine {
            true => (
                Some(param(vs, "weight", &shape)),
                Some(param(vs, "bias", &shape)),
            ),
            false => (None, None),
        }
    } else {
        let l = nn::layer_norm(vs, shape.clone(), cfg);
        (l.ws, l.bs)
    };
    LayerNorm {
        ws,
        bs,
        shape,
        eps: cfg.eps,
        cudnn_enabled: cfg.cudnn_enabled,
    }
}

impl nn::Module for LayerNorm {
    fn forward(&self, xs: &Tensor) -> Tensor {
        Tensor::layer_norm(
            xs,
            &self.shape,
            self.ws.as_ref(),
            self.bs.as_ref(),
            self.eps,
            self.cudnn_enabled,
        )
    }
}

/// A lookup table, as `nn::Embedding` computes it with its default config.
#[derive(Debug)]
pub struct Embedding {
    pub ws: Tensor,
}

pub fn embedding<'a>(
    vs: impl std::borrow::Borrow<nn::Path<'a>>,
    count: i64,
    dim: i64,
) -> Embedding {
    let vs = vs.borrow();
    let ws = if is_unfilled() {
        param(vs, "weight", &[count, dim])
    } else {
        nn::embedding(vs, count, dim, Default::default()).ws
    };
    Embedding { ws }
}

impl nn::Module for Embedding {
    fn forward(&self, xs: &Tensor) -> Tensor {
        let cfg = nn::EmbeddingConfig::default();
        Tensor::embedding(
            &self.ws,
            xs,
            cfg.padding_idx,
            cfg.scale_grad_by_freq,
            cfg.sparse,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::nn::Module;
    use tch::Kind;

    #[test]
    fn unfilled_layers_have_tch_names_and_shapes_and_compute_as_tch() {
        let filled = nn::VarStore::new(tch::Device::Cpu);
        let empty = nn::VarStore::new(tch::Device::Cpu);
        let build = |vs: &nn::VarStore| {
            let r = vs.root();
            (
                conv2d(&r / "conv", 4, 8, 3, Default::default()),
                linear(&r / "lin", 8, 6, Default::default()),
                group_norm(&r / "gn", 2, 8, Default::default()),
                layer_norm(&r / "ln", vec![6], Default::default()),
                embedding(&r / "emb", 10, 6),
            )
        };
        let a = build(&filled);
        let b = unfilled(|| build(&empty));
        assert!(!is_unfilled(), "the flag is restored");
        let shapes = |vs: &nn::VarStore| {
            let mut v: Vec<(String, Vec<i64>)> = vs
                .variables()
                .into_iter()
                .map(|(n, t)| (n, t.size()))
                .collect();
            v.sort();
            v
        };
        assert_eq!(shapes(&filled), shapes(&empty));
        // Filled from the random store, the unfilled layers compute what tch's layers compute.
        let src = filled.variables();
        for (name, mut t) in empty.variables() {
            tch::no_grad(|| t.copy_(&src[&name]));
        }
        let x = Tensor::randn([2, 4, 5, 5], (Kind::Float, tch::Device::Cpu));
        let ya = a.2.forward(&a.0.forward(&x));
        let yb = b.2.forward(&b.0.forward(&x));
        assert_eq!(f64::try_from((ya - yb).abs().max()).unwrap(), 0.0);
        let h = Tensor::randn([3, 8], (Kind::Float, tch::Device::Cpu));
        let za = a.3.forward(&a.1.forward(&h));
        let zb = b.3.forward(&b.1.forward(&h));
        assert_eq!(f64::try_from((za - zb).abs().max()).unwrap(), 0.0);
        let ids = Tensor::from_slice(&[1i64, 7, 3]);
        let ea = a.4.forward(&ids);
        let eb = b.4.forward(&ids);
        assert_eq!(f64::try_from((ea - eb).abs().max()).unwrap(), 0.0);
    }
}
