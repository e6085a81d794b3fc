//! The run's engine (DESIGN §1): prepare in rayon → bounded device queue → one worker thread per device (each owns
//! its model; tch modules are not `Sync`) → finish in rayon → one ledger writer (the calling thread).
//!
//! - [`work`]: the traits the engine drives (stage work, device model, loader, events).
//! - [`pool`]: the threads and queues; [`budget`]: the bound on the bytes of prepared jobs in flight.
//! - [`stage_work`]: the recipe's stages as stage work, through `texaug_stages::job`; [`render_work`]: the
//!   render stages' settings and background images; [`scoring`]: `[score]`, the CLIP score and filter.
//! - [`progress`]: bars and JSON events.

pub mod budget;
pub mod pool;
pub mod progress;
pub mod render_work;
pub mod scoring;
pub mod stage_work;
pub mod work;
