//! The UNet's blocks as diffusers' `unet_2d_blocks.py` defines them: `CrossAttnDownBlock2D` / `DownBlock2D`
//! (one type, attention optional), `UNetMidBlock2DCrossAttn`, `CrossAttnUpBlock2D` / `UpBlock2D`.

use super::attention::{Transformer2DModel, TransformerConfig};
use super::resnet::{Downsample2D, ResnetBlock2D, ResnetConfig, Upsample2D};
use tch::nn;
use tch::Tensor;

/// Settings common to every block of one UNet.
#[derive(Debug, Clone, Copy)]
pub struct BlockCommon {
    pub temb_channels: i64,
    pub groups: i64,
    pub eps: f64,
    pub output_scale_factor: f64,
}

impl BlockCommon {
    fn resnet(&self, in_channels: i64, out_channels: i64) -> ResnetConfig {
        ResnetConfig {
            in_channels,
            out_channels,
            temb_channels: Some(self.temb_channels),
            groups: self.groups,
            eps: self.eps,
            output_scale_factor: self.output_scale_factor,
        }
    }
}

/// A down block: `layers` resnets (each followed by a transformer when `attention` is given), then a stride-2
/// downsampler unless it is the last block.
#[derive(Debug)]
pub struct DownBlock2D {
    resnets: Vec<ResnetBlock2D>,
    attentions: Vec<Transformer2DModel>,
    downsampler: Option<Downsample2D>,
}

impl DownBlock2D {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        vs: nn::Path,
        in_channels: i64,
        out_channels: i64,
        layers: i64,
        common: &BlockCommon,
        attention: Option<&TransformerConfig>,
        add_downsample: bool,
        downsample_padding: i64,
    ) -> Self {
        let resnets = (0..layers)
            .map(|i| {
                let c_in = if i == 0 { in_channels } else { out_channels };
                ResnetBlock2D::new(&vs / "resnets" / i, common.resnet(c_in, out_channels))
            })
            .collect();
        let attentions = match attention {
            Some(tc) => (0..layers)
                .map(|i| Transformer2DModel::new(&vs / "attentions" / i, out_channels, tc))
                .collect(),
            None => Vec::new(),
        };
        DownBlock2D {
            resnets,
            attentions,
            downsampler: add_downsample.then(|| {
                Downsample2D::new(&vs / "downsamplers" / 0, out_channels, downsample_padding)
            }),
        }
    }

    /// Number of skip connections this block hands to the up path.
    pub fn num_outputs(&self) -> usize {
        self.resnets.len() + usize::from(self.downsampler.is_some())
    }

    /// `[b, c_in, h, w]` → (`[b, c_out, h', w']`, the skip connections in order).
    pub fn forward(&self, x: &Tensor, temb: &Tensor, context: &Tensor) -> (Tensor, Vec<Tensor>) {
        let mut h = x.shallow_clone();
        let mut skips = Vec::with_capacity(self.num_outputs());
        for (i, resnet) in self.resnets.iter().enumerate() {
            h = resnet.forward(&h, Some(temb));
            if let Some(attn) = self.attentions.get(i) {
                h = attn.forward(&h, context);
            }
            skips.push(h.shallow_clone());
        }
        if let Some(d) = &self.downsampler {
            h = d.forward(&h);
            skips.push(h.shallow_clone());
        }
        (h, skips)
    }
}

/// `UNetMidBlock2DCrossAttn`: resnet, then (transformer, resnet) pairs.
#[derive(Debug)]
pub struct UNetMidBlock2DCrossAttn {
    resnets: Vec<ResnetBlock2D>,
    attentions: Vec<Transformer2DModel>,
}

impl UNetMidBlock2DCrossAttn {
    pub fn new(
        vs: nn::Path,
        channels: i64,
        common: &BlockCommon,
        attention: &TransformerConfig,
    ) -> Self {
        let resnets = (0..2)
            .map(|i| ResnetBlock2D::new(&vs / "resnets" / i, common.resnet(channels, channels)))
            .collect();
        UNetMidBlock2DCrossAttn {
            resnets,
            attentions: vec![Transformer2DModel::new(
                &vs / "attentions" / 0,
                channels,
                attention,
            )],
        }
    }

    /// `[b, c, h, w]` → `[b, c, h, w]`.
    pub fn forward(&self, x: &Tensor, temb: &Tensor, context: &Tensor) -> Tensor {
        let mut h = self.resnets[0].forward(x, Some(temb));
        for (attn, resnet) in self.attentions.iter().zip(&self.resnets[1..]) {
            h = attn.forward(&h, context);
            h = resnet.forward(&h, Some(temb));
        }
        h
    }
}

/// An up block: `layers` resnets, each taking the previous output concatenated with one skip connection (newest
/// first), each followed by a transformer when `attention` is given; then a 2× upsampler unless it is the last.
#[derive(Debug)]
pub struct UpBlock2D {
    resnets: Vec<ResnetBlock2D>,
    attentions: Vec<Transformer2DModel>,
    upsampler: Option<Upsample2D>,
}

/// Channel widths an up block connects: what comes from below, what it makes, and the skip widths.
#[derive(Debug, Clone, Copy)]
pub struct UpChannels {
    /// Width of the skip connection of the matching down block's input.
    pub in_channels: i64,
    pub prev_output_channels: i64,
    pub out_channels: i64,
}

impl UpBlock2D {
    pub fn new(
        vs: nn::Path,
        ch: UpChannels,
        layers: i64,
        common: &BlockCommon,
        attention: Option<&TransformerConfig>,
        add_upsample: bool,
    ) -> Self {
        let resnets = (0..layers)
            .map(|i| {
                let skip = if i == layers - 1 {
                    ch.in_channels
                } else {
                    ch.out_channels
                };
                let c_in = if i == 0 {
                    ch.prev_output_channels
                } else {
                    ch.out_channels
                };
                ResnetBlock2D::new(
                    &vs / "resnets" / i,
                    common.resnet(c_in + skip, ch.out_channels),
                )
            })
            .collect();
        let attentions = match attention {
            Some(tc) => (0..layers)
                .map(|i| Transformer2DModel::new(&vs / "attentions" / i, ch.out_channels, tc))
                .collect(),
            None => Vec::new(),
        };
        UpBlock2D {
            resnets,
            attentions,
            upsampler: add_upsample
                .then(|| Upsample2D::new(&vs / "upsamplers" / 0, ch.out_channels)),
        }
    }

    /// Number of skip connections this block consumes.
    pub fn num_inputs(&self) -> usize {
        self.resnets.len()
    }

    /// `[b, c_prev, h, w]` and this block's skips (oldest first) → `[b, c_out, H, W]`; `upsample_size` is the
    /// spatial size of the next block's skips.
    pub fn forward(
        &self,
        x: &Tensor,
        skips: &[Tensor],
        temb: &Tensor,
        context: &Tensor,
        upsample_size: Option<(i64, i64)>,
    ) -> Tensor {
        let mut h = x.shallow_clone();
        for (i, (resnet, skip)) in self.resnets.iter().zip(skips.iter().rev()).enumerate() {
            h = resnet.forward(&Tensor::cat(&[&h, skip], 1), Some(temb));
            if let Some(attn) = self.attentions.get(i) {
                h = attn.forward(&h, context);
            }
        }
        match &self.upsampler {
            Some(u) => u.forward(&h, upsample_size),
            None => h,
        }
    }
}
