//! Noise schedulers, configured from `scheduler/scheduler_config.json` as diffusers does.
//!
//! A [`SchedulerConfig`] keeps the file's keys as they are; each scheduler reads the keys its diffusers class
//! knows and falls back to that class's defaults, which is what `Class.from_config(config)` does. A
//! [`SchedulerKind`] swaps the class while keeping the config. The scalar coefficients are computed in float32,
//! as diffusers' 0-d tensors are, so steps agree with diffusers to float32 rounding.

pub mod betas;
pub mod config;
pub mod ddim;
pub mod dpm_solver;
pub mod euler;
pub mod euler_ancestral;
pub mod pndm;
pub mod sigma_run;
pub mod timesteps;

pub use config::SchedulerConfig;

use std::path::PathBuf;
use std::str::FromStr;

use serde_json::Value;
use tch::Tensor;

#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error("cannot read scheduler config {path}: {source}; check the model's scheduler/ folder")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("scheduler config {path} is not a JSON object: {reason}; re-download the model's scheduler/ folder")]
    Json { path: PathBuf, reason: String },
    #[error(
        "scheduler class {class:?} in {path} is not supported; supported: DDIMScheduler, EulerDiscreteScheduler, \
         EulerAncestralDiscreteScheduler, DPMSolverMultistepScheduler, PNDMScheduler (pick one with `scheduler = ...`)"
    )]
    UnknownClass { class: String, path: PathBuf },
    #[error("scheduler config {path}: key {key:?} {reason}")]
    BadValue {
        path: PathBuf,
        key: String,
        reason: String,
    },
    #[error(
        "unknown scheduler {given:?}; use one of: ddim, euler, euler_a, dpmpp2m (also \"dpm++2m\"), \
         dpmpp2m_karras, pndm"
    )]
    UnknownKind { given: String },
    #[error(
        "{steps} inference steps asked of a scheduler trained with {train} timesteps; use between 1 and {train} steps"
    )]
    BadSteps { steps: usize, train: usize },
    #[error("{class}: step() called {reason}; call set_timesteps first and step once per timestep, in order")]
    OutOfOrder { class: &'static str, reason: String },
    #[error(
        "{class}: step() needs the step noise (draw it with noise::draw_job_noise) but got none"
    )]
    MissingNoise { class: &'static str },
}

impl SchedulerError {
    pub(crate) fn before_set_timesteps(class: &'static str) -> Self {
        Self::OutOfOrder {
            class,
            reason: "before set_timesteps".into(),
        }
    }

    /// step() (or add_noise, `in_add_noise`) given a timestep that is not in the current run's schedule.
    pub(crate) fn unknown_timestep(class: &'static str, t: f64, in_add_noise: bool) -> Self {
        let call = if in_add_noise { "add_noise " } else { "" };
        Self::OutOfOrder {
            class,
            reason: format!("{call}with timestep {t}, which is not in the schedule"),
        }
    }
}

/// The schedulers a recipe can name. Each maps to a diffusers class plus the overrides that make it that
/// sampler (e.g. `dpmpp2m` is `DPMSolverMultistepScheduler` with `algorithm_type="dpmsolver++"`, order 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SchedulerKind {
    Ddim,
    Euler,
    EulerAncestral,
    DpmPP2M,
    DpmPP2MKarras,
    Pndm,
}

impl SchedulerKind {
    pub const ALL: [SchedulerKind; 6] = [
        Self::Ddim,
        Self::Euler,
        Self::EulerAncestral,
        Self::DpmPP2M,
        Self::DpmPP2MKarras,
        Self::Pndm,
    ];

    /// The canonical name (what `FromStr` accepts first and what manifests record).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ddim => "ddim",
            Self::Euler => "euler",
            Self::EulerAncestral => "euler_a",
            Self::DpmPP2M => "dpmpp2m",
            Self::DpmPP2MKarras => "dpmpp2m_karras",
            Self::Pndm => "pndm",
        }
    }

    pub fn class_name(self) -> &'static str {
        match self {
            Self::Ddim => "DDIMScheduler",
            Self::Euler => "EulerDiscreteScheduler",
            Self::EulerAncestral => "EulerAncestralDiscreteScheduler",
            Self::DpmPP2M | Self::DpmPP2MKarras => "DPMSolverMultistepScheduler",
            Self::Pndm => "PNDMScheduler",
        }
    }

    /// Config keys this kind sets on top of the model's config.
    pub fn overrides(self) -> Vec<(&'static str, Value)> {
        match self {
            Self::DpmPP2M | Self::DpmPP2MKarras => vec![
                ("algorithm_type", Value::from("dpmsolver++")),
                ("solver_order", Value::from(2)),
                (
                    "use_karras_sigmas",
                    Value::from(self == Self::DpmPP2MKarras),
                ),
            ],
            _ => Vec::new(),
        }
    }
}

