//! The training noise schedule (betas → cumulative alphas), computed with the same float32 tensor operations
//! diffusers uses so every derived number is bit-for-bit the same.

use tch::{Kind, Tensor};

use super::config::SchedulerConfig;
use super::error::SchedulerError;

/// `alphas_cumprod[t]` for every training timestep, as float32 like diffusers keeps it.
#[derive(Clone, Debug)]
pub struct NoiseSchedule {
    pub alphas_cumprod: Vec<f32>,
}

/// `betas_for_alpha_bar` with the cosine ("squaredcos_cap_v2") transform, in double as Python computes it.
fn cosine_betas(n: usize) -> Vec<f64> {
    let alpha_bar = |t: f64| {
        ((t + 0.008) / 1.008 * std::f64::consts::PI / 2.0)
            .cos()
            .powi(2)
    };
    (0..n)
        .map(|i| {
            let (t1, t2) = (i as f64 / n as f64, (i + 1) as f64 / n as f64);
            (1.0 - alpha_bar(t2) / alpha_bar(t1)).min(0.999)
        })
        .collect()
}

/// Zero terminal SNR rescaling (Lin et al. 2023, algorithm 1), as diffusers' `rescale_zero_terminal_snr`.
fn rescale_zero_terminal_snr(betas: &Tensor) -> Tensor {
    let alphas_bar_sqrt = (betas.ones_like() - betas).cumprod(0, Kind::Float).sqrt();
    let first = alphas_bar_sqrt.get(0).copy();
    let last = alphas_bar_sqrt.get(-1).copy();
    let shifted = &alphas_bar_sqrt - &last;
    let scaled = shifted * (&first / (&first - &last));
    let alphas_bar = scaled.square();
    let n = alphas_bar.size()[0];
    let alphas = Tensor::cat(
        &[
            alphas_bar.narrow(0, 0, 1),
            alphas_bar.narrow(0, 1, n - 1) / alphas_bar.narrow(0, 0, n - 1),
        ],
        0,
    );
    alphas.ones_like() - alphas
}

impl NoiseSchedule {
    pub fn from_config(cfg: &SchedulerConfig) -> Result<Self, SchedulerError> {
        let n = cfg.usize_or("num_train_timesteps", 1000)?;
        if n < 2 {
            return Err(cfg.bad("num_train_timesteps", "must be at least 2"));
        }
        let beta_start = cfg.f64_or("beta_start", 0.0001)?;
        let beta_end = cfg.f64_or("beta_end", 0.02)?;
        let opts = (Kind::Float, tch::Device::Cpu);
        let betas = if let Some(trained) = cfg.f64_list("trained_betas")? {
            // Every class indexes the schedule by training timestep up to num_train_timesteps - 1.
            if trained.len() != n {
                return Err(cfg.bad(
                    "trained_betas",
                    &format!(
                        "has {} values but num_train_timesteps is {n}; give one beta per training timestep",
                        trained.len()
                    ),
                ));
            }
            Tensor::from_slice(&trained.iter().map(|&b| b as f32).collect::<Vec<_>>())
        } else {
            match cfg.str_or("beta_schedule", "linear")?.as_str() {
                "linear" => Tensor::linspace(beta_start, beta_end, n as i64, opts),
                "scaled_linear" => Tensor::linspace(beta_start.sqrt(), beta_end.sqrt(), n as i64, opts).square(),
                "squaredcos_cap_v2" => {
                    Tensor::from_slice(&cosine_betas(n).iter().map(|&b| b as f32).collect::<Vec<_>>())
                }
                other => {
                    return Err(cfg.bad(
                        "beta_schedule",
                        &format!("{other:?} is not one of \"linear\", \"scaled_linear\", \"squaredcos_cap_v2\""),
                    ))
                }
            }
        };
        let betas = if cfg.bool_or("rescale_betas_zero_snr", false)? {
            rescale_zero_terminal_snr(&betas)
        } else {
            betas
        };
        let alphas_cumprod = (betas.ones_like() - &betas).cumprod(0, Kind::Float);
        let mut alphas_cumprod: Vec<f32> = Vec::<f32>::try_from(&alphas_cumprod).map_err(|e| {
            cfg.bad(
                "beta_schedule",
                &format!("cannot compute the schedule: {e}"),
            )
        })?;
        if cfg.bool_or("rescale_betas_zero_snr", false)? {
            // diffusers nudges the last value off zero so sigmas stay finite (Euler, DPM-Solver).
            if let Some(last) = alphas_cumprod.last_mut() {
                *last = 2f32.powi(-24);
            }
        }
        Ok(Self { alphas_cumprod })
    }

    pub fn num_train_timesteps(&self) -> usize {
        self.alphas_cumprod.len()
    }

    /// `((1 - ᾱ) / ᾱ) ** 0.5` per training timestep, float32 as diffusers computes it.
    pub fn sigmas(&self) -> Vec<f32> {
        self.alphas_cumprod
            .iter()
            .map(|&a| ((1.0 - a) / a).sqrt())
            .collect()
    }

    /// ᾱ at an integer timestep; `None` when out of range.
    pub fn alpha_at(&self, t: f64) -> Option<f32> {
        if t < 0.0 || t.fract() != 0.0 {
            return None;
        }
        self.alphas_cumprod.get(t as usize).copied()
    }

    /// [`NoiseSchedule::alpha_at`] for a timestep a `class` run was given, out of range being an error.
    pub fn alpha_for_step(&self, t: f64, class: &'static str) -> Result<f32, SchedulerError> {
        self.alpha_at(t).ok_or_else(|| SchedulerError::OutOfOrder {
            class,
            reason: format!("with timestep {t}, outside the training range"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trained_betas_must_cover_every_training_timestep() {
        let cfg = |json: &str| {
            SchedulerConfig::from_json_str(json, std::path::Path::new("s.json")).unwrap()
        };
        for json in [
            r#"{"trained_betas": []}"#,
            r#"{"trained_betas": [0.1], "num_train_timesteps": 2}"#,
        ] {
            let err = NoiseSchedule::from_config(&cfg(json))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("trained_betas") && err.contains("s.json"),
                "{err}"
            );
        }
        let s = NoiseSchedule::from_config(&cfg(
            r#"{"trained_betas": [0.1, 0.5], "num_train_timesteps": 2}"#,
        ))
        .unwrap();
        assert_eq!(s.alphas_cumprod, [0.9, 0.9 * 0.5]);
    }

    #[test]
    fn cosine_schedule_is_capped_and_increasing() {
        let b = cosine_betas(1000);
        assert!(b.windows(2).all(|w| w[1] >= w[0]));
        assert!((b[999] - 0.999).abs() < 1e-12);
    }

    #[test]
    fn zero_snr_rescale_ends_at_zero_alpha_bar() {
        let betas = Tensor::linspace(
            0.00085f64.sqrt(),
            0.012f64.sqrt(),
            1000,
            (Kind::Float, tch::Device::Cpu),
        )
        .square();
        let r = rescale_zero_terminal_snr(&betas);
        let ac = (r.ones_like() - &r).cumprod(0, Kind::Float);
        assert!(ac.double_value(&[999]).abs() < 1e-6);
        let ac0 = (betas.ones_like() - &betas)
            .cumprod(0, Kind::Float)
            .double_value(&[0]);
        assert!((ac.double_value(&[0]) - ac0).abs() < 1e-6);
    }
}
