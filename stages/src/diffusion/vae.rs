//! `AutoencoderKL`: image ↔ latent, as diffusers' `autoencoder_kl.py` and `vae.py` (`Encoder`, `Decoder`,
//! `DiagonalGaussianDistribution`) define it. The pipeline scales latents by `scaling_factor`; this module does not.

use super::attention::SpatialSelfAttention;
use super::config::{AutoencoderKLConfig, ConfigError};
use super::layers;
use super::resnet::{conv2d, group_norm, Downsample2D, ResnetBlock2D, ResnetConfig, Upsample2D};
use super::unet::{check_shape, InputError};
use tch::{nn, nn::Module, Tensor};

/// Every norm of the VAE uses this epsilon (diffusers hard-codes it in `Encoder`/`Decoder`).
const EPS: f64 = 1e-6;

/// The posterior of the encoder: a diagonal Gaussian per latent element.
#[derive(Debug)]
pub struct DiagonalGaussian {
    pub mean: Tensor,
    /// Already clamped to [-30, 20] like diffusers.
    pub logvar: Tensor,
}

impl DiagonalGaussian {
    /// `[b, 2 * c, h, w]` moments → mean and clamped log-variance.
    pub fn from_moments(moments: &Tensor) -> Self {
        let parts = moments.chunk(2, 1);
        DiagonalGaussian {
            mean: parts[0].shallow_clone(),
            logvar: parts[1].clamp(-30.0, 20.0),
        }
    }

    /// `mean + std * eps`, with `eps` drawn by the caller (so noise follows the project's seeding rules).
    pub fn sample(&self, eps: &Tensor) -> Tensor {
        &self.mean + self.std() * eps.to_kind(self.mean.kind())
    }

    pub fn std(&self) -> Tensor {
        (&self.logvar * 0.5).exp()
    }

    /// The distribution's mode (its mean), what diffusers' `latent_dist.mode()` returns.
    pub fn mode(&self) -> Tensor {
        self.mean.shallow_clone()
    }
}

fn vae_resnet(vs: nn::Path, c_in: i64, c_out: i64, groups: i64) -> ResnetBlock2D {
    ResnetBlock2D::new(
        vs,
        ResnetConfig {
            in_channels: c_in,
            out_channels: c_out,
            temb_channels: None,
            groups,
            eps: EPS,
            output_scale_factor: 1.0,
        },
    )
}

/// `UNetMidBlock2D` without time: resnet, (attention, resnet).
#[derive(Debug)]
struct MidBlock {
    resnets: Vec<ResnetBlock2D>,
    attention: Option<SpatialSelfAttention>,
}

impl MidBlock {
    fn new(vs: nn::Path, channels: i64, groups: i64, add_attention: bool) -> Self {
        MidBlock {
            resnets: (0..2)
                .map(|i| vae_resnet(&vs / "resnets" / i, channels, channels, groups))
                .collect(),
            attention: add_attention
                .then(|| SpatialSelfAttention::new(&vs / "attentions" / 0, channels, groups, EPS)),
        }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let mut h = self.resnets[0].forward(x, None);
        if let Some(a) = &self.attention {
            h = a.forward(&h);
        }
        self.resnets[1].forward(&h, None)
    }
}

/// `DownEncoderBlock2D` or `UpDecoderBlock2D`: resnets, then an optional resampler.
#[derive(Debug)]
struct ResBlock {
    resnets: Vec<ResnetBlock2D>,
    down: Option<Downsample2D>,
    up: Option<Upsample2D>,
}

impl ResBlock {
    fn forward(&self, x: &Tensor) -> Tensor {
        let mut h = x.shallow_clone();
        for r in &self.resnets {
            h = r.forward(&h, None);
        }
        if let Some(d) = &self.down {
            h = d.forward(&h);
        }
        if let Some(u) = &self.up {
            h = u.forward(&h, None);
        }
        h
    }
}

fn resnets(vs: &nn::Path, layers: i64, c_in: i64, c_out: i64, groups: i64) -> Vec<ResnetBlock2D> {
    (0..layers)
        .map(|i| {
            vae_resnet(
                vs / "resnets" / i,
                if i == 0 { c_in } else { c_out },
                c_out,
                groups,
            )
        })
        .collect()
}

