//! What one img2img job asks for, and which jobs can share a batch.

/// One img2img job.
#[derive(Clone, Debug)]
pub struct Img2ImgRequest {
    pub image: image::RgbImage,
    pub prompt: String,
    pub negative_prompt: String,
    /// Fraction of the schedule that runs, in [0, 1] (1 ignores the image's content).
    pub strength: f64,
    /// Classifier-free guidance scale; ≤ 1 runs the conditional pass only.
    pub guidance: f64,
    pub steps: usize,
    pub seed: u64,
}

impl Img2ImgRequest {
    /// A request with diffusers' defaults (strength 0.8, guidance 7.5, 50 steps, seed 0). Build others with
    /// `Img2ImgRequest { prompt: ..., ..Img2ImgRequest::new(image, "") }` so new fields do not break callers.
    pub fn new(image: image::RgbImage, prompt: &str) -> Self {
        Self {
            image,
            prompt: prompt.to_owned(),
            negative_prompt: String::new(),
            strength: 0.8,
            guidance: 7.5,
            steps: 50,
            seed: 0,
        }
    }
}

/// Requests with equal keys can run as one batch: same size, same number of denoising steps from the same
/// start, and the same guidance mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BatchKey {
    pub width: u32,
    pub height: u32,
    pub steps: usize,
    pub t_start: usize,
    pub guided: bool,
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
}
