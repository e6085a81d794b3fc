//! `ControlNetModel`: a copy of the UNet's down and mid path that reads a control image and returns residuals for
//! the UNet's skip connections, as diffusers' `controlnets/controlnet.py` defines it.

use super::config::defaults::{d_3, d_cond_channels, d_rgb};
use super::config::{parse_json, read_text, unsupported, ConfigError};
use super::layers;
use super::resnet::conv2d;
use super::text_time::AddedCond;
use super::unet::{
    check_shape, ControlResiduals, EncoderOutput, InputError, UNet2DConditionModel, UNetEncoder,
};
use super::unet_config::UNet2DConditionConfig;
use serde::Deserialize;
use std::path::Path;
use tch::{nn, nn::Module, Tensor};

/// `controlnet/config.json` of a `ControlNetModel`: the keys of the UNet whose down and mid path it copies, with
/// the same names and defaults, plus the conditioning keys below.
#[derive(Debug, Clone, Deserialize)]
pub struct ControlNetConfig {
    /// diffusers writes only `ControlNetModel`'s own arguments into this file, so UNet keys a ControlNet lacks
    /// (`up_block_types`, `conv_out_kernel`, …) keep their defaults; [`ControlNetConfig::as_unet`] fixes the
    /// two that must mirror the down path.
    #[serde(flatten)]
    pub unet: UNet2DConditionConfig,
    #[serde(default = "d_3")]
    pub conditioning_channels: i64,
    #[serde(default = "d_rgb")]
    pub controlnet_conditioning_channel_order: String,
    #[serde(default = "d_cond_channels")]
    pub conditioning_embedding_out_channels: Vec<i64>,
    #[serde(default)]
    pub global_pool_conditions: bool,
}

impl Default for ControlNetConfig {
    fn default() -> Self {
        serde_json::from_str("{}").unwrap_or_else(|_| unreachable!("every field has a default"))
    }
}

impl ControlNetConfig {
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = read_text(path)?;
        // serde_json places an error inside a flattened struct at the end of the object; parsing the UNet
        // part alone first reports a bad UNet key at its own line.
        parse_json::<UNet2DConditionConfig>(path, &text)?;
        let cfg: Self = parse_json(path, &text)?;
        cfg.validate().map_err(|e| e.at(path))?;
        Ok(cfg)
    }

    /// The UNet config whose down and mid path this ControlNet copies (same block code, same key names).
    pub fn as_unet(&self) -> UNet2DConditionConfig {
        let up_block_types = self
            .unet
            .down_block_types
            .iter()
            .rev()
            .map(|t| t.replace("Down", "Up"))
            .collect();
        UNet2DConditionConfig {
            out_channels: self.unet.in_channels,
            up_block_types,
            ..self.unet.clone()
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        self.as_unet().validate()?;
        if self.controlnet_conditioning_channel_order != "rgb"
            && self.controlnet_conditioning_channel_order != "bgr"
        {
            return Err(unsupported(
                "controlnet_conditioning_channel_order",
                &self.controlnet_conditioning_channel_order,
            ));
        }
        if self.conditioning_embedding_out_channels.is_empty() {
            return Err(ConfigError::invalid(
                "conditioning_embedding_out_channels",
                "is empty",
                "give at least one channel count (diffusers' default is [16, 32, 96, 256])",
            ));
        }
        Ok(())
    }
}

/// `ControlNetConditioningEmbedding`: control image `[b, 3, H, W]` → features `[b, c0, H/f, W/f]` through
/// 3×3 convolutions with SiLU, each channel step a stride-2 convolution.
#[derive(Debug)]
struct ConditioningEmbedding {
    conv_in: layers::Conv2d,
    blocks: Vec<layers::Conv2d>,
    conv_out: layers::Conv2d,
}

impl ConditioningEmbedding {
    fn new(vs: nn::Path, cond_channels: i64, channels: &[i64], out_channels: i64) -> Self {
        let mut blocks = Vec::new();
        for (i, w) in channels.windows(2).enumerate() {
            let j = 2 * i as i64;
            blocks.push(conv2d(&vs / "blocks" / j, w[0], w[0], 3, 1, 1));
            blocks.push(conv2d(&vs / "blocks" / (j + 1), w[0], w[1], 3, 2, 1));
        }
        let last = channels.last().copied().unwrap_or(channels[0]);
        ConditioningEmbedding {
            conv_in: conv2d(&vs / "conv_in", cond_channels, channels[0], 3, 1, 1),
            blocks,
            conv_out: conv2d(&vs / "conv_out", last, out_channels, 3, 1, 1),
        }
    }
}

