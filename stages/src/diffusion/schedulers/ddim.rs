//! DDIM (Song et al. 2020), deterministic (eta = 0), as diffusers' `DDIMScheduler`.

use tch::Tensor;

use super::betas::NoiseSchedule;
use super::config::SchedulerConfig;
use super::error::SchedulerError;
use super::step::{Prediction, StepOutput};
use super::timesteps::{self, Spacing};

const CLASS: &str = "DDIMScheduler";

pub struct Ddim {
    schedule: NoiseSchedule,
    prediction: Prediction,
    spacing: Spacing,
    steps_offset: i64,
    clip_sample: Option<f64>,
    final_alpha_cumprod: f32,
    timesteps: Vec<f64>,
    num_inference_steps: usize,
}

impl Ddim {
    pub fn new(cfg: &SchedulerConfig) -> Result<Self, SchedulerError> {
        cfg.require_false("thresholding")?;
        let schedule = NoiseSchedule::from_config(cfg)?;
        let final_alpha_cumprod = if cfg.bool_or("set_alpha_to_one", true)? {
            1.0
        } else {
            schedule.alphas_cumprod[0]
        };
        let clip_sample = if cfg.bool_or("clip_sample", true)? {
            Some(cfg.f64_or("clip_sample_range", 1.0)?)
        } else {
            None
        };
        Ok(Self {
            prediction: Prediction::from_config(cfg, &["epsilon", "v_prediction", "sample"])?,
            spacing: Spacing::from_config(cfg, "leading")?,
            steps_offset: cfg.i64_or("steps_offset", 0)?,
            clip_sample,
            final_alpha_cumprod,
            timesteps: Vec::new(),
            num_inference_steps: 0,
            schedule,
        })
    }

    pub fn schedule(&self) -> &NoiseSchedule {
        &self.schedule
    }

    pub fn set_timesteps(&mut self, n: usize) -> Result<(), SchedulerError> {
        let train = self.schedule.num_train_timesteps();
        self.timesteps = timesteps::discrete(self.spacing, train, n, self.steps_offset);
        self.num_inference_steps = n;
        Ok(())
    }

    pub fn timesteps(&self) -> &[f64] {
        &self.timesteps
    }

    fn alpha(&self, t: f64) -> Result<f32, SchedulerError> {
        self.schedule.alpha_for_step(t, CLASS)
    }

    pub fn step(
        &mut self,
        model_output: &Tensor,
        t: f64,
        sample: &Tensor,
    ) -> Result<StepOutput, SchedulerError> {
        if self.num_inference_steps == 0 {
            return Err(SchedulerError::before_set_timesteps(CLASS));
        }
        let train = self.schedule.num_train_timesteps();
        let prev_t = t - (train / self.num_inference_steps) as f64;
        let a_t = self.alpha(t)?;
        let a_prev = if prev_t >= 0.0 {
            self.alpha(prev_t)?
        } else {
            self.final_alpha_cumprod
        };
        let b_t = 1.0 - a_t;
        let (sa, sb) = (f64::from(a_t.sqrt()), f64::from(b_t.sqrt()));
        let (mut x0, eps) = match self.prediction {
            Prediction::Epsilon => (
                (sample - model_output * sb) / sa,
                model_output.shallow_clone(),
            ),
            Prediction::Sample => {
                let x0 = model_output.shallow_clone();
                let eps = (sample - &x0 * sa) / sb;
                (x0, eps)
            }
            Prediction::VPrediction => (
                sample * sa - model_output * sb,
                model_output * sa + sample * sb,
            ),
        };
        if let Some(r) = self.clip_sample {
            x0 = x0.clamp(-r, r);
        }
        // eta = 0: the direction term uses the whole remaining noise budget and no noise is added.
        let dir = &eps * f64::from((1.0 - a_prev).sqrt());
        let prev = &x0 * f64::from(a_prev.sqrt()) + dir;
        Ok(StepOutput {
            prev_sample: prev,
            pred_original_sample: Some(x0),
        })
    }

    /// `(sqrt(ᾱ), sqrt(1 - ᾱ))`: add_noise's scales of the clean sample and the noise at `t`.
    pub fn noise_scales(&self, t: f64) -> Result<(f32, f32), SchedulerError> {
        let a = self.alpha(t)?;
        Ok((a.sqrt(), (1.0 - a).sqrt()))
    }
}
