//! DPM-Solver++ multistep (Lu et al. 2022), orders 1 and 2, as diffusers' `DPMSolverMultistepScheduler`
//! with `algorithm_type` "dpmsolver++" (or "dpmsolver"), midpoint or heun second-order update.

use tch::Tensor;

use super::betas::NoiseSchedule;
use super::config::SchedulerConfig;
use super::error::SchedulerError;
use super::step::{Prediction, StepIndex, StepOutput};
use super::timesteps::{self, Spacing};

const CLASS: &str = "DPMSolverMultistepScheduler";

pub struct DpmSolverMultistep {
    schedule: NoiseSchedule,
    prediction: Prediction,
    spacing: Spacing,
    steps_offset: i64,
    solver_order: usize,
    data_prediction: bool,
    heun: bool,
    lower_order_final: bool,
    euler_at_final: bool,
    final_sigma_min: bool,
    karras: bool,
    cosine_betas: bool,
    lambda_min_clipped: f64,
    timesteps: Vec<f64>,
    sigmas: Vec<f32>,
    /// The last `solver_order` converted model outputs, oldest first.
    model_outputs: Vec<Option<Tensor>>,
    lower_order_nums: usize,
    pub(crate) state: StepIndex,
}

/// `(alpha_t, sigma_t)` of the VP parameterization from the Karras sigma, in float32.
fn alpha_sigma(sigma: f32) -> (f32, f32) {
    let alpha = 1.0 / (sigma * sigma + 1.0).sqrt();
    (alpha, sigma * alpha)
}

fn lambda(alpha: f32, sigma: f32) -> f32 {
    alpha.ln() - sigma.ln()
}

impl DpmSolverMultistep {
    pub fn new(cfg: &SchedulerConfig) -> Result<Self, SchedulerError> {
        let algorithm = cfg.require(
            "algorithm_type",
            &["dpmsolver++", "dpmsolver"],
            "dpmsolver++",
        )?;
        let solver_order = cfg.usize_or("solver_order", 2)?;
        if !(1..=2).contains(&solver_order) {
            return Err(cfg.bad(
                "solver_order",
                &format!("is {solver_order}; texaug supports 1 and 2"),
            ));
        }
        let final_sigmas = cfg.require("final_sigmas_type", &["zero", "sigma_min"], "zero")?;
        if algorithm == "dpmsolver" && final_sigmas == "zero" {
            return Err(cfg.bad(
                "final_sigmas_type",
                "\"zero\" is not supported with algorithm_type \"dpmsolver\"",
            ));
        }
        cfg.require_false("thresholding")?;
        cfg.require_false("use_exponential_sigmas")?;
        cfg.require_false("use_beta_sigmas")?;
        cfg.require_false("use_lu_lambdas")?;
        cfg.require_false("use_flow_sigmas")?;
        if cfg.get_is_set("variance_type") {
            return Err(cfg.bad(
                "variance_type",
                "is set; texaug supports only models without learned variance",
            ));
        }
        let schedule = NoiseSchedule::from_config(cfg)?;
        let sigmas = schedule.sigmas();
        Ok(Self {
            prediction: Prediction::from_config(cfg, &["epsilon", "v_prediction", "sample"])?,
            spacing: Spacing::from_config(cfg, "linspace")?,
            steps_offset: cfg.i64_or("steps_offset", 0)?,
            solver_order,
            data_prediction: algorithm == "dpmsolver++",
            heun: cfg.require("solver_type", &["midpoint", "heun"], "midpoint")? == "heun",
            lower_order_final: cfg.bool_or("lower_order_final", true)?,
            euler_at_final: cfg.bool_or("euler_at_final", false)?,
            final_sigma_min: final_sigmas == "sigma_min",
            karras: cfg.bool_or("use_karras_sigmas", false)?,
            cosine_betas: cfg.str_or("beta_schedule", "linear")? == "squaredcos_cap_v2",
            lambda_min_clipped: cfg.f64_or("lambda_min_clipped", f64::NEG_INFINITY)?,
            timesteps: Vec::new(),
            sigmas,
            model_outputs: (0..solver_order).map(|_| None).collect(),
            lower_order_nums: 0,
            state: StepIndex::default(),
            schedule,
        })
    }

