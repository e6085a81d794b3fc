//! `UNet2DConditionModel`: the noise predictor of Stable Diffusion 1.x/2.x. The input stem and down/mid path live
//! in [`UNetEncoder`] so the ControlNet builds the same modules under the same names.

use super::attention::TransformerConfig;
use super::config::ConfigError;
use super::embeddings::{timestep_embedding, TimestepEmbedding};
use super::layers;
use super::resnet::{conv2d, group_norm};
use super::text_time::{AddedCond, TextTimeEmbedding};
use super::unet_blocks::{
    BlockCommon, DownBlock2D, UNetMidBlock2DCrossAttn, UpBlock2D, UpChannels,
};
use super::unet_config::{BlockPlan, UNet2DConditionConfig};
use tch::{nn, nn::Module, Kind, Tensor};

/// A tensor handed to a network does not have the shape the network's config asks for.
#[derive(Debug, thiserror::Error)]
#[error("{network}: {what} has shape {got:?}, expected {expected}; {fix}")]
pub struct InputError {
    pub network: &'static str,
    pub what: &'static str,
    pub got: Vec<i64>,
    pub expected: String,
    pub fix: String,
}

/// Checks `t`'s rank and the listed dimensions (`(axis, size)`).
pub(crate) fn check_shape(
    network: &'static str,
    what: &'static str,
    t: &Tensor,
    rank: usize,
    dims: &[(usize, i64)],
    expected: &str,
    fix: &str,
) -> Result<(), InputError> {
    let got = t.size();
    let ok = got.len() == rank
        && dims.iter().all(|&(axis, n)| got[axis] == n)
        && got.iter().all(|&d| d > 0);
    if ok {
        Ok(())
    } else {
        Err(InputError {
            network,
            what,
            got,
            expected: expected.to_string(),
            fix: fix.to_string(),
        })
    }
}

/// What a ControlNet adds to the UNet: one tensor per skip connection of the down path (in order, the `conv_in`
/// output first), and one to the mid block's output.
#[derive(Debug)]
pub struct ControlResiduals {
    pub down: Vec<Tensor>,
    pub mid: Tensor,
}

/// The part of a UNet that a ControlNet copies: `conv_in`, `time_embedding`, `down_blocks`, `mid_block`.
#[derive(Debug)]
pub struct UNetEncoder {
    conv_in: layers::Conv2d,
    time_embedding: TimestepEmbedding,
    /// SDXL's pooled-text and size/crop embedding, added to the timestep embedding.
    text_time: Option<TextTimeEmbedding>,
    pub(crate) down_blocks: Vec<DownBlock2D>,
    pub(crate) mid_block: Option<UNetMidBlock2DCrossAttn>,
    time_proj_dim: i64,
    flip_sin_to_cos: bool,
    freq_shift: f64,
    center_input_sample: bool,
}

/// The down path's result: the mid block's output, its time embedding, and the skip connections in order.
#[derive(Debug)]
pub struct EncoderOutput {
    pub hidden: Tensor,
    pub temb: Tensor,
    pub skips: Vec<Tensor>,
}

fn transformer_config(
    cfg: &UNet2DConditionConfig,
    channels: i64,
    heads: i64,
    cross: i64,
    layers: i64,
    only_cross: bool,
) -> TransformerConfig {
    TransformerConfig {
        heads,
        head_dim: channels / heads.max(1),
        cross_attention_dim: cross,
        num_layers: layers,
        groups: cfg.groups(),
        norm_eps: 1e-5,
        use_linear_projection: cfg.use_linear_projection,
        only_cross_attention: only_cross,
        upcast_attention: cfg.upcast_attention,
    }
}

fn common(cfg: &UNet2DConditionConfig, scale: f64) -> BlockCommon {
    BlockCommon {
        temb_channels: cfg.block_out_channels[0] * 4,
        groups: cfg.groups(),
        eps: cfg.norm_eps,
        output_scale_factor: scale,
    }
}

