//! Euler (Karras et al. 2022, algorithm 2 without churn), as diffusers' `EulerDiscreteScheduler`.

use tch::Tensor;

use super::betas::NoiseSchedule;
use super::timesteps::{self, Spacing};
use super::{per_sample, Prediction, SchedulerConfig, SchedulerError, StepIndex, StepOutput};

pub struct EulerDiscrete {
    schedule: NoiseSchedule,
    prediction: Prediction,
    spacing: Spacing,
    steps_offset: i64,
    karras: bool,
    final_sigma_min: bool,
    timesteps: Vec<f64>,
    sigmas: Vec<f32>,
    pub(crate) state: StepIndex,
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
        let schedule = NoiseSchedule::from_config(cfg)?;
        // Before set_timesteps diffusers' sigmas are the whole training table, descending, then 0.
        let mut sigmas: Vec<f32> = schedule.sigmas().into_iter().rev().collect();
        sigmas.push(0.0);
        Ok(Self {
            prediction: Prediction::from_config(
                cfg,
                &["epsilon", "v_prediction", "sample", "original_sample"],
            )?,
            spacing: Spacing::from_config(cfg, "linspace")?,
            steps_offset: cfg.i64_or("steps_offset", 0)?,
            karras: cfg.bool_or("use_karras_sigmas", false)?,
            final_sigma_min: cfg.require("final_sigmas_type", &["zero", "sigma_min"], "zero")?
                == "sigma_min",
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
        let (ts, sigmas) = sigma_schedule(
            &self.schedule,
            self.spacing,
            self.steps_offset,
            n,
            self.karras,
        );
        let mut sigmas = sigmas;
        sigmas.push(if self.final_sigma_min {
            let a = self.schedule.alphas_cumprod[0];
            ((1.0 - a) / a).sqrt()
        } else {
            0.0
        });
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
                class: "EulerDiscreteScheduler",
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
    ) -> Result<StepOutput, SchedulerError> {
        let i = self.index(t)?;
        let (sigma, sigma_next) = sigma_pair(&self.sigmas, i, "EulerDiscreteScheduler")?;
        // No churn (s_churn = 0): sigma_hat = sigma * (0 + 1).
        let sigma_hat = sigma;
        let x0 = pred_original(self.prediction, model_output, sample, sigma_hat, sigma);
        let derivative = (sample - &x0) / f64::from(sigma_hat);
        let dt = sigma_next - sigma_hat;
        let prev = sample + derivative * f64::from(dt);
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
                class: "EulerDiscreteScheduler",
                reason: format!("add_noise with timestep {t}, which is not in the schedule"),
            })?;
        add_noise_sigma(self.sigmas[i], original, noise)
    }
}

/// `sqrt(sigma² + 1)` in float32.
pub(crate) fn input_scale(sigma: f32) -> f32 {
    (sigma * sigma + 1.0).sqrt()
}

pub(crate) fn sigma_pair(
    sigmas: &[f32],
    i: usize,
    class: &'static str,
) -> Result<(f32, f32), SchedulerError> {
    match (sigmas.get(i), sigmas.get(i + 1)) {
        (Some(&a), Some(&b)) => Ok((a, b)),
        _ => Err(SchedulerError::OutOfOrder {
            class,
            reason: format!("past the last timestep (step {i})"),
        }),
    }
}

/// The x0 estimate of the sigma (Karras) parameterization.
pub(crate) fn pred_original(
    p: Prediction,
    m: &Tensor,
    sample: &Tensor,
    sigma_hat: f32,
    sigma: f32,
) -> Tensor {
    match p {
        Prediction::Epsilon => sample - m * f64::from(sigma_hat),
        Prediction::Sample => m.shallow_clone(),
        Prediction::VPrediction => {
            let s2 = sigma * sigma + 1.0;
            m * f64::from(-sigma / s2.sqrt()) + sample / f64::from(s2)
        }
    }
}

pub(crate) fn add_noise_sigma(
    sigma: f32,
    original: &Tensor,
    noise: &Tensor,
) -> Result<Tensor, SchedulerError> {
    let b = original.size().first().copied().unwrap_or(1).max(1) as usize;
    let s = per_sample(&vec![sigma; b], original).to_kind(original.kind());
    Ok(original + noise * s)
}

pub(crate) fn init_noise_sigma(sigmas: &[f32], spacing: Spacing) -> f64 {
    let max = sigmas.iter().copied().fold(f32::MIN, f32::max);
    match spacing {
        Spacing::Linspace | Spacing::Trailing => f64::from(max),
        Spacing::Leading => f64::from((max * max + 1.0).sqrt()),
    }
}

/// Timesteps (float32 values) and sigmas (without the end point) of the Euler schedulers, as diffusers:
/// sigmas interpolated at the timesteps in double, optionally re-spaced by Karras with timesteps mapped back.
pub(crate) fn sigma_schedule(
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
    let table: Vec<f64> = schedule.sigmas().into_iter().map(f64::from).collect();
    let sigmas: Vec<f64> = ts
        .iter()
        .map(|&t| timesteps::interp_unit(t, &table))
        .collect();
    if !karras {
        return (ts, sigmas.iter().map(|&s| s as f32).collect());
    }
    let log_sigmas: Vec<f64> = schedule
        .sigmas()
        .into_iter()
        .map(|s| f64::from(f64::from(s).ln() as f32))
        .collect();
    let (smin, smax) = (sigmas[sigmas.len() - 1], sigmas[0]);
    let k = timesteps::karras(smin, smax, n);
    let ts = k
        .iter()
        .map(|&s| f64::from(timesteps::sigma_to_t(s, &log_sigmas) as f32))
        .collect();
    (ts, k.iter().map(|&s| s as f32).collect())
}
