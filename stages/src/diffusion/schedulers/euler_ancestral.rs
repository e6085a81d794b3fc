//! Euler ancestral: an Euler step to `sigma_down`, then fresh noise of size `sigma_up`, as diffusers'
//! `EulerAncestralDiscreteScheduler`. The noise is passed in (drawn up front in diffusers' order).

use tch::Tensor;

use super::betas::NoiseSchedule;
use super::euler::{
    add_noise_sigma, init_noise_sigma, input_scale, pred_original, sigma_pair, sigma_schedule,
};
use super::timesteps::Spacing;
use super::{Prediction, SchedulerConfig, SchedulerError, StepIndex, StepOutput};

const CLASS: &str = "EulerAncestralDiscreteScheduler";

pub struct EulerAncestral {
    schedule: NoiseSchedule,
    prediction: Prediction,
    spacing: Spacing,
    steps_offset: i64,
    timesteps: Vec<f64>,
    sigmas: Vec<f32>,
    pub(crate) state: StepIndex,
}

impl EulerAncestral {
    pub fn new(cfg: &SchedulerConfig) -> Result<Self, SchedulerError> {
        let schedule = NoiseSchedule::from_config(cfg)?;
        let mut sigmas: Vec<f32> = schedule.sigmas().into_iter().rev().collect();
        sigmas.push(0.0);
        Ok(Self {
            prediction: Prediction::from_config(cfg, &["epsilon", "v_prediction", "sample"])?,
            spacing: Spacing::from_config(cfg, "linspace")?,
            steps_offset: cfg.i64_or("steps_offset", 0)?,
            timesteps: Vec::new(),
            sigmas,
            state: StepIndex::default(),
            schedule,
        })
    }

    pub fn schedule(&self) -> &NoiseSchedule {
        &self.schedule
    }

    pub fn set_timesteps(&mut self, n: usize) -> Result<(), SchedulerError> {
        let (ts, mut sigmas) =
            sigma_schedule(&self.schedule, self.spacing, self.steps_offset, n, false);
        sigmas.push(0.0);
        self.timesteps = ts;
        self.sigmas = sigmas;
        self.state.reset();
        Ok(())
    }

    pub fn timesteps(&self) -> &[f64] {
        &self.timesteps
    }

    pub fn sigmas(&self) -> &[f32] {
        &self.sigmas
    }

    pub fn init_noise_sigma(&self) -> f64 {
        init_noise_sigma(&self.sigmas, self.spacing)
    }

    fn index(&mut self, t: f64) -> Result<usize, SchedulerError> {
        self.state
            .current(&self.timesteps, t)
            .ok_or_else(|| SchedulerError::OutOfOrder {
                class: CLASS,
                reason: format!("with timestep {t}, which is not in the schedule"),
            })
    }

    pub fn scale_model_input(&mut self, sample: &Tensor, t: f64) -> Tensor {
        match self.index(t) {
            Ok(i) => sample / f64::from(input_scale(self.sigmas[i])),
            Err(_) => sample.shallow_clone(),
        }
    }

    pub fn step(
        &mut self,
        model_output: &Tensor,
        t: f64,
        sample: &Tensor,
        noise: Option<&Tensor>,
    ) -> Result<StepOutput, SchedulerError> {
        let noise = noise.ok_or(SchedulerError::MissingNoise { class: CLASS })?;
        let i = self.index(t)?;
        let (sigma_from, sigma_to) = sigma_pair(&self.sigmas, i, CLASS)?;
        let x0 = pred_original(
            self.prediction,
            model_output,
            sample,
            sigma_from,
            sigma_from,
        );
        let (f2, t2) = (sigma_from * sigma_from, sigma_to * sigma_to);
        let sigma_up = (t2 * (f2 - t2) / f2).sqrt();
        let sigma_down = (t2 - sigma_up * sigma_up).sqrt();
        let derivative = (sample - &x0) / f64::from(sigma_from);
        let dt = sigma_down - sigma_from;
        let prev = sample + derivative * f64::from(dt);
        let prev =
            prev + noise.to_device(sample.device()).to_kind(sample.kind()) * f64::from(sigma_up);
        self.state.step_index = Some(i + 1);
        Ok(StepOutput {
            prev_sample: prev,
            pred_original_sample: Some(x0),
        })
    }

    pub fn add_noise(
        &self,
        original: &Tensor,
        noise: &Tensor,
        t: f64,
    ) -> Result<Tensor, SchedulerError> {
        let i = self
            .state
            .for_add_noise(&self.timesteps, t)
            .ok_or_else(|| SchedulerError::OutOfOrder {
                class: CLASS,
                reason: format!("add_noise with timestep {t}, which is not in the schedule"),
            })?;
        add_noise_sigma(self.sigmas[i], original, noise)
    }
}
