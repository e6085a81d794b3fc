//! A configured scheduler: the one type the pipeline steps, dispatching to each diffusers class.

use tch::Tensor;

use super::config::SchedulerConfig;
use super::ddim;
use super::dpm_solver;
use super::error::SchedulerError;
use super::euler;
use super::euler_ancestral;
use super::kind::SchedulerKind;
use super::pndm;
use super::step::{per_sample, StepOutput};

/// A configured scheduler with its per-run state.
pub enum Scheduler {
    Ddim(ddim::Ddim),
    Euler(euler::EulerDiscrete),
    EulerAncestral(euler_ancestral::EulerAncestral),
    DpmSolver(dpm_solver::DpmSolverMultistep),
    Pndm(pndm::Pndm),
}

macro_rules! dispatch {
    ($self:expr, $s:ident => $body:expr) => {
        match $self {
            Scheduler::Ddim($s) => $body,
            Scheduler::Euler($s) => $body,
            Scheduler::EulerAncestral($s) => $body,
            Scheduler::DpmSolver($s) => $body,
            Scheduler::Pndm($s) => $body,
        }
    };
}

impl Scheduler {
    /// Builds the class the config names.
    pub fn from_config(cfg: &SchedulerConfig) -> Result<Self, SchedulerError> {
        Ok(match cfg.class_name.as_str() {
            "DDIMScheduler" => Self::Ddim(ddim::Ddim::new(cfg)?),
            "EulerDiscreteScheduler" => Self::Euler(euler::EulerDiscrete::new(cfg)?),
            "EulerAncestralDiscreteScheduler" => {
                Self::EulerAncestral(euler_ancestral::EulerAncestral::new(cfg)?)
            }
            "DPMSolverMultistepScheduler" => {
                Self::DpmSolver(dpm_solver::DpmSolverMultistep::new(cfg)?)
            }
            "PNDMScheduler" => Self::Pndm(pndm::Pndm::new(cfg)?),
            other => {
                return Err(SchedulerError::UnknownClass {
                    class: other.to_owned(),
                    path: cfg.path().to_path_buf(),
                })
            }
        })
    }

    /// The model's config, optionally under another kind.
    pub fn new(cfg: &SchedulerConfig, kind: Option<SchedulerKind>) -> Result<Self, SchedulerError> {
        match kind {
            Some(k) => Self::from_config(&cfg.with_kind(k)),
            None => Self::from_config(cfg),
        }
    }