impl UNetEncoder {
    /// Builds the stem and down/mid path under `vs`; `cfg` must have passed `validate`.
    pub fn new(vs: &nn::Path, cfg: &UNet2DConditionConfig, plan: &BlockPlan) -> Self {
        let ch = &cfg.block_out_channels;
        let n = ch.len();
        let k = cfg.conv_in_kernel;
        // diffusers hands `resnet_out_scale_factor` only to block types SD does not use; these get 1.0
        let down_common = common(cfg, 1.0);
        let down_blocks = (0..n)
            .map(|i| {
                let c_in = if i == 0 { ch[0] } else { ch[i - 1] };
                let attention = (cfg.down_block_types[i] == "CrossAttnDownBlock2D").then(|| {
                    transformer_config(
                        cfg,
                        ch[i],
                        plan.heads[i],
                        plan.cross_attention_dim[i],
                        plan.transformer_layers[i],
                        plan.only_cross_attention[i],
                    )
                });
                DownBlock2D::new(
                    vs / "down_blocks" / i as i64,
                    c_in,
                    ch[i],
                    plan.layers[i],
                    &down_common,
                    attention.as_ref(),
                    i + 1 < n,
                    cfg.downsample_padding,
                )
            })
            .collect();
        let mid_block = cfg.mid_block_type.as_ref().map(|_| {
            let tc = transformer_config(
                cfg,
                ch[n - 1],
                plan.heads[n - 1],
                plan.cross_attention_dim[n - 1],
                plan.transformer_layers[n - 1],
                false,
            );
            UNetMidBlock2DCrossAttn::new(
                vs / "mid_block",
                ch[n - 1],
                &common(cfg, cfg.mid_block_scale_factor),
                &tc,
            )
        });
        UNetEncoder {
            conv_in: conv2d(vs / "conv_in", cfg.in_channels, ch[0], k, 1, (k - 1) / 2),
            time_embedding: TimestepEmbedding::new(vs / "time_embedding", ch[0], ch[0] * 4),
            text_time: cfg.text_time_dims().map(|(time_dim, in_features)| {
                TextTimeEmbedding::new(
                    vs,
                    time_dim,
                    in_features,
                    ch[0] * 4,
                    cfg.flip_sin_to_cos,
                    cfg.freq_shift,
                )
            }),
            down_blocks,
            mid_block,
            time_proj_dim: ch[0],
            flip_sin_to_cos: cfg.flip_sin_to_cos,
            freq_shift: cfg.freq_shift,
            center_input_sample: cfg.center_input_sample,
        }
    }

    /// Time embedding `[b, 4 * c0]` in the sample's dtype for `timesteps` (`[b]`, `[1]` or a scalar), plus
    /// SDXL's added embedding when the network has one and `added` is given.
    pub fn time_embed(
        &self,
        sample: &Tensor,
        timesteps: &Tensor,
        added: Option<&AddedCond>,
    ) -> Tensor {
        let b = sample.size()[0];
        let t = timesteps
            .to_device(sample.device())
            .reshape([-1])
            .expand([b], false);
        let t_emb = timestep_embedding(
            &t,
            self.time_proj_dim,
            self.flip_sin_to_cos,
            self.freq_shift,
        );
        let emb = self.time_embedding.forward(&t_emb.to_kind(sample.kind()));
        match (&self.text_time, added) {
            (Some(tt), Some(a)) => emb + tt.forward(a, sample.kind()),
            _ => emb,
        }
    }

    pub fn text_time(&self) -> Option<&TextTimeEmbedding> {
        self.text_time.as_ref()
    }

    /// `conv_in` applied to the (optionally centred) sample.
    pub fn stem(&self, sample: &Tensor) -> Tensor {
        if self.center_input_sample {
            self.conv_in.forward(&(sample * 2.0 - 1.0))
        } else {
            self.conv_in.forward(sample)
        }
    }

    /// Runs the down blocks and the mid block from the stem's output `h`.
    pub fn down_mid(&self, h: Tensor, temb: Tensor, context: &Tensor) -> EncoderOutput {
        let mut skips = vec![h.shallow_clone()];
        let mut h = h;
        for block in &self.down_blocks {
            let (out, s) = block.forward(&h, &temb, context);
            h = out;
            skips.extend(s);
        }
        if let Some(mid) = &self.mid_block {
            h = mid.forward(&h, &temb, context);
        }
        EncoderOutput {
            hidden: h,
            temb,
            skips,
        }
    }

