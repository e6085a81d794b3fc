//! Stable Diffusion img2img, step for step diffusers' `StableDiffusionImg2ImgPipeline`: encode the image,
//! noise it to the strength's start timestep, denoise with classifier-free guidance, decode.
//!
//! A batch holds jobs with equal [`BatchKey`]s; each job keeps its own seed (diffusers with a list of
//! generators), prompt, negative prompt and guidance scale.

use std::path::Path;

use tch::{nn::VarStore, Device, Kind, Tensor};

use super::clip::ClipTextTransformer;
use super::component_load;
use super::config::AutoencoderKLConfig;
use super::controlnet::ControlNetConfig;
use super::controlnet::ControlNetModel;
use super::layers;
use super::model_dir::ModelSource;
use super::pipeline_source::{ModelRef, PipelineSource};
use super::prompt_encoder::{PromptEmbeds, PromptEncoder};
use super::schedulers::{Scheduler, SchedulerConfig, SchedulerKind};
use super::tokenizer::ClipTokenizer;
use super::unet::UNet2DConditionModel;
use super::vae::AutoencoderKL;
use super::xl::XlSettings;

mod cond;
mod denoise;
mod text_load;

use super::config::ClipTextConfig;
pub use super::error::DiffusionError;
pub use super::image_tensors::{postprocess, DepthMap};
use super::lora::merge::AdapterState;
use super::lora::{LoraSpec, Network};
pub use super::request::{batch_key, t_start, BatchKey, Condition, ConditionKind, Img2ImgRequest};
use super::single_file::unet_keys::UNetKeys;
use super::textual_inversion::{self, Embedding, EmbeddingError, EmbeddingSpec};
use cond::Cond;

/// A loaded pipeline: text encoder(s) with their tokenizers, UNet, VAE and the scheduler config (SD 1/2 or SDXL).
pub struct StableDiffusion {
    text: PromptEncoder,
    unet: UNet2DConditionModel,
    vae: AutoencoderKL,
    vae_cfg: AutoencoderKLConfig,
    unet_in_channels: i64,
    scheduler_config: SchedulerConfig,
    scheduler_kind: Option<SchedulerKind>,
    controlnet: Option<ControlNetModel>,
    /// SDXL's conditioning settings (`None`: SD 1/2).
    xl: Option<XlSettings>,
    /// A stage's LoRAs merged on top of the model's, switched between batches.
    adapters: AdapterState,
    /// Textual-inversion tokens and their vector counts (prompts naming one are expanded).
    embeddings: Vec<(String, usize)>,
    // The modules hold their tensors through these stores (the text encoders' are in `text`): UNet, VAE, then
    // any ControlNet.
    _stores: Vec<VarStore>,
    device: Device,
    dtype: Kind,
    model_id: String,
}

/// Adds each embedding's vectors as tokens past the vocabulary (ids in file order, as diffusers appends them).
fn add_embeddings(
    specs: &[EmbeddingSpec],
    tokenizer: &mut ClipTokenizer,
    text: &mut ClipTextTransformer,
    cfg: &ClipTextConfig,
) -> Result<Vec<(String, usize)>, DiffusionError> {
    let mut rows = Vec::new();
    let mut tokens = Vec::new();
    let mut next = cfg.vocab_size;
    for spec in specs {
        let e = Embedding::read(spec)?;
        let width = e.vectors.size()[1];
        if width != cfg.hidden_size {
            return Err(EmbeddingError::Width {
                path: e.path,
                found: width,
                expected: cfg.hidden_size,
            }
            .into());
        }
        for token in e.tokens() {
            tokenizer
                .add_token(&token, next)
                .map_err(|reason| EmbeddingError::Token {
                    path: e.path.clone(),
                    reason,
                })?;
            next += 1;
        }
        tokens.push((e.token.clone(), e.vectors.size()[0] as usize));
        rows.push(e.vectors);
    }
    text.set_added_tokens((!rows.is_empty()).then(|| Tensor::cat(&rows, 0)));
    Ok(tokens)
}

