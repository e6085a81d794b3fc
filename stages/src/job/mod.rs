//! The work one job does, for one asset: what a Rust user calls to re-texture an image or a mesh with a loaded
//! model, and what the pipeline schedules in pieces (prepare on the CPU, the model on a device, complete and write
//! on the CPU).
//!
//! - [`settings`]: the asset and the job's img2img and depth settings.
//! - [`prepare`]: the asset loaded and turned into model requests ([`style`] or [`depth`]).
//! - [`frame`]: how an image meets the model's size (`fit`: keep its aspect, crop, pad or stretch) and comes back.
//! - [`condition`]: depth as the model takes it (depth map or ControlNet control image).
//! - [`memory`]: the bytes a prepared job holds, for the pipeline's queue bounds.
//! - [`retextured`]: the result in memory; [`write`]: the sample's files, atomically.
//! - [`run`]: [`retexture`], all of the above in one call.

pub mod condition;
pub mod consistency;
pub mod depth;
pub mod error;
pub mod fit;
pub mod frame;
pub mod mask;
pub mod memory;
pub mod prepare;
pub mod render;
pub mod request;
pub mod retextured;
pub mod run;
pub mod settings;
pub mod style;
pub mod sync_map;
pub mod write;

pub use condition::DepthMode;
pub use depth::DepthStage;
pub use error::JobError;
pub use fit::Fit;
pub use frame::Frame;
pub use prepare::{prepare, PreparedJob, Stage};
pub use render::{render_and_write, render_mesh, RenderedFrame, ViewFormat, WrittenView};
pub use retextured::{Retextured, RetexturedMesh};
pub use run::{retexture, run_requests};
pub use settings::{AssetRef, DepthSettings, DepthSource, JobSettings, ModelSize};
pub use write::WrittenSample;
