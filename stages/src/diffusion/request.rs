//! What one img2img call asks for — the one request type from a job to the device — and which requests can share
//! a batch.

use std::sync::Arc;

use image::{GrayImage, RgbImage};

use super::image_tensors::DepthMap;
use super::schedulers::SchedulerKind;
use super::view_sync::SyncedView;
pub use super::xl::XlConds;

/// What conditions the model besides the prompt.
#[derive(Clone, Debug, Default)]
pub enum Condition {
    /// Plain img2img.
    #[default]
    None,
    /// A depth map (larger = nearer) for a depth-conditioned (5-channel) UNet. Shared, not copied, by the
    /// requests that use it.
    Depth(Arc<DepthMap>),
    /// A ControlNet control image in [0, 1] at the request's size, with its `controlnet_conditioning_scale`.
    Control { image: Arc<RgbImage>, scale: f64 },
    /// An inpainting mask at the request's size, white (≥ 128) = repaint, black = keep, as diffusers'
    /// `mask_image`. A 9-channel (inpainting) UNet takes it with the masked image's latents as extra channels; a
    /// plain 4-channel model blends the re-noised original back outside the mask after every step.
    Inpaint(Arc<GrayImage>),
}

/// Requests of one batch agree on this: the kind of condition (and a ControlNet batch on its scale, as bits so the
/// key stays `Eq`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConditionKind {
    None,
    Depth,
    Control { scale_bits: u64 },
    Inpaint,
}

impl Condition {
    pub fn kind(&self) -> ConditionKind {
        match self {
            Condition::None => ConditionKind::None,
            Condition::Depth(_) => ConditionKind::Depth,
            Condition::Control { scale, .. } => ConditionKind::Control {
                scale_bits: scale.to_bits(),
            },
            Condition::Inpaint(_) => ConditionKind::Inpaint,
        }
    }
}

/// One img2img call: a job has one per image, or one per view and base-color texture of a mesh. The image and the
/// condition are shared (`Arc`), so batching and retrying copy no pixels.
#[derive(Clone, Debug)]
pub struct Img2ImgRequest {
    pub image: Arc<RgbImage>,
    pub prompt: String,
    pub negative_prompt: String,
    /// Fraction of the schedule that runs, in [0, 1] (1 ignores the image's content).
    pub strength: f64,
    /// Classifier-free guidance scale; ≤ 1 runs the conditional pass only.
    pub guidance: f64,
    pub steps: usize,
    pub seed: u64,
    /// The scheduler class for this request; `None` runs the one the pipeline was loaded with.
    pub scheduler: Option<SchedulerKind>,
    pub condition: Condition,
    /// Which of the run's LoRA sets the weights carry for this request (a stage's `loras`); 0: the model as
    /// loaded. The device worker switches sets between batches.
    pub adapters: u32,
    /// SDXL's micro-conditioning (ignored by SD 1/2).
    pub xl: XlConds,
    /// SDXL: start at this fraction of the noise schedule from the image's latents as they are (no noise added),
    /// as diffusers' `denoising_start` does for a refiner; `strength` is then unused. In (0, 1).
    pub denoising_start: Option<f64>,
    /// A mesh view denoised in step with the mesh's other views (see [`super::view_sync`]); they run as one batch.
    pub sync: Option<SyncedView>,
}

impl Img2ImgRequest {
    /// A request with diffusers' defaults (strength 0.8, guidance 7.5, 50 steps, seed 0, the model's scheduler,
    /// no condition). Build others with `Img2ImgRequest { prompt: ..., ..Img2ImgRequest::new(image, "") }` so new
    /// fields do not break callers.
    pub fn new(image: impl Into<Arc<RgbImage>>, prompt: &str) -> Self {
        Self {
            image: image.into(),
            prompt: prompt.to_owned(),
            negative_prompt: String::new(),
            strength: 0.8,
            guidance: 7.5,
            steps: 50,
            seed: 0,
            scheduler: None,
            condition: Condition::None,
            adapters: 0,
            xl: XlConds::default(),
            denoising_start: None,
            sync: None,
        }
    }
}

/// Requests with equal keys can run as one batch: same size, same number of denoising steps from the same
/// start, the same guidance mode, scheduler and kind of condition. This is the one function that decides it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BatchKey {
    pub width: u32,
    pub height: u32,
    pub steps: usize,
    pub t_start: usize,
    pub guided: bool,
    pub scheduler: Option<SchedulerKind>,
    pub condition: ConditionKind,
    pub adapters: u32,
    /// `denoising_start` as bits (the key stays `Eq`); `t_start` is then decided by the schedule.
    pub denoising_start_bits: Option<u64>,
}

/// diffusers' `get_timesteps`: the first schedule index that runs.
pub fn t_start(steps: usize, strength: f64) -> usize {
    let init = ((steps as f64 * strength) as usize).min(steps);
    steps - init
}

pub fn batch_key(r: &Img2ImgRequest) -> BatchKey {
    BatchKey {
        width: r.image.width(),
        height: r.image.height(),
        steps: r.steps,
        t_start: t_start(r.steps, r.strength),
        guided: r.guidance > 1.0,
        scheduler: r.scheduler,
        condition: r.condition.kind(),
        adapters: r.adapters,
        denoising_start_bits: r.denoising_start.map(f64::to_bits),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_start_matches_diffusers_get_timesteps() {
        assert_eq!(t_start(10, 0.6), 4);
        assert_eq!(t_start(50, 0.75), 13);
        assert_eq!(t_start(10, 1.0), 0);
        assert_eq!(t_start(10, 0.05), 10);
    }

    #[test]
    fn batch_key_groups_by_effective_start() {
        let img = image::RgbImage::new(64, 64);
        let a = Img2ImgRequest {
            steps: 10,
            strength: 0.6,
            ..Img2ImgRequest::new(img.clone(), "a")
        };
        let b = Img2ImgRequest {
            steps: 10,
            strength: 0.65,
            seed: 3,
            ..Img2ImgRequest::new(img.clone(), "b")
        };
        let c = Img2ImgRequest {
            steps: 10,
            strength: 0.7,
            ..Img2ImgRequest::new(img.clone(), "c")
        };
        let d = Img2ImgRequest {
            guidance: 1.0,
            ..a.clone()
        };
        assert_eq!(batch_key(&a), batch_key(&b));
        assert_ne!(batch_key(&a), batch_key(&c));
        assert_ne!(batch_key(&a), batch_key(&d));
    }

    #[test]
    fn batch_key_separates_schedulers_and_conditions() {
        let a = Img2ImgRequest::new(image::RgbImage::new(8, 8), "a");
        let euler = Img2ImgRequest {
            scheduler: Some(SchedulerKind::Euler),
            ..a.clone()
        };
        let depth = Img2ImgRequest {
            condition: Condition::Depth(Arc::new(DepthMap {
                width: 1,
                height: 1,
                values: vec![0.0],
            })),
            ..a.clone()
        };
        let control = |scale| Img2ImgRequest {
            condition: Condition::Control {
                image: a.image.clone(),
                scale,
            },
            ..a.clone()
        };
        assert_ne!(batch_key(&a), batch_key(&euler));
        assert_ne!(batch_key(&a), batch_key(&depth));
        assert_ne!(batch_key(&control(1.0)), batch_key(&control(0.5)));
        assert_eq!(batch_key(&control(1.0)), batch_key(&control(1.0)));
    }
}
