//! PNDM (Liu et al. 2022) as diffusers' `PNDMScheduler`: Runge-Kutta warm-up steps, then linear multistep
//! (PLMS); with `skip_prk_steps` (as Stable Diffusion ships it) PLMS only.

use tch::Tensor;

use super::betas::NoiseSchedule;
use super::config::SchedulerConfig;
use super::error::SchedulerError;
use super::step::{Prediction, StepOutput};
use super::timesteps::{self, Spacing};

const CLASS: &str = "PNDMScheduler";

pub struct Pndm {
    schedule: NoiseSchedule,
    prediction: Prediction,
    spacing: Spacing,
    steps_offset: i64,
    skip_prk_steps: bool,
    final_alpha_cumprod: f32,
    timesteps: Vec<f64>,
    prk_timesteps: Vec<f64>,
    num_inference_steps: usize,
    counter: usize,
    ets: Vec<Tensor>,
    cur_sample: Option<Tensor>,
    cur_model_output: Option<Tensor>,
}

impl Pndm {
    pub fn new(cfg: &SchedulerConfig) -> Result<Self, SchedulerError> {
        let schedule = NoiseSchedule::from_config(cfg)?;
        let final_alpha_cumprod = if cfg.bool_or("set_alpha_to_one", false)? {
            1.0
        } else {
            schedule.alphas_cumprod[0]
        };
        Ok(Self {
            prediction: Prediction::from_config(cfg, &["epsilon", "v_prediction"])?,
            spacing: Spacing::from_config(cfg, "leading")?,
            steps_offset: cfg.i64_or("steps_offset", 0)?,
            skip_prk_steps: cfg.bool_or("skip_prk_steps", false)?,
            final_alpha_cumprod,
            timesteps: Vec::new(),
            prk_timesteps: Vec::new(),
            num_inference_steps: 0,
            counter: 0,
            ets: Vec::new(),
            cur_sample: None,
            cur_model_output: None,
            schedule,
        })
    }

    pub fn schedule(&self) -> &NoiseSchedule {
        &self.schedule
    }

    pub fn set_timesteps(&mut self, n: usize) -> Result<(), SchedulerError> {
        let train = self.schedule.num_train_timesteps();
        // Ascending here; PNDM builds its run from the ascending list.
        let asc: Vec<f64> = match self.spacing {
            Spacing::Linspace => timesteps::linspace(0.0, (train - 1) as f64, n)
                .into_iter()
                .map(timesteps::round)
                .collect(),
            Spacing::Leading => {
                let ratio = (train / n) as f64;
                (0..n)
                    .map(|i| timesteps::round(i as f64 * ratio) + self.steps_offset as f64)
                    .collect()
            }
            Spacing::Trailing => {
                let ratio = train as f64 / n as f64;
                let mut v: Vec<f64> = timesteps::arange(train as f64, 0.0, -ratio)
                    .into_iter()
                    .map(timesteps::round)
                    .collect();
                v.reverse();
                v.into_iter().map(|t| t - 1.0).collect()
            }
        };
        let (prk, plms): (Vec<f64>, Vec<f64>) = if self.skip_prk_steps {
            // [.., t_{n-2}] + [t_{n-2}] + [t_{n-1}], reversed: the first PLMS step is taken twice.
            let k = asc.len();
            let mut v: Vec<f64> = asc[..k.saturating_sub(1)].to_vec();
            if k >= 2 {
                v.push(asc[k - 2]);
            }
            if k >= 1 {
                v.push(asc[k - 1]);
            }
            v.reverse();
            (Vec::new(), v)
        } else {
            let half = (train / n / 2) as f64;
            let last4 = &asc[asc.len().saturating_sub(4)..];
            let mut prk: Vec<f64> = last4.iter().flat_map(|&t| [t, t + half]).collect();
            prk.pop();
            let doubled: Vec<f64> = prk.iter().flat_map(|&t| [t, t]).collect();
            let mut prk: Vec<f64> = doubled[1..doubled.len().saturating_sub(1)].to_vec();
            prk.reverse();
            let mut plms: Vec<f64> = asc[..asc.len().saturating_sub(3)].to_vec();
            plms.reverse();
            (prk, plms)
        };
        self.timesteps = prk.iter().chain(plms.iter()).copied().collect();
        self.prk_timesteps = prk;
        self.num_inference_steps = n;
        self.counter = 0;
        self.ets.clear();
        self.cur_sample = None;
        self.cur_model_output = None;
        Ok(())
    }

    pub fn timesteps(&self) -> &[f64] {
        &self.timesteps
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
        let prev = if self.counter < self.prk_timesteps.len() && !self.skip_prk_steps {
            self.step_prk(model_output, t, sample)?
        } else {
            self.step_plms(model_output, t, sample)?
        };
        Ok(StepOutput {
            prev_sample: prev,
            pred_original_sample: None,
        })
    }