/// The encoder half: image `[b, 3, H, W]` → moments `[b, 2 * latent, H/f, W/f]`.
#[derive(Debug)]
struct Encoder {
    conv_in: layers::Conv2d,
    blocks: Vec<ResBlock>,
    mid: MidBlock,
    norm_out: layers::GroupNorm,
    conv_out: layers::Conv2d,
}

impl Encoder {
    fn new(vs: nn::Path, cfg: &AutoencoderKLConfig) -> Self {
        let ch = &cfg.block_out_channels;
        let (n, g) = (ch.len(), cfg.norm_num_groups);
        let blocks = (0..n)
            .map(|i| {
                let bvs = &vs / "down_blocks" / i as i64;
                let c_in = if i == 0 { ch[0] } else { ch[i - 1] };
                ResBlock {
                    resnets: resnets(&bvs, cfg.layers_per_block, c_in, ch[i], g),
                    // diffusers' encoder pads asymmetrically (padding 0 + right/bottom pad)
                    down: (i + 1 < n)
                        .then(|| Downsample2D::new(&bvs / "downsamplers" / 0, ch[i], 0)),
                    up: None,
                }
            })
            .collect();
        Encoder {
            conv_in: conv2d(&vs / "conv_in", cfg.in_channels, ch[0], 3, 1, 1),
            blocks,
            mid: MidBlock::new(&vs / "mid_block", ch[n - 1], g, cfg.mid_block_add_attention),
            norm_out: group_norm(&vs / "conv_norm_out", g, ch[n - 1], EPS),
            conv_out: conv2d(
                &vs / "conv_out",
                ch[n - 1],
                2 * cfg.latent_channels,
                3,
                1,
                1,
            ),
        }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let mut h = self.conv_in.forward(x);
        for b in &self.blocks {
            h = b.forward(&h);
        }
        let h = self.mid.forward(&h);
        self.conv_out.forward(&self.norm_out.forward(&h).silu())
    }
}

/// The decoder half: latents `[b, latent, h, w]` → image `[b, 3, h*f, w*f]`.
#[derive(Debug)]
struct Decoder {
    conv_in: layers::Conv2d,
    mid: MidBlock,
    blocks: Vec<ResBlock>,
    norm_out: layers::GroupNorm,
    conv_out: layers::Conv2d,
}

impl Decoder {
    fn new(vs: nn::Path, cfg: &AutoencoderKLConfig) -> Self {
        let rch: Vec<i64> = cfg.block_out_channels.iter().rev().copied().collect();
        let (n, g) = (rch.len(), cfg.norm_num_groups);
        let blocks = (0..n)
            .map(|i| {
                let bvs = &vs / "up_blocks" / i as i64;
                let c_in = if i == 0 { rch[0] } else { rch[i - 1] };
                ResBlock {
                    resnets: resnets(&bvs, cfg.layers_per_block + 1, c_in, rch[i], g),
                    down: None,
                    up: (i + 1 < n).then(|| Upsample2D::new(&bvs / "upsamplers" / 0, rch[i])),
                }
            })
            .collect();
        Decoder {
            conv_in: conv2d(&vs / "conv_in", cfg.latent_channels, rch[0], 3, 1, 1),
            mid: MidBlock::new(&vs / "mid_block", rch[0], g, cfg.mid_block_add_attention),
            blocks,
            norm_out: group_norm(&vs / "conv_norm_out", g, rch[n - 1], EPS),
            conv_out: conv2d(&vs / "conv_out", rch[n - 1], cfg.out_channels, 3, 1, 1),
        }
    }

    fn forward(&self, z: &Tensor) -> Tensor {
        let mut h = self.mid.forward(&self.conv_in.forward(z));
        for b in &self.blocks {
            h = b.forward(&h);
        }
        self.conv_out.forward(&self.norm_out.forward(&h).silu())
    }
}

#[derive(Debug)]
pub struct AutoencoderKL {
    encoder: Encoder,
    decoder: Decoder,
    quant_conv: Option<layers::Conv2d>,
    post_quant_conv: Option<layers::Conv2d>,
    cfg: AutoencoderKLConfig,
}