    /// An SDXL network needs `added` with `[b, projection]` text embeds and `[b, n]` ids whose widths fill
    /// `add_embedding`; an SD 1/2 network ignores it.
    pub(crate) fn check_added(
        &self,
        network: &'static str,
        b: i64,
        added: Option<&AddedCond>,
    ) -> Result<(), InputError> {
        let Some(tt) = &self.text_time else {
            return Ok(());
        };
        let fix = "give SDXL's pooled text embedding and its size/crop ids, one row per sample";
        let Some(a) = added else {
            return Err(InputError {
                network,
                what: "added conditioning (text_embeds, time_ids)",
                got: Vec::new(),
                expected: format!(
                    "[{b}, p] and [{b}, n] with p + n × {} = {}",
                    tt.time_dim(),
                    tt.in_features()
                ),
                fix: fix.into(),
            });
        };
        let (te, ids) = (a.text_embeds.size(), a.time_ids.size());
        let fits = te.len() == 2
            && ids.len() == 2
            && te[0] == b
            && ids[0] == b
            && te[1] + ids[1] * tt.time_dim() == tt.in_features();
        if fits {
            Ok(())
        } else {
            Err(InputError {
                network,
                what: "text_embeds and time_ids",
                got: [te, ids].concat(),
                expected: format!("[{b}, p] and [{b}, n] with p + n × {} = {}", tt.time_dim(), tt.in_features()),
                fix: "use the second text encoder of this model and 6 ids (5 for a refiner with aesthetic score)".into(),
            })
        }
    }

    /// Number of skip connections (what a ControlNet's `down` residuals must count).
    pub fn num_skips(&self) -> usize {
        1 + self
            .down_blocks
            .iter()
            .map(DownBlock2D::num_outputs)
            .sum::<usize>()
    }
}

#[derive(Debug)]
pub struct UNet2DConditionModel {
    encoder: UNetEncoder,
    up_blocks: Vec<UpBlock2D>,
    conv_norm_out: Option<layers::GroupNorm>,
    conv_out: layers::Conv2d,
    cfg: UNet2DConditionConfig,
}

impl UNet2DConditionModel {
    pub fn new(vs: nn::Path, cfg: &UNet2DConditionConfig) -> Result<Self, ConfigError> {
        cfg.validate()?;
        let plan = cfg.block_plan()?;
        let encoder = UNetEncoder::new(&vs, cfg, &plan);
        let ch = &cfg.block_out_channels;
        let n = ch.len();
        let rev = |v: &[i64]| v.iter().rev().copied().collect::<Vec<_>>();
        let (rch, rheads, rlayers) = (rev(ch), rev(&plan.heads), rev(&plan.layers));
        let (rcross, rtl) = (
            rev(&plan.cross_attention_dim),
            rev(&plan.transformer_layers),
        );
        let ronly: Vec<bool> = plan.only_cross_attention.iter().rev().copied().collect();
        let up_common = common(cfg, 1.0);
        let mut out_ch = rch[0];
        let mut up_blocks = Vec::with_capacity(n);
        for i in 0..n {
            let prev = out_ch;
            out_ch = rch[i];
            let attention = (cfg.up_block_types[i] == "CrossAttnUpBlock2D")
                .then(|| transformer_config(cfg, out_ch, rheads[i], rcross[i], rtl[i], ronly[i]));
            let channels = UpChannels {
                in_channels: rch[(i + 1).min(n - 1)],
                prev_output_channels: prev,
                out_channels: out_ch,
            };
            up_blocks.push(UpBlock2D::new(
                &vs / "up_blocks" / i as i64,
                channels,
                rlayers[i] + 1,
                &up_common,
                attention.as_ref(),
                i + 1 < n,
            ));
        }
        let k = cfg.conv_out_kernel;
        Ok(UNet2DConditionModel {
            encoder,
            up_blocks,
            conv_norm_out: cfg
                .norm_num_groups
                .map(|g| group_norm(&vs / "conv_norm_out", g, ch[0], cfg.norm_eps)),
            conv_out: conv2d(&vs / "conv_out", ch[0], cfg.out_channels, k, 1, (k - 1) / 2),
            cfg: cfg.clone(),
        })
    }

    /// `[b, c_in, h, w]` → `[b, c_out, h, w]` at one timestep shared by the batch (SD 1/2: no added conds).
    pub fn forward(
        &self,
        sample: &Tensor,
        timestep: f64,
        encoder_hidden_states: &Tensor,
        residuals: Option<&ControlResiduals>,
    ) -> Tensor {
        let t = Tensor::from_slice(&[timestep]).to_device(sample.device());
        self.forward_t(sample, &t, encoder_hidden_states, None, residuals)
    }