    pub fn schedule(&self) -> &NoiseSchedule {
        &self.schedule
    }

    pub fn set_timesteps(&mut self, n: usize) -> Result<(), SchedulerError> {
        let train = self.schedule.num_train_timesteps();
        let table = self.schedule.sigmas();
        // Timesteps whose lambda falls below lambda_min_clipped are cut from the top of the range.
        let lambdas: Vec<f32> = self
            .schedule
            .alphas_cumprod
            .iter()
            .map(|&a| a.sqrt().ln() - (1.0 - a).sqrt().ln())
            .collect();
        let clipped = lambdas
            .iter()
            .rev()
            .filter(|&&l| f64::from(l) < self.lambda_min_clipped)
            .count();
        let last = train - clipped;
        let mut ts: Vec<f64> = match self.spacing {
            Spacing::Linspace => {
                let v = timesteps::linspace(0.0, (last - 1) as f64, n + 1);
                v.into_iter().rev().take(n).map(timesteps::round).collect()
            }
            Spacing::Leading => {
                let ratio = (last / (n + 1)) as f64;
                (1..=n)
                    .rev()
                    .map(|i| timesteps::round(i as f64 * ratio) + self.steps_offset as f64)
                    .collect()
            }
            Spacing::Trailing => {
                let ratio = train as f64 / n as f64;
                timesteps::arange(last as f64, 0.0, -ratio)
                    .into_iter()
                    .map(|t| timesteps::round(t) - 1.0)
                    .collect()
            }
        };
        let mut sigmas: Vec<f32> = if self.karras {
            let log_sigmas = timesteps::log_sigmas(&table);
            let k = timesteps::karras(f64::from(table[0]), f64::from(table[train - 1]), n);
            ts = k
                .iter()
                .map(|&s| {
                    let t = timesteps::sigma_to_t(s, &log_sigmas);
                    // int64 cast after the optional rounding, as diffusers.
                    if self.cosine_betas {
                        t.trunc()
                    } else {
                        timesteps::round(t)
                    }
                })
                .collect();
            k.iter().map(|&s| s as f32).collect()
        } else {
            let table64: Vec<f64> = table.iter().map(|&s| f64::from(s)).collect();
            ts.iter()
                .map(|&t| timesteps::interp_unit(t, &table64) as f32)
                .collect()
        };
        sigmas.push(if self.final_sigma_min { table[0] } else { 0.0 });
        self.timesteps = ts;
        self.sigmas = sigmas;
        self.model_outputs = (0..self.solver_order).map(|_| None).collect();
        self.lower_order_nums = 0;
        self.state.reset();
        Ok(())
    }

    pub fn timesteps(&self) -> &[f64] {
        &self.timesteps
    }

    pub fn sigmas(&self) -> &[f32] {
        &self.sigmas
    }

    /// The model output as the solver's quantity: x0 for dpmsolver++, epsilon for dpmsolver.
    fn convert(&self, m: &Tensor, sample: &Tensor, sigma: f32) -> Tensor {
        let (a, s) = alpha_sigma(sigma);
        let (a, s) = (f64::from(a), f64::from(s));
        if self.data_prediction {
            match self.prediction {
                Prediction::Epsilon => (sample - m * s) / a,
                Prediction::Sample => m.shallow_clone(),
                Prediction::VPrediction => sample * a - m * s,
            }
        } else {
            match self.prediction {
                Prediction::Epsilon => m.shallow_clone(),
                Prediction::Sample => (sample - m * a) / s,
                Prediction::VPrediction => m * a + sample * s,
            }
        }
    }