    pub fn class_name(&self) -> &'static str {
        match self {
            Self::Ddim(_) => "DDIMScheduler",
            Self::Euler(_) => "EulerDiscreteScheduler",
            Self::EulerAncestral(_) => "EulerAncestralDiscreteScheduler",
            Self::DpmSolver(_) => "DPMSolverMultistepScheduler",
            Self::Pndm(_) => "PNDMScheduler",
        }
    }

    /// Computes the inference timesteps and resets the per-run state.
    pub fn set_timesteps(&mut self, n: usize) -> Result<(), SchedulerError> {
        let train = dispatch!(self, s => s.schedule().num_train_timesteps());
        if n == 0 || n > train {
            return Err(SchedulerError::BadSteps { steps: n, train });
        }
        dispatch!(self, s => s.set_timesteps(n))
    }

    /// `num_train_timesteps` of the config.
    pub fn num_train_timesteps(&self) -> usize {
        dispatch!(self, s => s.schedule().num_train_timesteps())
    }

    /// Descending timesteps of the current run (integral for all but the Euler schedulers).
    pub fn timesteps(&self) -> &[f64] {
        dispatch!(self, s => s.timesteps())
    }

    /// Sigmas of the sigma-based schedulers, one more than timesteps (the last is the end point).
    pub fn sigmas(&self) -> Option<&[f32]> {
        match self {
            Self::Euler(s) => Some(s.run.sigmas()),
            Self::EulerAncestral(s) => Some(s.run.sigmas()),
            Self::DpmSolver(s) => Some(s.sigmas()),
            Self::Ddim(_) | Self::Pndm(_) => None,
        }
    }

    /// Model evaluations per timestep entry; 1 for every class here, as in diffusers.
    pub fn order(&self) -> usize {
        1
    }

    pub fn init_noise_sigma(&self) -> f64 {
        match self {
            Self::Euler(s) => s.run.init_noise_sigma(),
            Self::EulerAncestral(s) => s.run.init_noise_sigma(),
            _ => 1.0,
        }
    }

    /// Whether the diffusers class has `set_begin_index` (img2img calls it when present).
    pub fn has_begin_index(&self) -> bool {
        matches!(
            self,
            Self::Euler(_) | Self::EulerAncestral(_) | Self::DpmSolver(_)
        )
    }

    /// Where an img2img run starts in `timesteps()`; classes without it locate steps by timestep value.
    pub fn set_begin_index(&mut self, index: usize) {
        match self {
            Self::Euler(s) => s.run.state.begin_index = Some(index),
            Self::EulerAncestral(s) => s.run.state.begin_index = Some(index),
            Self::DpmSolver(s) => s.state.begin_index = Some(index),
            Self::Ddim(_) | Self::Pndm(_) => {}
        }
    }

    /// Whether `step` needs fresh noise each step (ancestral sampling).
    pub fn needs_step_noise(&self) -> bool {
        matches!(self, Self::EulerAncestral(_))
    }

    /// The input scaling before the model: `x / sqrt(sigma² + 1)` for the Euler schedulers, identity otherwise.
    pub fn scale_model_input(&mut self, sample: &Tensor, t: f64) -> Tensor {
        match self {
            Self::Euler(s) => s.run.scale_model_input(sample, t),
            Self::EulerAncestral(s) => s.run.scale_model_input(sample, t),
            _ => sample.shallow_clone(),
        }
    }

    /// One denoising step from `t`. `noise` is the step's noise for ancestral schedulers (same shape as
    /// `sample`), ignored by the others.
    pub fn step(
        &mut self,
        model_output: &Tensor,
        t: f64,
        sample: &Tensor,
        noise: Option<&Tensor>,
    ) -> Result<StepOutput, SchedulerError> {
        match self {
            Self::Ddim(s) => s.step(model_output, t, sample),
            Self::Euler(s) => s.step(model_output, t, sample),
            Self::EulerAncestral(s) => s.step(model_output, t, sample, noise),
            Self::DpmSolver(s) => s.step(model_output, t, sample),
            Self::Pndm(s) => s.step(model_output, t, sample),
        }
    }

    /// Noises clean latents to timestep `t` (img2img's start point): `a·x0 + s·noise` with each class's
    /// scales, one pair for the whole batch (img2img noises every sample to the same t).
    pub fn add_noise(
        &self,
        original: &Tensor,
        noise: &Tensor,
        t: f64,
    ) -> Result<Tensor, SchedulerError> {
        let (a, s) = match self {
            Self::Euler(s) => s.run.noise_scales(t)?,
            Self::EulerAncestral(s) => s.run.noise_scales(t)?,
            Self::Ddim(s) => s.noise_scales(t)?,
            Self::DpmSolver(s) => s.noise_scales(t)?,
            Self::Pndm(s) => s.noise_scales(t)?,
        };
        // diffusers multiplies by float32 tensors, not Python scalars; so do we, for the same rounding.
        let b = original.size().first().copied().unwrap_or(1).max(1) as usize;
        let a = per_sample(&vec![a; b], original).to_kind(original.kind());
        let s = per_sample(&vec![s; b], original).to_kind(original.kind());
        Ok(a * original + s * noise)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diffusion::schedulers::step::StepIndex;
    use std::path::Path;

    #[test]
    fn kinds_parse_from_common_spellings() {
        assert_eq!(
            "dpm++2m".parse::<SchedulerKind>().unwrap(),
            SchedulerKind::DpmPP2M
        );
        assert_eq!(
            "DPM++ 2M Karras".parse::<SchedulerKind>().unwrap(),
            SchedulerKind::DpmPP2MKarras
        );
        assert_eq!(
            "euler-a".parse::<SchedulerKind>().unwrap(),
            SchedulerKind::EulerAncestral
        );
        for k in SchedulerKind::ALL {
            assert_eq!(k.as_str().parse::<SchedulerKind>().unwrap(), k);
        }
        let err = "heun".parse::<SchedulerKind>().unwrap_err().to_string();
        assert!(err.contains("heun") && err.contains("dpmpp2m"), "{err}");
    }

    #[test]
    fn unknown_class_is_an_error_naming_it() {
        let cfg = SchedulerConfig::from_json_str(
            r#"{"_class_name": "LCMScheduler"}"#,
            Path::new("s.json"),
        )
        .unwrap();
        let err = Scheduler::from_config(&cfg).err().unwrap().to_string();
        assert!(
            err.contains("LCMScheduler") && err.contains("s.json"),
            "{err}"
        );
    }

    #[test]
    fn repeated_timestep_resolves_to_second_occurrence() {
        assert_eq!(
            StepIndex::index_for_timestep(&[9.0, 5.0, 5.0, 1.0], 5.0),
            Some(2)
        );
        assert_eq!(
            StepIndex::index_for_timestep(&[9.0, 5.0, 1.0], 5.0),
            Some(1)
        );
        assert_eq!(StepIndex::index_for_timestep(&[9.0], 4.0), None);
    }
}