    fn step_prk(&mut self, m: &Tensor, t: f64, sample: &Tensor) -> Result<Tensor, SchedulerError> {
        let train = self.schedule.num_train_timesteps();
        let diff = if self.counter % 2 == 1 {
            0
        } else {
            train / self.num_inference_steps / 2
        };
        let prev_t = t - diff as f64;
        let t = self.prk_timesteps[self.counter / 4 * 4];
        let acc = |c: &Option<Tensor>, x: Tensor| match c {
            Some(c) => c + x,
            None => x,
        };
        let model_output = match self.counter % 4 {
            0 => {
                self.cur_model_output = Some(acc(&self.cur_model_output, m * (1.0 / 6.0)));
                self.ets.push(m.shallow_clone());
                self.cur_sample = Some(sample.shallow_clone());
                m.shallow_clone()
            }
            1 | 2 => {
                self.cur_model_output = Some(acc(&self.cur_model_output, m * (1.0 / 3.0)));
                m.shallow_clone()
            }
            _ => {
                let out = acc(&self.cur_model_output, m * (1.0 / 6.0));
                self.cur_model_output = None;
                out
            }
        };
        let cur = self.cur_sample.as_ref().unwrap_or(sample).shallow_clone();
        let prev = self.prev_sample(&cur, t, prev_t, &model_output)?;
        self.counter += 1;
        Ok(prev)
    }

    fn step_plms(&mut self, m: &Tensor, t: f64, sample: &Tensor) -> Result<Tensor, SchedulerError> {
        if !self.skip_prk_steps && self.ets.len() < 3 {
            return Err(SchedulerError::OutOfOrder {
                class: CLASS,
                reason: "for a PLMS step before the Runge-Kutta warm-up finished".into(),
            });
        }
        let ratio = (self.schedule.num_train_timesteps() / self.num_inference_steps) as f64;
        let (mut t, mut prev_t) = (t, t - ratio);
        if self.counter != 1 {
            let keep = self.ets.len().saturating_sub(3);
            self.ets.drain(..keep);
            self.ets.push(m.shallow_clone());
        } else {
            prev_t = t;
            t += ratio;
        }
        let e = &self.ets;
        let k = e.len();
        let mut sample = sample.shallow_clone();
        let model_output = if k == 1 && self.counter == 0 {
            self.cur_sample = Some(sample.shallow_clone());
            m.shallow_clone()
        } else if k == 1 && self.counter == 1 {
            if let Some(s) = self.cur_sample.take() {
                sample = s;
            }
            (m + &e[0]) / 2.0
        } else if k == 2 {
            (&e[1] * 3.0 - &e[0]) / 2.0
        } else if k == 3 {
            (&e[2] * 23.0 - &e[1] * 16.0 + &e[0] * 5.0) / 12.0
        } else {
            (&e[k - 1] * 55.0 - &e[k - 2] * 59.0 + &e[k - 3] * 37.0 - &e[k - 4] * 9.0)
                * (1.0 / 24.0)
        };
        let prev = self.prev_sample(&sample, t, prev_t, &model_output)?;
        self.counter += 1;
        Ok(prev)
    }

    /// Formula (9) of the PNDM paper: x_{t-δ} from x_t and the (combined) noise estimate.
    fn prev_sample(
        &self,
        sample: &Tensor,
        t: f64,
        prev_t: f64,
        m: &Tensor,
    ) -> Result<Tensor, SchedulerError> {
        let alpha = |t: f64| self.schedule.alpha_for_step(t, CLASS);
        let a_t = alpha(t)?;
        let a_prev = if prev_t >= 0.0 {
            alpha(prev_t)?
        } else {
            self.final_alpha_cumprod
        };
        let (b_t, b_prev) = (1.0 - a_t, 1.0 - a_prev);
        let m = match self.prediction {
            Prediction::VPrediction => m * f64::from(a_t.sqrt()) + sample * f64::from(b_t.sqrt()),
            _ => m.shallow_clone(),
        };
        let sample_coeff = (a_prev / a_t).sqrt();
        let denom = a_t * b_prev.sqrt() + (a_t * b_t * a_prev).sqrt();
        Ok(sample * f64::from(sample_coeff) - (m * f64::from(a_prev - a_t)) / f64::from(denom))
    }

    /// `(sqrt(ᾱ), sqrt(1 - ᾱ))`: add_noise's scales of the clean sample and the noise at `t`.
    pub fn noise_scales(&self, t: f64) -> Result<(f32, f32), SchedulerError> {
        let a = self.schedule.alpha_for_step(t, CLASS)?;
        Ok((a.sqrt(), (1.0 - a).sqrt()))
    }
}
