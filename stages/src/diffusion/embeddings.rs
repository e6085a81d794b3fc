//! Timestep embeddings as diffusers' `Timesteps` (sinusoidal, no parameters) and `TimestepEmbedding` (two linears).

use crate::diffusion::layers;
use tch::{nn, nn::Module, Kind, Tensor};

/// Sinusoidal embedding of `timesteps [b]` → `[b, dim]` in float32, like diffusers' `get_timestep_embedding`:
/// frequencies `exp(-ln(10000) * i / (half - freq_shift))`, then `[sin, cos]`, swapped to `[cos, sin]` when
/// `flip_sin_to_cos`.
pub fn timestep_embedding(
    timesteps: &Tensor,
    dim: i64,
    flip_sin_to_cos: bool,
    freq_shift: f64,
) -> Tensor {
    let half = dim / 2;
    let device = timesteps.device();
    let exponent = Tensor::arange(half, (Kind::Float, device)) * (-(10000f64.ln()))
        / (half as f64 - freq_shift);
    let freqs = exponent.exp();
    // [b, half]
    let args = timesteps.to_kind(Kind::Float).unsqueeze(1) * freqs.unsqueeze(0);
    let (sin, cos) = (args.sin(), args.cos());
    let emb = if flip_sin_to_cos {
        Tensor::cat(&[cos, sin], -1)
    } else {
        Tensor::cat(&[sin, cos], -1)
    };
    if dim % 2 == 1 {
        emb.constant_pad_nd([0, 1, 0, 0])
    } else {
        emb
    }
}

/// `TimestepEmbedding`: `linear_2(silu(linear_1(x)))`.
#[derive(Debug)]
pub struct TimestepEmbedding {
    linear_1: nn::Linear,
    linear_2: nn::Linear,
}

impl TimestepEmbedding {
    pub fn new(vs: nn::Path, in_channels: i64, time_embed_dim: i64) -> Self {
        TimestepEmbedding {
            linear_1: layers::linear(
                &vs / "linear_1",
                in_channels,
                time_embed_dim,
                Default::default(),
            ),
            linear_2: layers::linear(
                &vs / "linear_2",
                time_embed_dim,
                time_embed_dim,
                Default::default(),
            ),
        }
    }
}

impl Module for TimestepEmbedding {
    fn forward(&self, xs: &Tensor) -> Tensor {
        self.linear_2.forward(&self.linear_1.forward(xs).silu())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn matches_formula() {
        let t = Tensor::from_slice(&[0.0f32, 999.0]);
        let e = timestep_embedding(&t, 6, true, 1.0);
        assert_eq!(e.size(), [2, 6]);
        // half = 3, freqs = exp(-ln(1e4) * i / 2) = [1, 1e-2, 1e-4]; flipped: [cos.., sin..]
        let freqs = [1.0f64, 1e-2, 1e-4];
        for (j, f) in freqs.iter().enumerate() {
            let a = 999.0 * f;
            let c = e.double_value(&[1, j as i64]);
            let s = e.double_value(&[1, 3 + j as i64]);
            assert!((c - a.cos()).abs() < 1e-4, "{c} vs {}", a.cos());
            assert!((s - a.sin()).abs() < 1e-4);
        }
        assert_eq!(e.double_value(&[0, 0]), 1.0);
        let odd = timestep_embedding(&t.to_device(Device::Cpu), 7, false, 0.0);
        assert_eq!(odd.size(), [2, 7]);
        assert_eq!(odd.double_value(&[1, 6]), 0.0);
    }
}
