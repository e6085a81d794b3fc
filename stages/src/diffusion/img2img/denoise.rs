//! The denoising loop every pipeline shares: encode, noise to the start timestep, denoise with classifier-free
//! guidance, decode. What differs per pipeline is the extra UNet input ([`Cond`]): a depth channel (depth2img),
//! ControlNet residuals, or an inpainting mask (diffusers' `StableDiffusionInpaintPipeline`: a 9-channel UNet takes
//! the mask and the masked image's latents; a 4-channel one gets the re-noised original blended back outside the
//! mask after every step).

use image::RgbImage;
use tch::{Kind, Tensor};

use super::super::error::DiffusionError;
use super::super::image_tensors::{self, postprocess};
use super::super::inpaint::InpaintMasks;
use super::super::noise;
use super::super::prompt_encoder::PromptEmbeds;
use super::super::request::{BatchKey, Img2ImgRequest};
use super::super::text_time::AddedCond;
use super::super::unet::timesteps_tensor;
use super::super::view_sync::sync_groups;
use super::super::xl;
use super::cond::Cond;
use super::StableDiffusion;

/// An inpainting batch's tensors beside the latents.
struct Inpainting {
    /// `[b or 2b, 1, h, w]`, 1 = repaint (doubled for guidance: the 9-channel UNet's input).
    mask: Tensor,
    /// `[b, 1, h, w]`: the 4-channel blend's mask.
    blend_mask: Tensor,
    /// `[b or 2b, 4, h, w]` scaled latents of the masked image (9-channel UNets).
    masked_latents: Tensor,
    /// `[b, 4, h, w]` scaled latents of the image, re-noised to each next timestep for the 4-channel blend.
    image_latents: Tensor,
    nine_channels: bool,
}