    /// As [`forward`](Self::forward) with one timestep per sample (`[b]`, or one value broadcast to the batch).
    /// Residuals are added like diffusers' `down_block_additional_residuals` / `mid_block_additional_residual`;
    /// check their count with [`num_skips`](Self::num_skips) before (extra or missing ones are ignored).
    /// `added` is SDXL's `added_cond_kwargs` (required by an SDXL UNet, see [`check_inputs`](Self::check_inputs)).
    pub fn forward_t(
        &self,
        sample: &Tensor,
        timesteps: &Tensor,
        encoder_hidden_states: &Tensor,
        added: Option<&AddedCond>,
        residuals: Option<&ControlResiduals>,
    ) -> Tensor {
        let temb = self.encoder.time_embed(sample, timesteps, added);
        let h = self.encoder.stem(sample);
        let context = encoder_hidden_states.to_kind(sample.kind());
        let EncoderOutput {
            hidden: mut h,
            temb,
            mut skips,
        } = self.encoder.down_mid(h, temb, &context);
        if let Some(r) = residuals {
            for (s, d) in skips.iter_mut().zip(&r.down) {
                *s = &*s + d.to_kind(s.kind());
            }
            // not `+=`: without a mid block `h` shares storage with the last skip connection
            h = &h + r.mid.to_kind(sample.kind());
        }
        // [b, c_last, h/f, w/f]
        for block in &self.up_blocks {
            let take = block.num_inputs().min(skips.len());
            let mine = skips.split_off(skips.len() - take);
            let size = skips
                .last()
                .and_then(|s| s.size4().ok())
                .map(|(_, _, h, w)| (h, w));
            h = block.forward(&h, &mine, &temb, &context, size);
        }
        if let Some(norm) = &self.conv_norm_out {
            h = norm.forward(&h).silu();
        }
        self.conv_out.forward(&h)
    }

    /// Checks shapes before [`forward_t`](Self::forward_t), whose tensor ops would panic on a mismatch.
    pub fn check_inputs(
        &self,
        sample: &Tensor,
        timesteps: &Tensor,
        encoder_hidden_states: &Tensor,
        added: Option<&AddedCond>,
        residuals: Option<&ControlResiduals>,
    ) -> Result<(), InputError> {
        let c = &self.cfg;
        let net = "UNet";
        check_shape(
            net,
            "sample",
            sample,
            4,
            &[(1, c.in_channels)],
            &format!("[b, {}, h, w]", c.in_channels),
            "give latents with the model's `in_channels` (SD 2-depth: 4 latent + 1 depth channel)",
        )?;
        let b = sample.size()[0];
        let n = timesteps.numel() as i64;
        if n != 1 && n != b {
            return Err(InputError {
                network: net,
                what: "timesteps",
                got: timesteps.size(),
                expected: format!("one value or {b}"),
                fix: "give one timestep for the batch or one per sample".into(),
            });
        }
        let cross = c
            .block_plan()
            .map(|p| p.cross_attention_dim[0])
            .unwrap_or(0);
        check_shape(
            net,
            "encoder_hidden_states",
            encoder_hidden_states,
            3,
            &[(0, b), (2, cross)],
            &format!("[{b}, tokens, {cross}]"),
            "use the text encoder that ships with this UNet, one row per sample",
        )?;
        self.encoder.check_added(net, b, added)?;
        if let Some(r) = residuals {
            if r.down.len() != self.num_skips() {
                return Err(InputError {
                    network: net,
                    what: "ControlNet down residuals",
                    got: vec![r.down.len() as i64],
                    expected: format!("{} tensors", self.num_skips()),
                    fix: "use a ControlNet made for this base model".into(),
                });
            }
        }
        Ok(())
    }

    /// [`check_inputs`](Self::check_inputs), then [`forward_t`](Self::forward_t).
    pub fn try_forward_t(
        &self,
        sample: &Tensor,
        timesteps: &Tensor,
        encoder_hidden_states: &Tensor,
        added: Option<&AddedCond>,
        residuals: Option<&ControlResiduals>,
    ) -> Result<Tensor, InputError> {
        self.check_inputs(sample, timesteps, encoder_hidden_states, added, residuals)?;
        Ok(self.forward_t(sample, timesteps, encoder_hidden_states, added, residuals))
    }

    /// Number of skip connections a ControlNet must provide residuals for.
    pub fn num_skips(&self) -> usize {
        self.encoder.num_skips()
    }

    pub fn config(&self) -> &UNet2DConditionConfig {
        &self.cfg
    }

    /// Time embedding, for tests and tools that inspect the conditioning (`[b, 4 * c0]`).
    pub fn time_embedding(
        &self,
        sample: &Tensor,
        timesteps: &Tensor,
        added: Option<&AddedCond>,
    ) -> Tensor {
        self.encoder.time_embed(sample, timesteps, added)
    }