impl Module for ConditioningEmbedding {
    fn forward(&self, xs: &Tensor) -> Tensor {
        let mut h = self.conv_in.forward(xs).silu();
        for b in &self.blocks {
            h = b.forward(&h).silu();
        }
        self.conv_out.forward(&h)
    }
}

#[derive(Debug)]
pub struct ControlNetModel {
    encoder: UNetEncoder,
    cond_embedding: ConditioningEmbedding,
    down_zero_convs: Vec<layers::Conv2d>,
    mid_zero_conv: layers::Conv2d,
    skip_channels: Vec<i64>,
    cfg: ControlNetConfig,
}

impl ControlNetModel {
    pub fn new(vs: nn::Path, cfg: &ControlNetConfig) -> Result<Self, ConfigError> {
        cfg.validate()?;
        let unet_cfg = cfg.as_unet();
        let plan = unet_cfg.block_plan()?;
        let encoder = UNetEncoder::new(&vs, &unet_cfg, &plan);
        let ch = &cfg.unet.block_out_channels;
        // one zero conv per skip connection: conv_in's output, each resnet, each downsampler
        let mut skip_channels = vec![ch[0]];
        for (i, &c) in ch.iter().enumerate() {
            skip_channels.extend(std::iter::repeat_n(c, plan.layers[i].max(0) as usize));
            if i + 1 < ch.len() {
                skip_channels.push(c);
            }
        }
        let zc = &vs / "controlnet_down_blocks";
        let down_zero_convs = skip_channels
            .iter()
            .enumerate()
            .map(|(i, &c)| conv2d(&zc / i as i64, c, c, 1, 1, 0))
            .collect();
        let last = ch[ch.len() - 1];
        Ok(ControlNetModel {
            encoder,
            cond_embedding: ConditioningEmbedding::new(
                &vs / "controlnet_cond_embedding",
                cfg.conditioning_channels,
                &cfg.conditioning_embedding_out_channels,
                ch[0],
            ),
            down_zero_convs,
            mid_zero_conv: conv2d(&vs / "controlnet_mid_block", last, last, 1, 1, 0),
            skip_channels,
            cfg: cfg.clone(),
        })
    }

    /// Checks that this ControlNet's residuals fit `unet`'s skip connections (count and channels).
    pub fn check_compatible(&self, unet: &UNet2DConditionModel) -> Result<(), ConfigError> {
        let u = unet.config();
        if u.block_out_channels != self.cfg.unet.block_out_channels
            || unet.num_skips() != self.skip_channels.len()
        {
            return Err(ConfigError::invalid(
                "block_out_channels",
                format!(
                    "of the ControlNet ({:?}, {} residuals) do not match the UNet's ({:?}, {} skip connections)",
                    self.cfg.unet.block_out_channels,
                    self.skip_channels.len(),
                    u.block_out_channels,
                    unet.num_skips()
                ),
                "use a ControlNet trained for this base model (same down blocks and channels)",
            ));
        }
        let mine = self
            .encoder
            .text_time()
            .map(|t| (t.time_dim(), t.in_features()));
        if mine != unet.text_time_dims() {
            return Err(ConfigError::invalid(
                "addition_embed_type",
                format!(
                    "of the ControlNet (text_time dims {mine:?}) does not match the UNet's ({:?})",
                    unet.text_time_dims()
                ),
                "use an SDXL ControlNet with an SDXL base model and an SD 1/2 ControlNet with SD 1/2",
            ));
        }
        Ok(())
    }

    /// Checks the control image: `[b, conditioning_channels, H, W]` with the sample's batch and `H, W` a
    /// multiple of the embedding's down factor times the latent size.
    pub fn check_cond(&self, sample: &Tensor, controlnet_cond: &Tensor) -> Result<(), InputError> {
        let (b, _, h, w) = sample.size4().unwrap_or((0, 0, 0, 0));
        let f = 1i64 << (self.cfg.conditioning_embedding_out_channels.len() - 1);
        let c = self.cfg.conditioning_channels;
        check_shape(
            "ControlNet",
            "controlnet_cond",
            controlnet_cond,
            4,
            &[(0, b), (1, c), (2, h * f), (3, w * f)],
            &format!("[{b}, {c}, {}, {}]", h * f, w * f),
            "give one control image per latent, at the output image's size, values in [0, 1]",
        )
    }

