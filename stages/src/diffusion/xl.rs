//! What SDXL's img2img pipelines add to SD's: the micro-conditioning ids (`_get_add_time_ids`) and a start given as
//! a fraction of the noise schedule (`denoising_start`, as a refiner continues a base model's latents).

use std::path::Path;

/// SDXL's micro-conditioning of one request, sizes as `(height, width)` like diffusers. `None` sizes are the
/// request image's own, as diffusers defaults them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct XlConds {
    pub original_size: Option<(u32, u32)>,
    pub crops_coords_top_left: (u32, u32),
    pub target_size: Option<(u32, u32)>,
    /// Refiner-style models (`requires_aesthetics_score`) condition on this instead of the target size.
    pub aesthetic_score: f64,
    pub negative_aesthetic_score: f64,
}

impl Default for XlConds {
    fn default() -> Self {
        XlConds {
            original_size: None,
            crops_coords_top_left: (0, 0),
            target_size: None,
            aesthetic_score: 6.0,
            negative_aesthetic_score: 2.5,
        }
    }
}

/// How an SDXL pipeline conditions, from its `model_index.json` and UNet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XlSettings {
    /// Five ids ending in an aesthetic score (the refiner) instead of six ending in the target size.
    pub requires_aesthetics_score: bool,
    /// An empty negative prompt is zeros (SDXL base), not the encoding of "".
    pub force_zeros_for_empty_prompt: bool,
}

impl XlSettings {
    /// From the UNet's `add_embedding` width (which says how many ids it takes) and `model_index.json` when the
    /// folder has one; without it (a single file) a refiner-shaped UNet does not zero empty negatives, a base does.
    pub fn new(ids: i64, model_index: Option<&Path>) -> XlSettings {
        let requires_aesthetics_score = ids == 5;
        let flag = model_index
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| {
                v.get("force_zeros_for_empty_prompt")
                    .and_then(|f| f.as_bool())
            });
        XlSettings {
            requires_aesthetics_score,
            force_zeros_for_empty_prompt: flag.unwrap_or(!requires_aesthetics_score),
        }
    }

    /// The number of ids each row carries.
    pub fn id_count(&self) -> usize {
        if self.requires_aesthetics_score {
            5
        } else {
            6
        }
    }

    /// `(add_time_ids, add_neg_time_ids)` of one request whose image is `height × width`: original size, crop
    /// corner, then target size or aesthetic score. The negative ids use the same sizes, as diffusers defaults them.
    pub fn time_ids(&self, c: &XlConds, height: u32, width: u32) -> (Vec<f32>, Vec<f32>) {
        let (oh, ow) = c.original_size.unwrap_or((height, width));
        let (ct, cl) = c.crops_coords_top_left;
        let head = [oh, ow, ct, cl].map(|v| v as f32);
        if self.requires_aesthetics_score {
            let with = |score: f64| [&head[..], &[score as f32]].concat();
            (with(c.aesthetic_score), with(c.negative_aesthetic_score))
        } else {
            let (th, tw) = c.target_size.unwrap_or((height, width));
            let ids = [&head[..], &[th as f32, tw as f32]].concat();
            (ids.clone(), ids)
        }
    }
}

/// diffusers' `get_timesteps` with `denoising_start` in (0, 1): the first index of `timesteps` that runs — those
/// below the cutoff `round(T × (1 − denoising_start))`, one more for a second-order scheduler left with an even count.
pub fn start_index(
    timesteps: &[f64],
    denoising_start: f64,
    train_steps: usize,
    order: usize,
) -> usize {
    let t = train_steps as f64;
    let cutoff = (t - denoising_start * t).round();
    let mut n = timesteps.iter().filter(|&&s| s < cutoff).count();
    if order == 2 && n % 2 == 0 {
        n += 1;
    }
    timesteps.len().saturating_sub(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_ids_follow_diffusers_order() {
        let base = XlSettings::new(6, None);
        assert!(base.force_zeros_for_empty_prompt && !base.requires_aesthetics_score);
        let c = XlConds {
            original_size: Some((128, 96)),
            crops_coords_top_left: (4, 8),
            target_size: Some((64, 32)),
            ..XlConds::default()
        };
        let (pos, neg) = base.time_ids(&c, 64, 64);
        assert_eq!(pos, [128.0, 96.0, 4.0, 8.0, 64.0, 32.0]);
        assert_eq!(pos, neg);
        let refiner = XlSettings::new(5, None);
        assert!(!refiner.force_zeros_for_empty_prompt);
        let (pos, neg) = refiner.time_ids(&XlConds::default(), 48, 64);
        assert_eq!(pos, [48.0, 64.0, 0.0, 0.0, 6.0]);
        assert_eq!(neg, [48.0, 64.0, 0.0, 0.0, 2.5]);
    }

    #[test]
    fn denoising_start_cuts_the_schedule() {
        // 10 leading steps of 1000 with offset 1: 901, 801, …, 1
        let ts: Vec<f64> = (0..10).rev().map(|i| (i * 100 + 1) as f64).collect();
        assert_eq!(start_index(&ts, 0.5, 1000, 1), 5);
        assert_eq!(ts[5], 401.0);
        assert_eq!(start_index(&ts, 0.5, 1000, 2), 5, "an odd count stays");
        // cutoff 550: six steps below it; a second-order scheduler takes one more rather than an even count
        assert_eq!(start_index(&ts, 0.45, 1000, 1), 4);
        assert_eq!(start_index(&ts, 0.45, 1000, 2), 3);
    }
}