impl AutoencoderKL {
    pub fn new(vs: nn::Path, cfg: &AutoencoderKLConfig) -> Result<Self, ConfigError> {
        cfg.validate()?;
        let l = cfg.latent_channels;
        Ok(AutoencoderKL {
            encoder: Encoder::new(&vs / "encoder", cfg),
            decoder: Decoder::new(&vs / "decoder", cfg),
            quant_conv: cfg
                .use_quant_conv
                .then(|| conv2d(&vs / "quant_conv", 2 * l, 2 * l, 1, 1, 0)),
            post_quant_conv: cfg
                .use_post_quant_conv
                .then(|| conv2d(&vs / "post_quant_conv", l, l, 1, 1, 0)),
            cfg: cfg.clone(),
        })
    }

    /// Image `[b, 3, H, W]` in [-1, 1] → posterior over latents `[b, latent, H/f, W/f]`.
    pub fn encode(&self, image: &Tensor) -> DiagonalGaussian {
        let moments = self.encoder.forward(image);
        let moments = match &self.quant_conv {
            Some(q) => q.forward(&moments),
            None => moments,
        };
        DiagonalGaussian::from_moments(&moments)
    }

    /// Unscaled latents `[b, latent, h, w]` → image `[b, 3, h*f, w*f]`, roughly in [-1, 1].
    pub fn decode(&self, latents: &Tensor) -> Tensor {
        let z = match &self.post_quant_conv {
            Some(p) => p.forward(latents),
            None => latents.shallow_clone(),
        };
        self.decoder.forward(&z)
    }

    /// Checks an image for [`encode`](Self::encode): `[b, in_channels, H, W]`.
    pub fn check_image(&self, image: &Tensor) -> Result<(), InputError> {
        let c = self.cfg.in_channels;
        check_shape(
            "VAE",
            "image",
            image,
            4,
            &[(1, c)],
            &format!("[b, {c}, H, W]"),
            "give RGB images in [-1, 1], channels first",
        )
    }

    /// Checks latents for [`decode`](Self::decode): `[b, latent_channels, h, w]`.
    pub fn check_latents(&self, latents: &Tensor) -> Result<(), InputError> {
        let c = self.cfg.latent_channels;
        check_shape(
            "VAE",
            "latents",
            latents,
            4,
            &[(1, c)],
            &format!("[b, {c}, h, w]"),
            "decode the UNet's latents (without the depth channel), divided by `scaling_factor`",
        )
    }

    pub fn config(&self) -> &AutoencoderKLConfig {
        &self.cfg
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn shapes_and_names() {
        let cfg: AutoencoderKLConfig = serde_json::from_value(serde_json::json!({
            "block_out_channels": [8, 16],
            "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D"],
            "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D"],
            "norm_num_groups": 4,
        }))
        .unwrap();
        let vs = nn::VarStore::new(Device::Cpu);
        let vae = AutoencoderKL::new(vs.root(), &cfg).unwrap();
        let x = Tensor::rand([2, 3, 16, 16], (Kind::Float, Device::Cpu)) * 2.0 - 1.0;
        let post = vae.encode(&x);
        assert_eq!(post.mean.size(), [2, 4, 8, 8]);
        assert_eq!(vae.decode(&post.mean).size(), [2, 3, 16, 16]);
        let vars = vs.variables();
        for key in [
            "encoder.down_blocks.0.downsamplers.0.conv.weight",
            "encoder.mid_block.attentions.0.group_norm.weight",
            "encoder.mid_block.attentions.0.to_q.bias",
            "encoder.mid_block.attentions.0.to_out.0.weight",
            "decoder.up_blocks.0.upsamplers.0.conv.weight",
            "decoder.up_blocks.1.resnets.1.conv1.weight",
            "decoder.up_blocks.1.resnets.0.conv_shortcut.weight",
            "quant_conv.weight",
            "post_quant_conv.bias",
        ] {
            assert!(vars.contains_key(key), "missing {key}");
        }
    }

    #[test]
    fn gaussian_sample_uses_std() {
        let moments = Tensor::cat(
            &[
                Tensor::full([1, 1, 1, 1], 2.0, (Kind::Float, Device::Cpu)),
                Tensor::full([1, 1, 1, 1], 100.0, (Kind::Float, Device::Cpu)),
            ],
            1,
        );
        let g = DiagonalGaussian::from_moments(&moments);
        // logvar clamps to 20, so std = exp(10)
        let eps = Tensor::ones([1, 1, 1, 1], (Kind::Float, Device::Cpu));
        let s = g.sample(&eps).double_value(&[0, 0, 0, 0]);
        assert!((s - (2.0 + 10f64.exp())).abs() < 1e-2, "{s}");
    }
}
