//! What diffusers' Euler schedulers share: the Karras-sigma schedule of a run, the step index and the Euler
//! update toward a target sigma. `EulerDiscrete` and `EulerAncestral` differ only in the target and the noise.

use tch::Tensor;

use super::betas::NoiseSchedule;
use super::config::SchedulerConfig;
use super::error::SchedulerError;
use super::step::{Prediction, StepIndex};
use super::timesteps::{self, Spacing};

pub struct SigmaRun {
    class: &'static str,
    pub(crate) schedule: NoiseSchedule,
    prediction: Prediction,
    spacing: Spacing,
    steps_offset: i64,
    timesteps: Vec<f64>,
    sigmas: Vec<f32>,
    pub(crate) state: StepIndex,
}

impl SigmaRun {
    /// Reads the keys both Euler classes know; `predictions` are the `prediction_type`s `class` accepts.
    pub fn new(
        cfg: &SchedulerConfig,
        class: &'static str,
        predictions: &[&str],
    ) -> Result<Self, SchedulerError> {
        let schedule = NoiseSchedule::from_config(cfg)?;
        // Before set_timesteps diffusers' sigmas are the whole training table, descending, then 0.
        let mut sigmas: Vec<f32> = schedule.sigmas().into_iter().rev().collect();
        sigmas.push(0.0);
        Ok(Self {
            class,
            prediction: Prediction::from_config(cfg, predictions)?,
            spacing: Spacing::from_config(cfg, "linspace")?,
            steps_offset: cfg.i64_or("steps_offset", 0)?,
            timesteps: Vec::new(),
            sigmas,
            state: StepIndex::default(),
            schedule,
        })
    }

    /// A new run of `n` steps, optionally Karras-spaced, ending at `final_sigma`.
    pub fn set_timesteps(&mut self, n: usize, karras: bool, final_sigma: f32) {
        let (ts, mut sigmas) =
            sigma_schedule(&self.schedule, self.spacing, self.steps_offset, n, karras);
        sigmas.push(final_sigma);
        self.timesteps = ts;
        self.sigmas = sigmas;
        self.state.reset();
    }

    pub fn timesteps(&self) -> &[f64] {
        &self.timesteps
    }

    pub fn sigmas(&self) -> &[f32] {
        &self.sigmas
    }

    pub fn init_noise_sigma(&self) -> f64 {
        let max = self.sigmas.iter().copied().fold(f32::MIN, f32::max);
        match self.spacing {
            Spacing::Linspace | Spacing::Trailing => f64::from(max),
            Spacing::Leading => f64::from((max * max + 1.0).sqrt()),
        }
    }

    fn index(&mut self, t: f64) -> Result<usize, SchedulerError> {
        self.state
            .current(&self.timesteps, t)
            .ok_or_else(|| SchedulerError::unknown_timestep(self.class, t, false))
    }

    /// `x / sqrt(sigma² + 1)`, the sigma in float32 as diffusers computes it.
    pub fn scale_model_input(&mut self, sample: &Tensor, t: f64) -> Tensor {
        match self.index(t).map(|i| self.sigmas.get(i)) {
            Ok(Some(&s)) => sample / f64::from((s * s + 1.0).sqrt()),
            _ => sample.shallow_clone(),
        }
    }

    /// The step index of `t` with this step's sigma and the next one; advances the index.
    pub fn next_sigmas(&mut self, t: f64) -> Result<(f32, f32), SchedulerError> {
        let i = self.index(t)?;
        match (self.sigmas.get(i), self.sigmas.get(i + 1)) {
            (Some(&a), Some(&b)) => {
                self.state.step_index = Some(i + 1);
                Ok((a, b))
            }
            _ => Err(SchedulerError::OutOfOrder {
                class: self.class,
                reason: format!("past the last timestep (step {i})"),
            }),
        }
    }

    /// One Euler step from `sigma` to `sigma_to` (no churn: sigma_hat = sigma), returning it and the x0 estimate.
    pub fn euler_update(
        &self,
        m: &Tensor,
        sample: &Tensor,
        sigma: f32,
        sigma_to: f32,
    ) -> (Tensor, Tensor) {
        let x0 = match self.prediction {
            Prediction::Epsilon => sample - m * f64::from(sigma),
            Prediction::Sample => m.shallow_clone(),
            Prediction::VPrediction => {
                let s2 = sigma * sigma + 1.0;
                m * f64::from(-sigma / s2.sqrt()) + sample / f64::from(s2)
            }
        };
        let derivative = (sample - &x0) / f64::from(sigma);
        let prev = sample + derivative * f64::from(sigma_to - sigma);
        (prev, x0)
    }

    /// `(1, sigma)`: add_noise's scales of the clean sample and the noise at `t`.
    pub fn noise_scales(&self, t: f64) -> Result<(f32, f32), SchedulerError> {
        self.state
            .for_add_noise(&self.timesteps, t)
            .and_then(|i| self.sigmas.get(i))
            .map(|&s| (1.0, s))
            .ok_or_else(|| SchedulerError::unknown_timestep(self.class, t, true))
    }
}

/// Timesteps (float32 values) and sigmas (without the end point) of the Euler schedulers, as diffusers:
/// sigmas interpolated at the timesteps in double, optionally re-spaced by Karras with timesteps mapped back.
fn sigma_schedule(
    schedule: &NoiseSchedule,
    spacing: Spacing,
    steps_offset: i64,
    n: usize,
    karras: bool,
) -> (Vec<f64>, Vec<f32>) {
    let train = schedule.num_train_timesteps();
    let ts: Vec<f64> = match spacing {
        Spacing::Linspace => timesteps::linspace(0.0, (train - 1) as f64, n)
            .into_iter()
            .rev()
            .map(|t| f64::from(t as f32))
            .collect(),
        Spacing::Leading => {
            let ratio = (train / n) as f64;
            (0..n)
                .rev()
                .map(|i| f64::from(timesteps::round(i as f64 * ratio) as f32 + steps_offset as f32))
                .collect()
        }
        Spacing::Trailing => {
            let ratio = train as f64 / n as f64;
            timesteps::arange(train as f64, 0.0, -ratio)
                .into_iter()
                .map(|t| f64::from(timesteps::round(t) as f32 - 1.0))
                .collect()
        }
    };
    let table = schedule.sigmas();
    let table64: Vec<f64> = table.iter().map(|&s| f64::from(s)).collect();
    let sigmas: Vec<f64> = ts
        .iter()
        .map(|&t| timesteps::interp_unit(t, &table64))
        .collect();
    let (Some(&smin), Some(&smax), true) = (sigmas.last(), sigmas.first(), karras) else {
        return (ts, sigmas.iter().map(|&s| s as f32).collect());
    };
    let log_sigmas = timesteps::log_sigmas(&table);
    let k = timesteps::karras(smin, smax, n);
    let ts = k
        .iter()
        .map(|&s| f64::from(timesteps::sigma_to_t(s, &log_sigmas) as f32))
        .collect();
    (ts, k.iter().map(|&s| s as f32).collect())
}
