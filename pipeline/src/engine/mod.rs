//! The run's engine (DESIGN §1): prepare in rayon → bounded device queue → one worker thread per device (each owns
//! its model; tch modules are not `Sync`) → finish in rayon → one ledger writer (the calling thread).
//!
//! - [`units`]: the fixed batches, decided before the run.
//! - [`work`]: the traits the engine drives (stage work, device model, loader, events).
//! - [`pool`]: the threads and queues.
//! - [`stage_work`]: the recipe's stages as stage work, through `texaug_stages::job`.
//! - [`progress`]: bars and JSON events.

pub mod pool;
pub mod progress;
pub mod stage_work;
pub mod units;
pub mod work;
