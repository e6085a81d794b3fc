//! Why a scheduler could not be configured or stepped.

use std::path::PathBuf;

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
