//! A job's img2img requests: its settings with one image, prompt, seed and condition each.

use std::sync::Arc;

use image::RgbImage;

use crate::diffusion::request::{Condition, Img2ImgRequest};

use super::settings::JobSettings;

/// The request for one image of a job. The `index`-th request of a job (a texture slot, a view) draws its noise
/// from `seed + index`, kept in [0, 2^63) like every seed texaug records; the first uses the job's seed.
pub fn request(
    settings: &JobSettings,
    image: RgbImage,
    prompt: String,
    index: u64,
    condition: Condition,
) -> Img2ImgRequest {
    Img2ImgRequest {
        image: Arc::new(image),
        prompt,
        negative_prompt: settings.negative_prompt.clone(),
        strength: settings.strength,
        guidance: settings.guidance,
        steps: settings.steps as usize,
        seed: settings.seed.wrapping_add(index) & (u64::MAX >> 1),
        scheduler: settings.scheduler,
        condition,
        adapters: settings.adapters,
        xl: settings.xl,
        denoising_start: settings.denoising_start,
        sync: None,
    }
}
