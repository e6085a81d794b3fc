//! Euler (Karras et al. 2022, algorithm 2 without churn), as diffusers' `EulerDiscreteScheduler`.

use tch::Tensor;

use super::betas::NoiseSchedule;
use super::config::SchedulerConfig;
use super::error::SchedulerError;
use super::sigma_run::SigmaRun;
use super::step::StepOutput;

pub struct EulerDiscrete {
    pub(crate) run: SigmaRun,
    karras: bool,
    final_sigma_min: bool,
}

impl EulerDiscrete {
    pub fn new(cfg: &SchedulerConfig) -> Result<Self, SchedulerError> {
        cfg.require("interpolation_type", &["linear"], "linear")?;
        cfg.require("timestep_type", &["discrete"], "discrete")?;
        cfg.require_false("use_exponential_sigmas")?;
        cfg.require_false("use_beta_sigmas")?;
        if cfg.f64_or("sigma_min", f64::NAN)?.is_finite()
            || cfg.f64_or("sigma_max", f64::NAN)?.is_finite()
        {
            return Err(cfg.bad("sigma_min", "and sigma_max are not supported; remove them"));
        }
        Ok(Self {
            run: SigmaRun::new(
                cfg,
                "EulerDiscreteScheduler",
                &["epsilon", "v_prediction", "sample", "original_sample"],
            )?,
            karras: cfg.bool_or("use_karras_sigmas", false)?,
            final_sigma_min: cfg.require("final_sigmas_type", &["zero", "sigma_min"], "zero")?
                == "sigma_min",
        })
    }

    pub fn schedule(&self) -> &NoiseSchedule {
        &self.run.schedule
    }

    pub fn set_timesteps(&mut self, n: usize) -> Result<(), SchedulerError> {
        let final_sigma = if self.final_sigma_min {
            self.run.schedule.sigmas().first().copied().unwrap_or(0.0)
        } else {
            0.0
        };
        self.run.set_timesteps(n, self.karras, final_sigma);
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
    ) -> Result<StepOutput, SchedulerError> {
        let (sigma, sigma_next) = self.run.next_sigmas(t)?;
        let (prev, x0) = self
            .run
            .euler_update(model_output, sample, sigma, sigma_next);
        Ok(StepOutput {
            prev_sample: prev,
            pred_original_sample: Some(x0),
        })
    }
}