impl StableDiffusion {
    pub(super) fn denoise(
        &self,
        batch: &[Img2ImgRequest],
        key: BatchKey,
        extra: Cond<'_>,
    ) -> Result<Vec<RgbImage>, DiffusionError> {
        let b = batch.len() as i64;
        let mut scheduler = self.scheduler_for(key.scheduler)?;
        scheduler.set_timesteps(key.steps)?;
        // SDXL's `denoising_start`: the schedule decides the start, and the image latents run un-noised.
        let denoising_start = batch[0].denoising_start.filter(|d| *d > 0.0 && *d < 1.0);
        let begin = match denoising_start {
            Some(d) => xl::start_index(
                scheduler.timesteps(),
                d,
                scheduler.num_train_timesteps(),
                scheduler.order(),
            ),
            None => key.t_start * scheduler.order(),
        };
        let timesteps: Vec<f64> = scheduler.timesteps().get(begin..).unwrap_or(&[]).to_vec();
        let Some(&latent_t) = timesteps.first() else {
            return Err(DiffusionError::NoSteps {
                strength: batch[0].strength,
                steps: key.steps,
            });
        };
        if scheduler.has_begin_index() {
            scheduler.set_begin_index(begin);
        }

        // Text (and SDXL's pooled text + size ids): [uncond…, cond…] when guided, as diffusers concatenates.
        let prompts: Vec<&str> = batch.iter().map(|r| r.prompt.as_str()).collect();
        let cond = self.prompt_embeds(&prompts);
        let time_ids = self.time_ids(batch, key);
        let embeds = if key.guided {
            let negatives: Vec<&str> = batch.iter().map(|r| r.negative_prompt.as_str()).collect();
            PromptEmbeds::cat(&self.negative_embeds(&negatives), &cond)
        } else {
            cond
        };
        let added = match (&embeds.pooled, time_ids) {
            (Some(pooled), Some((pos, neg))) => Some(AddedCond {
                text_embeds: pooled.shallow_clone(),
                time_ids: if key.guided {
                    Tensor::cat(&[neg, pos], 0)
                } else {
                    pos
                },
            }),
            _ => None,
        };
        let context = embeds.context;

        // Noise, per job from its own seed, in diffusers' order.
        let f = self.vae_scale_factor();
        let (lh, lw) = (i64::from(key.height) / f, i64::from(key.width) / f);
        let latent_shape = [self.vae_cfg.latent_channels, lh, lw];
        let step_draws = if scheduler.needs_step_noise() {
            timesteps.len()
        } else {
            0
        };
        let inpainting = matches!(extra, Cond::Inpaint(_));
        let nine_channels = self.unet_in_channels == 9;
        // diffusers' `is_strength_max`: at strength 1 inpainting starts from pure noise (and a 9-channel model
        // never encodes the image).
        let from_noise: Vec<bool> = batch
            .iter()
            .map(|r| inpainting && r.strength == 1.0)
            .collect();
        let mut masked_eps = Vec::new();
        let jobs: Vec<noise::JobNoise> = batch
            .iter()
            .zip(&from_noise)
            .map(|(r, &pure)| {
                if inpainting {
                    let encode = !nine_channels || !pure;
                    let (job, eps) =
                        noise::draw_inpaint_noise(r.seed, latent_shape, encode, step_draws);
                    masked_eps.push(eps);
                    job
                } else if denoising_start.is_some() {
                    noise::draw_refine_noise(r.seed, latent_shape, step_draws)
                } else {
                    noise::draw_job_noise(r.seed, latent_shape, step_draws)
                }
            })
            .collect();
        let (vae_eps, latent_noise, step_noise) = noise::stack_batch(&jobs, self.device);
        // [b or 2b, …], appended to the scaled model input (not itself scaled), doubled for guidance.
        let double = |m: &Tensor| {
            if key.guided {
                Tensor::cat(&[m, m], 0)
            } else {
                m.shallow_clone()
            }
        };
        let depth = match &extra {
            Cond::Depth(d) => Some(double(&image_tensors::depth_mask(
                d,
                lh,
                lw,
                self.device,
                self.dtype,
            )?)),
            _ => None,
        };
        // [b or 2b, 3, H, W] in [0, 1], with the ControlNet and its scale.
        let control = match (&extra, &self.controlnet) {
            (Cond::Control { images, scale }, Some(net)) => Some((
                net,
                double(&image_tensors::pixels(images, self.device)?.to_kind(self.dtype)),
                *scale,
            )),
            _ => None,
        };

        // [b, 3, H, W] in [-1, 1]
        let image = self.preprocess(batch)?;
        let encode = |pixels: &Tensor, eps: &Tensor| {
            self.vae
                .encode(&pixels.to_kind(self.vae_dtype()))
                .sample(eps)
                .to_kind(Kind::Float)
                * self.vae_cfg.scaling_factor
        };
        // [b, 4, h, w], kept in float32 for the scheduler arithmetic
        let skip_image = inpainting && nine_channels && from_noise.iter().all(|&p| p);
        let init_latents = if skip_image {
            latent_noise.zeros_like()
        } else {
            encode(&image, &vae_eps)
        };
        let mut latents = if denoising_start.is_some() {
            init_latents.shallow_clone()
        } else {
            scheduler.add_noise(&init_latents, &latent_noise, latent_t)?
        };
        if from_noise.iter().any(|&p| p) {
            let pure = Tensor::from_slice(&from_noise)
                .reshape([b, 1, 1, 1])
                .to_device(self.device);
            let noise_start = &latent_noise * scheduler.init_noise_sigma();
            latents = noise_start.where_self(&pure, &latents);
        }
        let inpaint = match &extra {
            Cond::Inpaint(masks) => {
                let m = InpaintMasks::new(masks, (key.width, key.height), (lh, lw), self.device)?;
                let eps = Tensor::cat(&masked_eps, 0).to_device(self.device);
                let masked_latents = encode(&(&image * &m.keep), &eps);
                Some(Inpainting {
                    mask: double(&m.latent).to_kind(self.dtype),
                    blend_mask: m.latent,
                    masked_latents: double(&masked_latents).to_kind(self.dtype),
                    image_latents: init_latents,
                    nine_channels,
                })
            }
            _ => None,
        };

        // Synchronised mesh views: blended in UV space after every step (see `view_sync`).
        let synced: Vec<_> = batch.iter().map(|r| r.sync.as_ref()).collect();
        let groups = sync_groups(&synced)?;

        let guidance: Vec<f32> = batch.iter().map(|r| r.guidance as f32).collect();
        let guidance = Tensor::from_slice(&guidance)
            .reshape([b, 1, 1, 1])
            .to_device(self.device);
        for (i, &t) in timesteps.iter().enumerate() {
            let model_in = double(&latents);
            let model_in = scheduler
                .scale_model_input(&model_in, t)
                .to_kind(self.dtype);
            let model_in = match (&depth, &inpaint) {
                (Some(d), _) => Tensor::cat(&[&model_in, d], 1),
                (_, Some(p)) if p.nine_channels => {
                    Tensor::cat(&[&model_in, &p.mask, &p.masked_latents], 1)
                }
                _ => model_in,
            };
            let t_in = timesteps_tensor(&[t]);
            let residuals = control.as_ref().map(|(net, image, scale)| {
                net.forward(&model_in, &t_in, &context, image, added.as_ref(), *scale)
            });
            let out = self
                .unet
                .forward_t(
                    &model_in,
                    &t_in,
                    &context,
                    added.as_ref(),
                    residuals.as_ref(),
                )
                .to_kind(Kind::Float);
            let noise_pred = if key.guided {
                let parts = out.chunk(2, 0);
                let (uncond, text) = (&parts[0], &parts[1]);
                uncond + &guidance * (text - uncond)
            } else {
                out
            };
            latents = scheduler
                .step(&noise_pred, t, &latents, step_noise.get(i))?
                .prev_sample;
            if let Some(p) = inpaint.as_ref().filter(|p| !p.nine_channels) {
                // Outside the mask the latents follow the original, noised to the level of the next step (clean
                // after the last), as diffusers blends for models without mask channels.
                let original = match timesteps.get(i + 1) {
                    Some(&next) => scheduler.add_noise(&p.image_latents, &latent_noise, next)?,
                    None => p.image_latents.shallow_clone(),
                };
                latents = (1.0 - &p.blend_mask) * original + &p.blend_mask * &latents;
            }
            for (group, rows) in &groups {
                latents = group.blend(&latents, rows)?;
            }
        }

        let decoded = self
            .vae
            .decode(&(latents / self.vae_cfg.scaling_factor).to_kind(self.vae_dtype()));
        postprocess(&decoded)
    }

    /// SDXL's `(add_time_ids, add_neg_time_ids)`, `[b, 5 or 6]` each on the device; `None` for SD 1/2.
    fn time_ids(&self, batch: &[Img2ImgRequest], key: BatchKey) -> Option<(Tensor, Tensor)> {
        let xl = self.xl?;
        let (mut pos, mut neg) = (Vec::new(), Vec::new());
        for r in batch {
            let (p, n) = xl.time_ids(&r.xl, key.height, key.width);
            pos.extend(p);
            neg.extend(n);
        }
        let rows = |v: Vec<f32>| {
            Tensor::from_slice(&v)
                .reshape([batch.len() as i64, xl.id_count() as i64])
                .to_device(self.device)
        };
        Some((rows(pos), rows(neg)))
    }

    /// `uint8 [H, W, 3]` images → `[b, 3, H, W]` float in [-1, 1] on the device (`x / 255 * 2 - 1`).
    fn preprocess(&self, batch: &[Img2ImgRequest]) -> Result<Tensor, DiffusionError> {
        let images: Vec<&RgbImage> = batch.iter().map(|r| r.image.as_ref()).collect();
        Ok(image_tensors::pixels(&images, self.device)? * 2.0 - 1.0)
    }
}
