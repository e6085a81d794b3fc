//! What every scheduler's step shares: the prediction type, the step output, the step index of the sigma
//! schedulers and the per-sample broadcast of scalars.

use tch::Tensor;

use super::config::SchedulerConfig;
use super::error::SchedulerError;

/// What the model predicts (diffusers' `prediction_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prediction {
    Epsilon,
    VPrediction,
    Sample,
}

impl Prediction {
    pub fn from_config(cfg: &SchedulerConfig, allowed: &[&str]) -> Result<Self, SchedulerError> {
        Ok(
            match cfg.require("prediction_type", allowed, "epsilon")?.as_str() {
                "v_prediction" => Self::VPrediction,
                "sample" | "original_sample" => Self::Sample,
                _ => Self::Epsilon,
            },
        )
    }
}

/// One step's result.
pub struct StepOutput {
    pub prev_sample: Tensor,
    /// The x0 estimate, for the schedulers whose diffusers `step()` returns one.
    pub pred_original_sample: Option<Tensor>,
}

/// Step bookkeeping shared by the sigma schedulers (diffusers' `_step_index` / `_begin_index`).
#[derive(Clone, Debug, Default)]
pub struct StepIndex {
    pub step_index: Option<usize>,
    pub begin_index: Option<usize>,
}

impl StepIndex {
    /// diffusers' `index_for_timestep`: the first match, or the second when the value repeats (so a run
    /// started mid-schedule does not skip a sigma).
    pub fn index_for_timestep(timesteps: &[f64], t: f64) -> Option<usize> {
        let hits: Vec<usize> = timesteps
            .iter()
            .enumerate()
            .filter(|(_, &x)| x == t)
            .map(|(i, _)| i)
            .collect();
        match hits.len() {
            0 => None,
            1 => Some(hits[0]),
            _ => Some(hits[1]),
        }
    }

    /// The current index, initialized on first use as diffusers' `_init_step_index`.
    pub fn current(&mut self, timesteps: &[f64], t: f64) -> Option<usize> {
        if self.step_index.is_none() {
            self.step_index = match self.begin_index {
                Some(b) => Some(b),
                None => Self::index_for_timestep(timesteps, t),
            };
        }
        self.step_index
    }

    /// The index add_noise uses: begin_index (before stepping) or the current step, else a lookup.
    pub fn for_add_noise(&self, timesteps: &[f64], t: f64) -> Option<usize> {
        match (self.begin_index, self.step_index) {
            (None, _) => Self::index_for_timestep(timesteps, t),
            (Some(_), Some(s)) => Some(s),
            (Some(b), None) => Some(b),
        }
    }

    pub fn reset(&mut self) {
        self.step_index = None;
        self.begin_index = None;
    }
}

/// `[b] → [b, 1, 1, 1]`-style broadcast of per-sample scalars onto `like`.
pub(crate) fn per_sample(values: &[f32], like: &Tensor) -> Tensor {
    let mut shape = vec![values.len() as i64];
    shape.extend(std::iter::repeat_n(1, like.dim().saturating_sub(1)));
    Tensor::from_slice(values)
        .reshape(shape)
        .to_device(like.device())
}