    /// `sample [b, c, h, w]`, `timesteps` (`[b]` or one value), context `[b, m, d]`, control image
    /// `[b, 3, H, W]` in [0, 1] → residuals already multiplied by `conditioning_scale`.
    pub fn forward(
        &self,
        sample: &Tensor,
        timesteps: &Tensor,
        encoder_hidden_states: &Tensor,
        controlnet_cond: &Tensor,
        added: Option<&AddedCond>,
        conditioning_scale: f64,
    ) -> ControlResiduals {
        let cond = controlnet_cond.to_kind(sample.kind());
        let cond = if self.cfg.controlnet_conditioning_channel_order == "bgr" {
            cond.flip([1])
        } else {
            cond
        };
        let temb = self.encoder.time_embed(sample, timesteps, added);
        let h = self.encoder.stem(sample) + self.cond_embedding.forward(&cond);
        let context = encoder_hidden_states.to_kind(sample.kind());
        let EncoderOutput { hidden, skips, .. } = self.encoder.down_mid(h, temb, &context);
        let finish = |t: Tensor| {
            let t = if self.cfg.global_pool_conditions {
                t.mean_dim([2, 3].as_slice(), true, None)
            } else {
                t
            };
            t * conditioning_scale
        };
        let down = skips
            .iter()
            .zip(&self.down_zero_convs)
            .map(|(s, conv)| finish(conv.forward(s)))
            .collect();
        ControlResiduals {
            down,
            mid: finish(self.mid_zero_conv.forward(&hidden)),
        }
    }

    pub fn config(&self) -> &ControlNetConfig {
        &self.cfg
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn residual_shapes_and_names() {
        let cfg: ControlNetConfig = serde_json::from_value(serde_json::json!({
            "block_out_channels": [32, 64],
            "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
            "attention_head_dim": 8, "cross_attention_dim": 32, "layers_per_block": 1,
            "conditioning_embedding_out_channels": [8, 16, 16, 32],
        }))
        .unwrap();
        let vs = nn::VarStore::new(Device::Cpu);
        let cn = ControlNetModel::new(vs.root(), &cfg).unwrap();
        let x = Tensor::randn([2, 4, 8, 8], (Kind::Float, Device::Cpu));
        let ctx = Tensor::randn([2, 7, 32], (Kind::Float, Device::Cpu));
        let cond = Tensor::rand([2, 3, 64, 64], (Kind::Float, Device::Cpu));
        let r = cn.forward(&x, &Tensor::from(500i64), &ctx, &cond, None, 0.8);
        let shapes: Vec<Vec<i64>> = r.down.iter().map(Tensor::size).collect();
        assert_eq!(
            shapes,
            [
                vec![2, 32, 8, 8],
                vec![2, 32, 8, 8],
                vec![2, 32, 4, 4],
                vec![2, 64, 4, 4]
            ]
        );
        assert_eq!(r.mid.size(), [2, 64, 4, 4]);
        assert!(cn.check_cond(&x, &cond).is_ok());
        assert!(cn.check_cond(&x, &cond.narrow(2, 0, 32)).is_err());
        let vars = vs.variables();
        for key in [
            "controlnet_cond_embedding.blocks.5.weight",
            "controlnet_cond_embedding.conv_out.bias",
            "controlnet_down_blocks.3.weight",
            "controlnet_mid_block.weight",
            "down_blocks.0.attentions.0.proj_in.weight",
            "mid_block.resnets.1.conv1.weight",
        ] {
            assert!(vars.contains_key(key), "missing {key}");
        }
        assert!(!vars
            .keys()
            .any(|k| k.starts_with("up_blocks") || k.starts_with("conv_out")));
    }

    #[test]
    fn unet_keys_are_shared_and_up_path_mirrors_down_path() {
        let cfg: ControlNetConfig = serde_json::from_value(serde_json::json!({
            "in_channels": 5, "block_out_channels": [32, 64],
            "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
            "up_block_types": ["UpBlock2D"], "conditioning_channels": 1,
        }))
        .unwrap();
        let unet = cfg.as_unet();
        assert_eq!(unet.block_out_channels, [32, 64]);
        assert_eq!(unet.out_channels, 5);
        assert_eq!(unet.up_block_types, ["UpBlock2D", "CrossAttnUpBlock2D"]);
        assert_eq!(cfg.conditioning_channels, 1);
        assert_eq!(
            ControlNetConfig::default().unet.block_out_channels,
            [320, 640, 1280, 1280]
        );
    }

    #[test]
    fn parse_error_names_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.json");
        std::fs::write(
            &p,
            "{\n \"layers_per_block\": \"x\",\n \"conditioning_channels\": 3\n}\n",
        )
        .unwrap();
        match ControlNetConfig::from_file(&p) {
            Err(ConfigError::Parse { line, .. }) => assert_eq!(line, 2),
            other => panic!("expected a parse error, got {other:?}"),
        }
    }
}
