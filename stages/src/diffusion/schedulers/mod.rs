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
pub mod error;
pub mod euler;
pub mod euler_ancestral;
pub mod kind;
pub mod pndm;
pub mod scheduler;
pub mod sigma_run;
pub mod step;
pub mod timesteps;

pub use config::SchedulerConfig;
pub use error::SchedulerError;
pub use kind::SchedulerKind;
pub use scheduler::Scheduler;
pub use step::{Prediction, StepIndex, StepOutput};