impl std::fmt::Display for SchedulerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SchedulerKind {
    type Err = SchedulerError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm: String = s
            .trim()
            .to_ascii_lowercase()
            .replace("++", "pp")
            .chars()
            .filter(|c| !matches!(c, '-' | '_' | ' ' | '.'))
            .collect();
        Ok(match norm.as_str() {
            "ddim" => Self::Ddim,
            "euler" => Self::Euler,
            "eulera" | "eulerancestral" => Self::EulerAncestral,
            "dpmpp2m" | "dpmsolverpp" | "dpmsolver" => Self::DpmPP2M,
            "dpmpp2mkarras" | "dpmpp2mk" => Self::DpmPP2MKarras,
            "pndm" | "plms" => Self::Pndm,
            _ => {
                return Err(SchedulerError::UnknownKind {
                    given: s.to_owned(),
                })
            }
        })
    }
}

/// What the model predicts (diffusers' `prediction_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prediction {
    Epsilon,
    VPrediction,
    Sample,
}

impl Prediction {
    pub fn from_config(cfg: &SchedulerConfig, allowed: &[&str]) -> Result<Self, SchedulerError> {
        Ok(
            match cfg.require("prediction_type", allowed, "epsilon")?.as_str() {
                "v_prediction" => Self::VPrediction,
                "sample" | "original_sample" => Self::Sample,
                _ => Self::Epsilon,
            },
        )
    }
}

/// One step's result.
pub struct StepOutput {
    pub prev_sample: Tensor,
    /// The x0 estimate, for the schedulers whose diffusers `step()` returns one.
    pub pred_original_sample: Option<Tensor>,
}

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

/// Step bookkeeping shared by the sigma schedulers (diffusers' `_step_index` / `_begin_index`).
#[derive(Clone, Debug, Default)]
pub struct StepIndex {
    pub step_index: Option<usize>,
    pub begin_index: Option<usize>,
}

impl StepIndex {
    /// diffusers' `index_for_timestep`: the first match, or the second when the value repeats (so a run
    /// started mid-schedule does not skip a sigma).
    pub fn index_for_timestep(timesteps: &[f64], t: f64) -> Option<usize> {
        let hits: Vec<usize> = timesteps
            .iter()
            .enumerate()
            .filter(|(_, &x)| x == t)
            .map(|(i, _)| i)
            .collect();
        match hits.len() {
            0 => None,
            1 => Some(hits[0]),
            _ => Some(hits[1]),
        }
    }

    /// The current index, initialized on first use as diffusers' `_init_step_index`.
    pub fn current(&mut self, timesteps: &[f64], t: f64) -> Option<usize> {
        if self.step_index.is_none() {
            self.step_index = match self.begin_index {
                Some(b) => Some(b),
                None => Self::index_for_timestep(timesteps, t),
            };
        }
        self.step_index
    }

    /// The index add_noise uses: begin_index (before stepping) or the current step, else a lookup.
    pub fn for_add_noise(&self, timesteps: &[f64], t: f64) -> Option<usize> {
        match (self.begin_index, self.step_index) {
            (None, _) => Self::index_for_timestep(timesteps, t),
            (Some(_), Some(s)) => Some(s),
            (Some(b), None) => Some(b),
        }
    }

    pub fn reset(&mut self) {
        self.step_index = None;
        self.begin_index = None;
    }
}

/// `[b] → [b, 1, 1, 1]`-style broadcast of per-sample scalars onto `like`.
pub(crate) fn per_sample(values: &[f32], like: &Tensor) -> Tensor {
    let mut shape = vec![values.len() as i64];
    shape.extend(std::iter::repeat_n(1, like.dim().saturating_sub(1)));
    Tensor::from_slice(values)
        .reshape(shape)
        .to_device(like.device())
}

#[cfg(test)]
mod tests {
    use super::*;
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