    pub fn step(
        &mut self,
        model_output: &Tensor,
        t: f64,
        sample: &Tensor,
    ) -> Result<StepOutput, SchedulerError> {
        if self.timesteps.is_empty() {
            return Err(SchedulerError::before_set_timesteps(CLASS));
        }
        let i = self
            .state
            .current(&self.timesteps, t)
            .unwrap_or(self.timesteps.len() - 1);
        let n = self.timesteps.len();
        if i + 1 >= self.sigmas.len() {
            return Err(SchedulerError::OutOfOrder {
                class: CLASS,
                reason: format!("past the last timestep (step {i})"),
            });
        }
        let lower_order_final = i == n - 1
            && (self.euler_at_final || (self.lower_order_final && n < 15) || !self.final_sigma_min);
        let lower_order_second = i + 2 == n && self.lower_order_final && n < 15;
        let converted = self.convert(model_output, sample, self.sigmas[i]);
        self.model_outputs.remove(0);
        self.model_outputs.push(Some(converted.shallow_clone()));
        let prev = if self.solver_order == 1 || self.lower_order_nums < 1 || lower_order_final {
            self.first_order(&converted, sample, i)
        } else {
            // solver_order is at most 2 here, so the second-order update is the only other case
            // (lower_order_second matters only for third order).
            let _ = lower_order_second;
            let m1 = self.model_outputs[self.solver_order - 2]
                .as_ref()
                .unwrap_or(&converted)
                .shallow_clone();
            self.second_order(&converted, &m1, sample, i)
        };
        if self.lower_order_nums < self.solver_order {
            self.lower_order_nums += 1;
        }
        self.state.step_index = Some(i + 1);
        Ok(StepOutput {
            prev_sample: prev,
            pred_original_sample: None,
        })
    }

    fn first_order(&self, m: &Tensor, sample: &Tensor, i: usize) -> Tensor {
        let (alpha_t, sigma_t) = alpha_sigma(self.sigmas[i + 1]);
        let (alpha_s, sigma_s) = alpha_sigma(self.sigmas[i]);
        let h = lambda(alpha_t, sigma_t) - lambda(alpha_s, sigma_s);
        if self.data_prediction {
            sample * f64::from(sigma_t / sigma_s) - m * f64::from(alpha_t * ((-h).exp() - 1.0))
        } else {
            sample * f64::from(alpha_t / alpha_s) - m * f64::from(sigma_t * (h.exp() - 1.0))
        }
    }

    fn second_order(&self, m0: &Tensor, m1: &Tensor, sample: &Tensor, i: usize) -> Tensor {
        let (alpha_t, sigma_t) = alpha_sigma(self.sigmas[i + 1]);
        let (alpha_s0, sigma_s0) = alpha_sigma(self.sigmas[i]);
        let (alpha_s1, sigma_s1) = alpha_sigma(self.sigmas[i - 1]);
        let lambda_t = lambda(alpha_t, sigma_t);
        let lambda_s0 = lambda(alpha_s0, sigma_s0);
        let lambda_s1 = lambda(alpha_s1, sigma_s1);
        let (h, h0) = (lambda_t - lambda_s0, lambda_s0 - lambda_s1);
        let r0 = h0 / h;
        let d1 = (m0 - m1) * f64::from(1.0 / r0);
        if self.data_prediction {
            let c = alpha_t * ((-h).exp() - 1.0);
            let base = sample * f64::from(sigma_t / sigma_s0) - m0 * f64::from(c);
            if self.heun {
                base + d1 * f64::from(alpha_t * (((-h).exp() - 1.0) / h + 1.0))
            } else {
                base - d1 * f64::from(0.5 * c)
            }
        } else {
            let c = sigma_t * (h.exp() - 1.0);
            let base = sample * f64::from(alpha_t / alpha_s0) - m0 * f64::from(c);
            if self.heun {
                base - d1 * f64::from(sigma_t * ((h.exp() - 1.0) / h - 1.0))
            } else {
                base - d1 * f64::from(0.5 * c)
            }
        }
    }

    /// `(alpha_t, sigma_t)`: add_noise's scales of the clean sample and the noise at `t`.
    pub fn noise_scales(&self, t: f64) -> Result<(f32, f32), SchedulerError> {
        let i = self
            .state
            .for_add_noise(&self.timesteps, t)
            .unwrap_or(self.timesteps.len().saturating_sub(1));
        let sigma = *self
            .sigmas
            .get(i)
            .ok_or_else(|| SchedulerError::unknown_timestep(CLASS, t, true))?;
        Ok(alpha_sigma(sigma))
    }
}