impl StableDiffusion {
    /// Loads a diffusers folder (or a cached hub id) onto `device` in `dtype` (fp32 on CPU; fp16/bf16 on CUDA).
    /// `scheduler` swaps the model's scheduler class, keeping its config.
    pub fn load(
        model: &ModelSource,
        device: Device,
        dtype: Kind,
        scheduler: Option<SchedulerKind>,
    ) -> Result<Self, DiffusionError> {
        Self::load_ref(&ModelRef::from(model.clone()), device, dtype, scheduler)
    }

    /// As [`Self::load`] for any model a recipe can name: a single-file checkpoint, a `config` folder, a VAE swap,
    /// a weights variant.
    pub fn load_ref(
        model: &ModelRef,
        device: Device,
        dtype: Kind,
        scheduler: Option<SchedulerKind>,
    ) -> Result<Self, DiffusionError> {
        Self::from_source(&model.resolve()?, device, dtype, scheduler)
    }

    pub fn from_source(
        src: &PipelineSource,
        device: Device,
        dtype: Kind,
        scheduler: Option<SchedulerKind>,
    ) -> Result<Self, DiffusionError> {
        let scheduler_config = src.configs.scheduler()?;
        // Fail on a bad scheduler config now rather than at the first job.
        Scheduler::new(&scheduler_config, scheduler)?;
        let unet_cfg = src.configs.unet()?;
        let mut unet = component_load::unet(src, &unet_cfg, device)?;
        let (mut text, xl) = text_load::load_text(src, &unet_cfg, device)?;
        let embeddings = if src.embeddings.is_empty() {
            Vec::new()
        } else if xl.is_some() {
            return Err(DiffusionError::XlUnsupported {
                model: src.id.clone(),
                what: "textual-inversion embeddings",
            });
        } else {
            let te_cfg = text.first().net.config().clone();
            let first = text.first_mut();
            add_embeddings(
                &src.embeddings,
                &mut first.tokenizer,
                &mut first.net,
                &te_cfg,
            )?
        };
        let mut text_stores: Vec<(Network, &mut VarStore)> = text
            .towers
            .iter_mut()
            .map(|t| (Network::text(t.component), &mut t.store))
            .collect();
        component_load::finish_text_and_unet(src, &unet_cfg, &mut text_stores, &mut unet, dtype)?;
        let (vae_origin, vae_cfg) = component_load::vae_config(src)?;
        let vae = component_load::vae(src, &vae_cfg, &vae_origin, device, dtype)?;
        let mut sd = Self {
            text,
            unet: unet.net,
            vae: vae.net,
            vae_cfg,
            unet_in_channels: unet_cfg.in_channels,
            scheduler_config,
            scheduler_kind: scheduler,
            controlnet: None,
            xl,
            adapters: AdapterState::default(),
            embeddings,
            _stores: vec![unet.store, vae.store],
            device,
            dtype,
            model_id: src.id.clone(),
        };
        if let Some(dir) = src.own_controlnet() {
            sd.attach_controlnet(&dir)?;
        }
        Ok(sd)
    }

    /// SDXL's conditioning settings, `None` for SD 1/2.
    pub fn xl(&self) -> Option<XlSettings> {
        self.xl
    }

    /// Loads a ControlNet (`config.json` + `diffusion_pytorch_model.safetensors`) for this base model.
    pub fn attach_controlnet(&mut self, dir: &Path) -> Result<(), DiffusionError> {
        let cfg_path = dir.join("config.json");
        let cfg = ControlNetConfig::from_file(&cfg_path)?;
        let mut vs = VarStore::new(self.device);
        let net = layers::for_loading(|| ControlNetModel::new(vs.root(), &cfg))
            .map_err(|e| e.at(&cfg_path))?;
        net.check_compatible(&self.unet)
            .map_err(|e| e.at(&cfg_path))?;
        component_load::fill_from_folder(
            &mut vs,
            dir,
            "diffusion_pytorch_model",
            None,
            self.dtype,
        )?;
        self.controlnet = Some(net);
        self._stores.push(vs);
        Ok(())
    }