    /// `(addition_time_embed_dim, add_embedding input width)` of an SDXL UNet.
    pub fn text_time_dims(&self) -> Option<(i64, i64)> {
        self.encoder
            .text_time()
            .map(|t| (t.time_dim(), t.in_features()))
    }
}

/// float32 timesteps of a batch, for callers that hold step values as `f64`.
pub fn timesteps_tensor(values: &[f64]) -> Tensor {
    Tensor::from_slice(values).to_kind(Kind::Float)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn tiny_config(linear: bool) -> UNet2DConditionConfig {
        serde_json::from_value(serde_json::json!({
            "block_out_channels": [32, 64],
            "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
            "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"],
            "attention_head_dim": [2, 4],
            "cross_attention_dim": 24,
            "layers_per_block": 1,
            "norm_num_groups": 8,
            "use_linear_projection": linear,
            "in_channels": 5,
        }))
        .unwrap()
    }

    #[test]
    fn shapes_and_names() {
        for linear in [false, true] {
            let vs = nn::VarStore::new(Device::Cpu);
            let unet = UNet2DConditionModel::new(vs.root(), &tiny_config(linear)).unwrap();
            let x = Tensor::randn([2, 5, 8, 8], (Kind::Float, Device::Cpu));
            let ctx = Tensor::randn([2, 7, 24], (Kind::Float, Device::Cpu));
            assert_eq!(unet.forward(&x, 10.0, &ctx, None).size(), [2, 4, 8, 8]);
            // sides not divisible by the down factor still come back at full size
            let odd = Tensor::randn([1, 5, 7, 9], (Kind::Float, Device::Cpu));
            assert_eq!(
                unet.forward(&odd, 10.0, &ctx.narrow(0, 0, 1), None).size(),
                [1, 4, 7, 9]
            );
            assert_eq!(unet.num_skips(), 4);
            let vars = vs.variables();
            for key in [
                "conv_in.weight",
                "time_embedding.linear_2.bias",
                "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight",
                "down_blocks.0.downsamplers.0.conv.weight",
                "mid_block.attentions.0.proj_in.weight",
                "mid_block.resnets.1.conv2.weight",
                "up_blocks.0.resnets.1.conv_shortcut.weight",
                "up_blocks.0.upsamplers.0.conv.weight",
                "up_blocks.1.attentions.1.norm.weight",
                "conv_norm_out.weight",
                "conv_out.bias",
            ] {
                assert!(vars.contains_key(key), "missing {key}");
            }
            assert!(!vars.contains_key("up_blocks.1.upsamplers.0.conv.weight"));
            // mid attention with 4 heads of 16 over 64 channels; legacy attention_head_dim read as heads
            assert_eq!(
                vars["down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight"].size(),
                [32, 32]
            );
        }
    }

    #[test]
    fn bad_shapes_are_errors_not_panics() {
        let vs = nn::VarStore::new(Device::Cpu);
        let unet = UNet2DConditionModel::new(vs.root(), &tiny_config(false)).unwrap();
        let ctx = Tensor::randn([2, 7, 24], (Kind::Float, Device::Cpu));
        let t = timesteps_tensor(&[1.0]);
        let four = Tensor::randn([2, 4, 8, 8], (Kind::Float, Device::Cpu));
        let e = unet.try_forward_t(&four, &t, &ctx, None, None).unwrap_err();
        assert!(e.to_string().contains("in_channels"), "{e}");
        let five = Tensor::randn([2, 5, 8, 8], (Kind::Float, Device::Cpu));
        assert!(unet
            .try_forward_t(&five, &t, &ctx.narrow(2, 0, 16), None, None)
            .is_err());
        assert!(unet
            .try_forward_t(&five, &timesteps_tensor(&[1.0, 2.0, 3.0]), &ctx, None, None)
            .is_err());
        assert!(unet.try_forward_t(&five, &t, &ctx, None, None).is_ok());
    }

    #[test]
    fn per_sample_timesteps_equal_shared() {
        let vs = nn::VarStore::new(Device::Cpu);
        let unet = UNet2DConditionModel::new(vs.root(), &tiny_config(false)).unwrap();
        let x = Tensor::randn([2, 5, 8, 8], (Kind::Float, Device::Cpu));
        let ctx = Tensor::randn([2, 7, 24], (Kind::Float, Device::Cpu));
        let a = unet.forward(&x, 500.0, &ctx, None);
        let b = unet.forward_t(&x, &timesteps_tensor(&[500.0, 500.0]), &ctx, None, None);
        assert!((a - b).abs().max().double_value(&[]) < 1e-6);
    }
}
