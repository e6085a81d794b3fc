//! Convolutional pieces shared by the UNet, the VAE and the ControlNet: `ResnetBlock2D`, `Downsample2D`,
//! `Upsample2D`, as diffusers' `resnet.py` and `downsampling.py`/`upsampling.py` define them.

use crate::diffusion::layers;
use tch::{nn, nn::Module, Tensor};

/// A 2-D convolution with "same" padding for odd kernels.
pub fn conv2d(
    vs: nn::Path,
    c_in: i64,
    c_out: i64,
    k: i64,
    stride: i64,
    padding: i64,
) -> layers::Conv2d {
    let cfg = nn::ConvConfig {
        stride,
        padding,
        ..Default::default()
    };
    layers::conv2d(vs, c_in, c_out, k, cfg)
}

/// GroupNorm with learned affine parameters (`weight`, `bias` under `vs`).
pub fn group_norm(vs: nn::Path, groups: i64, channels: i64, eps: f64) -> layers::GroupNorm {
    let cfg = nn::GroupNormConfig {
        eps,
        ..Default::default()
    };
    layers::group_norm(vs, groups, channels, cfg)
}

/// `ResnetBlock2D` with the "default" time-embedding mode: the embedding is added between the two convolutions.
#[derive(Debug)]
pub struct ResnetBlock2D {
    norm1: layers::GroupNorm,
    conv1: layers::Conv2d,
    time_emb_proj: Option<nn::Linear>,
    norm2: layers::GroupNorm,
    conv2: layers::Conv2d,
    conv_shortcut: Option<layers::Conv2d>,
    output_scale_factor: f64,
}

/// Construction settings of a [`ResnetBlock2D`].
#[derive(Debug, Clone, Copy)]
pub struct ResnetConfig {
    pub in_channels: i64,
    pub out_channels: i64,
    /// Width of the time embedding; `None` for the VAE, whose blocks see no time.
    pub temb_channels: Option<i64>,
    pub groups: i64,
    pub eps: f64,
    pub output_scale_factor: f64,
}

impl ResnetBlock2D {
    pub fn new(vs: nn::Path, c: ResnetConfig) -> Self {
        let conv_shortcut = (c.in_channels != c.out_channels).then(|| {
            conv2d(
                &vs / "conv_shortcut",
                c.in_channels,
                c.out_channels,
                1,
                1,
                0,
            )
        });
        ResnetBlock2D {
            norm1: group_norm(&vs / "norm1", c.groups, c.in_channels, c.eps),
            conv1: conv2d(&vs / "conv1", c.in_channels, c.out_channels, 3, 1, 1),
            time_emb_proj: c.temb_channels.map(|t| {
                layers::linear(&vs / "time_emb_proj", t, c.out_channels, Default::default())
            }),
            norm2: group_norm(&vs / "norm2", c.groups, c.out_channels, c.eps),
            conv2: conv2d(&vs / "conv2", c.out_channels, c.out_channels, 3, 1, 1),
            conv_shortcut,
            output_scale_factor: c.output_scale_factor,
        }
    }

    /// `[b, c_in, h, w]`, `temb [b, t]` → `[b, c_out, h, w]`.
    pub fn forward(&self, x: &Tensor, temb: Option<&Tensor>) -> Tensor {
        let mut h = self.conv1.forward(&self.norm1.forward(x).silu());
        if let (Some(proj), Some(t)) = (&self.time_emb_proj, temb) {
            h = &h + proj.forward(&t.silu()).unsqueeze(-1).unsqueeze(-1);
        }
        let h = self.conv2.forward(&self.norm2.forward(&h).silu());
        let skip = match &self.conv_shortcut {
            Some(c) => c.forward(x),
            None => x.shallow_clone(),
        };
        let out = skip + h;
        if self.output_scale_factor == 1.0 {
            out
        } else {
            out / self.output_scale_factor
        }
    }
}

/// `Downsample2D` with a convolution: stride 2. With `padding == 0` (the VAE encoder) the input is first padded by
/// one on the right and bottom, so odd and even sizes both halve like diffusers'.
#[derive(Debug)]
pub struct Downsample2D {
    conv: layers::Conv2d,
    padding: i64,
}

impl Downsample2D {
    pub fn new(vs: nn::Path, channels: i64, padding: i64) -> Self {
        Downsample2D {
            conv: conv2d(&vs / "conv", channels, channels, 3, 2, padding),
            padding,
        }
    }

    /// `[b, c, h, w]` → `[b, c, h/2, w/2]`.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        if self.padding == 0 {
            self.conv.forward(&x.constant_pad_nd([0, 1, 0, 1]))
        } else {
            self.conv.forward(x)
        }
    }
}

/// `Upsample2D` with a convolution: nearest-neighbour doubling, then a 3×3 convolution.
#[derive(Debug)]
pub struct Upsample2D {
    conv: layers::Conv2d,
}

impl Upsample2D {
    pub fn new(vs: nn::Path, channels: i64) -> Self {
        Upsample2D {
            conv: conv2d(&vs / "conv", channels, channels, 3, 1, 1),
        }
    }

    /// `[b, c, h, w]` → `[b, c, H, W]`; `size` is `(H, W)`, `(2h, 2w)` when `None`. The UNet passes the size of
    /// the next skip connection so inputs whose sides are not multiples of the total down factor still line up.
    pub fn forward(&self, x: &Tensor, size: Option<(i64, i64)>) -> Tensor {
        let (_, _, h, w) = x.size4().unwrap_or((0, 0, 0, 0));
        let (oh, ow) = size.unwrap_or((2 * h, 2 * w));
        let up = x.upsample_nearest2d([oh, ow], None, None);
        self.conv.forward(&up)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn shapes() {
        let vs = nn::VarStore::new(Device::Cpu);
        let r = ResnetBlock2D::new(
            vs.root() / "r",
            ResnetConfig {
                in_channels: 8,
                out_channels: 16,
                temb_channels: Some(12),
                groups: 4,
                eps: 1e-5,
                output_scale_factor: 1.0,
            },
        );
        let x = Tensor::randn([2, 8, 5, 7], (Kind::Float, Device::Cpu));
        let t = Tensor::randn([2, 12], (Kind::Float, Device::Cpu));
        assert_eq!(r.forward(&x, Some(&t)).size(), [2, 16, 5, 7]);
        let d = Downsample2D::new(vs.root() / "d", 8, 0);
        // diffusers pads right/bottom by one, then a valid stride-2 conv: (5+1-3)/2+1 = 2
        assert_eq!(d.forward(&x).size(), [2, 8, 2, 3]);
        let d1 = Downsample2D::new(vs.root() / "d1", 8, 1);
        assert_eq!(d1.forward(&x).size(), [2, 8, 3, 4]);
        let u = Upsample2D::new(vs.root() / "u", 8);
        assert_eq!(u.forward(&x, None).size(), [2, 8, 10, 14]);
        assert_eq!(u.forward(&x, Some((9, 13))).size(), [2, 8, 9, 13]);
        let names: Vec<String> = vs.variables().into_keys().collect();
        assert!(names.contains(&"r.conv_shortcut.weight".to_string()));
        assert!(names.contains(&"r.time_emb_proj.bias".to_string()));
        assert!(names.contains(&"d.conv.weight".to_string()));
    }
}