    /// Puts the LoRA set `specs` on top of the model as loaded (an empty set: the model as loaded). Exact: the
    /// weights a set changed are restored from kept copies (the model is never re-read; the LoRA files, small, are).
    /// A set that fails to merge leaves the model as loaded.
    pub fn use_adapters(&mut self, specs: &[LoraSpec]) -> Result<(), DiffusionError> {
        let keys = UNetKeys::new(self.unet.config(), false)?;
        let ldm = |n: &str| keys.ldm_key(n);
        let towers: Vec<(Network, &VarStore)> = self
            .text
            .towers
            .iter()
            .map(|t| (Network::text(t.component), &t.store))
            .collect();
        self.adapters
            .switch(specs, &towers, &self._stores[0], &ldm)?;
        Ok(())
    }

    pub fn has_controlnet(&self) -> bool {
        self.controlnet.is_some()
    }

    pub fn model_id(&self) -> &str {
        &self.model_id
    }

    fn vae_dtype(&self) -> Kind {
        if self.vae_cfg.force_upcast {
            Kind::Float
        } else {
            self.dtype
        }
    }

    pub fn vae_scale_factor(&self) -> i64 {
        self.vae_cfg.scale_factor()
    }

    pub fn device(&self) -> Device {
        self.device
    }

    /// The scheduler the jobs run with (the model's own class unless one was chosen at load).
    pub fn scheduler(&self) -> Result<Scheduler, DiffusionError> {
        self.scheduler_for(None)
    }

    /// The scheduler of `kind` (`None`: the one this pipeline was loaded with) on the model's scheduler config. A
    /// scheduler is cheap state, so each batch builds its own: one loaded model serves every scheduler.
    pub fn scheduler_for(&self, kind: Option<SchedulerKind>) -> Result<Scheduler, DiffusionError> {
        Ok(Scheduler::new(
            &self.scheduler_config,
            kind.or(self.scheduler_kind),
        )?)
    }

    /// The 77 token ids a prompt runs with by the first tokenizer (textual-inversion tokens expanded).
    pub fn prompt_ids(&self, prompt: &str) -> Vec<i64> {
        self.text.first().tokenizer.encode(&self.expand(prompt))
    }

    fn expand(&self, prompt: &str) -> String {
        textual_inversion::expand_prompt(prompt, &self.embeddings)
    }

    /// `[b, 77, cross_attention_dim]` text embeddings of `prompts` (SDXL: both encoders' penultimate states).
    pub fn encode_prompts(&self, prompts: &[&str]) -> Tensor {
        self.prompt_embeds(prompts).context
    }

    /// The UNet's text conditioning of `prompts`, with SDXL's pooled embedding.
    pub fn prompt_embeds(&self, prompts: &[&str]) -> PromptEmbeds {
        let expanded: Vec<String> = prompts.iter().map(|p| self.expand(p)).collect();
        self.text.encode(&expanded, self.device)
    }

    /// As [`prompt_embeds`](Self::prompt_embeds) for negative prompts: SDXL base zeroes an empty one, as
    /// diffusers does for `negative_prompt=None` under `force_zeros_for_empty_prompt`.
    pub fn negative_embeds(&self, negatives: &[&str]) -> PromptEmbeds {
        let expanded: Vec<String> = negatives.iter().map(|p| self.expand(p)).collect();
        self.text.encode_negative(&expanded, self.device)
    }

