//! Euler ancestral: an Euler step to `sigma_down`, then fresh noise of size `sigma_up`, as diffusers'
//! `EulerAncestralDiscreteScheduler`. The noise is passed in (drawn up front in diffusers' order).

use tch::Tensor;

use super::betas::NoiseSchedule;
use super::config::SchedulerConfig;
use super::error::SchedulerError;
use super::sigma_run::SigmaRun;
use super::step::StepOutput;

const CLASS: &str = "EulerAncestralDiscreteScheduler";

pub struct EulerAncestral {
    pub(crate) run: SigmaRun,
}

impl EulerAncestral {
    pub fn new(cfg: &SchedulerConfig) -> Result<Self, SchedulerError> {
        Ok(Self {
            run: SigmaRun::new(cfg, CLASS, &["epsilon", "v_prediction", "sample"])?,
        })
    }

    pub fn schedule(&self) -> &NoiseSchedule {
        &self.run.schedule
    }

    pub fn set_timesteps(&mut self, n: usize) -> Result<(), SchedulerError> {
        self.run.set_timesteps(n, false, 0.0);
        Ok(())
    }

    pub fn timesteps(&self) -> &[f64] {
        self.run.timesteps()
    }

    pub fn step(
        &mut self,
        model_output: &Tensor,
        t: f64,
        sample: &Tensor,
        noise: Option<&Tensor>,
    ) -> Result<StepOutput, SchedulerError> {
        let noise = noise.ok_or(SchedulerError::MissingNoise { class: CLASS })?;
        let (sigma_from, sigma_to) = self.run.next_sigmas(t)?;
        let (f2, t2) = (sigma_from * sigma_from, sigma_to * sigma_to);
        let sigma_up = (t2 * (f2 - t2) / f2).sqrt();
        let sigma_down = (t2 - sigma_up * sigma_up).sqrt();
        let (prev, x0) = self
            .run
            .euler_update(model_output, sample, sigma_from, sigma_down);
        let prev =
            prev + noise.to_device(sample.device()).to_kind(sample.kind()) * f64::from(sigma_up);
        Ok(StepOutput {
            prev_sample: prev,
            pred_original_sample: Some(x0),
        })
    }
}