    fn validate(&self, batch: &[Img2ImgRequest]) -> Result<BatchKey, DiffusionError> {
        let first = batch.first().ok_or(DiffusionError::EmptyBatch)?;
        let key = batch_key(first);
        let factor = self.vae_scale_factor() as u32;
        for (i, r) in batch.iter().enumerate() {
            let (w, h) = r.image.dimensions();
            if w == 0 || h == 0 || w % factor != 0 || h % factor != 0 {
                return Err(DiffusionError::Size {
                    index: i,
                    width: w,
                    height: h,
                    factor,
                });
            }
            if (w, h) != (key.width, key.height) {
                return Err(DiffusionError::MixedSizes {
                    index: i,
                    width: w,
                    height: h,
                    w0: key.width,
                    h0: key.height,
                });
            }
            if !(0.0..=1.0).contains(&r.strength) {
                return Err(DiffusionError::Strength {
                    index: i,
                    strength: r.strength,
                });
            }
            let k = batch_key(r);
            if k.steps != key.steps || k.t_start != key.t_start {
                return Err(DiffusionError::MixedBatch {
                    index: i,
                    what: "steps and start step (steps × strength)",
                });
            }
            if k.guided != key.guided {
                return Err(DiffusionError::MixedBatch {
                    index: i,
                    what: "guidance mode (guidance > 1 or not)",
                });
            }
            if k.adapters != key.adapters {
                return Err(DiffusionError::MixedBatch {
                    index: i,
                    what: "LoRA set",
                });
            }
            if k.denoising_start_bits != key.denoising_start_bits {
                return Err(DiffusionError::MixedBatch {
                    index: i,
                    what: "denoising_start",
                });
            }
            if k.scheduler != key.scheduler {
                return Err(DiffusionError::MixedBatch {
                    index: i,
                    what: "scheduler",
                });
            }
        }
        if key.t_start >= key.steps && first.denoising_start.is_none() {
            return Err(DiffusionError::NoSteps {
                strength: first.strength,
                steps: first.steps,
            });
        }
        Ok(key)
    }

    /// Whether the UNet takes a depth channel (SD 2-depth): use [`Self::depth2img`] then.
    pub fn is_depth_model(&self) -> bool {
        self.unet_in_channels == 5
    }

    /// Whether the UNet takes a mask and the masked image (an inpainting model): use [`Self::inpaint`] then.
    pub fn is_inpainting_model(&self) -> bool {
        self.unet_in_channels == 9
    }

    /// A depth model's UNet needs the depth channel that only [`Self::depth2img`] supplies, an inpainting model's
    /// the mask channels that only [`Self::inpaint`] does.
    fn refuse_depth_model(&self, batch: &[Img2ImgRequest]) -> Result<(), DiffusionError> {
        if self.is_depth_model() {
            return Err(DiffusionError::DepthNeeded {
                model: self.model_id.clone(),
                given: 0,
                requests: batch.len(),
            });
        }
        if self.is_inpainting_model() {
            return Err(DiffusionError::MaskNeeded {
                model: self.model_id.clone(),
            });
        }
        Ok(())
    }

    /// Inpainting (diffusers' `StableDiffusionInpaintPipeline` with `height`/`width` at the image's size): one mask
    /// per request at the image's size, white = repaint. An inpainting (9-channel) model sees the mask and the
    /// masked image; a plain model keeps the original outside the mask by blending after each step. At strength 1
    /// the latents start from pure noise, as diffusers starts them.
    pub fn inpaint(
        &self,
        batch: &[Img2ImgRequest],
        masks: &[image::GrayImage],
    ) -> Result<Vec<image::RgbImage>, DiffusionError> {
        self.inpaint_refs(batch, masks.iter().collect())
    }

    fn inpaint_refs(
        &self,
        batch: &[Img2ImgRequest],
        masks: Vec<&image::GrayImage>,
    ) -> Result<Vec<image::RgbImage>, DiffusionError> {
        if self.is_depth_model() {
            return Err(DiffusionError::MaskUnsupported {
                model: self.model_id.clone(),
                why: "it is depth-conditioned (5 UNet input channels)",
            });
        }
        let key = self.validate(batch)?;
        if masks.len() != batch.len() {
            return Err(DiffusionError::MaskCount {
                given: masks.len(),
                requests: batch.len(),
            });
        }
        tch::no_grad(|| self.denoise(batch, key, Cond::Inpaint(masks)))
    }

    /// Runs one batch; images come back in request order.
    pub fn img2img(
        &self,
        batch: &[Img2ImgRequest],
    ) -> Result<Vec<image::RgbImage>, DiffusionError> {
        self.refuse_depth_model(batch)?;
        let key = self.validate(batch)?;
        tch::no_grad(|| self.denoise(batch, key, Cond::None))
    }

    /// Runs one batch whatever its requests' [`Condition`] (all requests of a batch share its kind, see
    /// [`batch_key`]): plain img2img, depth2img, ControlNet img2img or inpainting. Images come back in request order.
    pub fn generate(
        &self,
        batch: &[Img2ImgRequest],
    ) -> Result<Vec<image::RgbImage>, DiffusionError> {
        let mixed = || DiffusionError::MixedBatch {
            index: 0,
            what: "condition (plain, depth, inpainting, or ControlNet with one scale)",
        };
        match batch.first().map(|r| &r.condition) {
            None | Some(Condition::None) => self.img2img(batch),
            Some(Condition::Depth(_)) => {
                let depths = batch
                    .iter()
                    .map(|r| match &r.condition {
                        Condition::Depth(d) => Ok(d.as_ref()),
                        _ => Err(mixed()),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                self.depth2img_refs(batch, depths)
            }
            Some(Condition::Control { scale, .. }) => {
                let images = batch
                    .iter()
                    .map(|r| match &r.condition {
                        Condition::Control { image, scale: s } if s == scale => Ok(image.as_ref()),
                        _ => Err(mixed()),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                self.controlnet_img2img_refs(batch, images, *scale)
            }
            Some(Condition::Inpaint(_)) => {
                let masks = batch
                    .iter()
                    .map(|r| match &r.condition {
                        Condition::Inpaint(m) => Ok(m.as_ref()),
                        _ => Err(mixed()),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                self.inpaint_refs(batch, masks)
            }
        }
    }

    /// ControlNet img2img (diffusers' `StableDiffusionControlNetImg2ImgPipeline`): one control image per request
    /// at the output size, used as is in [0, 1]; `scale` is `controlnet_conditioning_scale`.
    pub fn controlnet_img2img(
        &self,
        batch: &[Img2ImgRequest],
        controls: &[image::RgbImage],
        scale: f64,
    ) -> Result<Vec<image::RgbImage>, DiffusionError> {
        self.controlnet_img2img_refs(batch, controls.iter().collect(), scale)
    }

    fn controlnet_img2img_refs(
        &self,
        batch: &[Img2ImgRequest],
        controls: Vec<&image::RgbImage>,
        scale: f64,
    ) -> Result<Vec<image::RgbImage>, DiffusionError> {
        if self.controlnet.is_none() {
            return Err(DiffusionError::NoControlNet {
                model: self.model_id.clone(),
            });
        }
        self.refuse_depth_model(batch)?;
        let key = self.validate(batch)?;
        for (i, c) in controls.iter().enumerate() {
            if c.dimensions() != (key.width, key.height) || controls.len() != batch.len() {
                return Err(DiffusionError::Control {
                    index: i,
                    width: c.width(),
                    height: c.height(),
                    w0: key.width,
                    h0: key.height,
                    given: controls.len(),
                    requests: batch.len(),
                });
            }
        }
        if controls.len() != batch.len() {
            return Err(DiffusionError::Control {
                index: 0,
                width: 0,
                height: 0,
                w0: key.width,
                h0: key.height,
                given: controls.len(),
                requests: batch.len(),
            });
        }
        tch::no_grad(|| {
            self.denoise(
                batch,
                key,
                Cond::Control {
                    images: controls,
                    scale,
                },
            )
        })
    }

    /// Depth-conditioned img2img (diffusers' `StableDiffusionDepth2ImgPipeline` with `depth_map=`), one depth
    /// map per request.
    pub fn depth2img(
        &self,
        batch: &[Img2ImgRequest],
        depths: &[DepthMap],
    ) -> Result<Vec<image::RgbImage>, DiffusionError> {
        self.depth2img_refs(batch, depths.iter().collect())
    }

    fn depth2img_refs(
        &self,
        batch: &[Img2ImgRequest],
        depths: Vec<&DepthMap>,
    ) -> Result<Vec<image::RgbImage>, DiffusionError> {
        if !self.is_depth_model() {
            return Err(DiffusionError::DepthUnused {
                model: self.model_id.clone(),
            });
        }
        if depths.len() != batch.len() {
            return Err(DiffusionError::DepthNeeded {
                model: self.model_id.clone(),
                given: depths.len(),
                requests: batch.len(),
            });
        }
        let key = self.validate(batch)?;
        tch::no_grad(|| self.denoise(batch, key, Cond::Depth(depths)))
    }
}
