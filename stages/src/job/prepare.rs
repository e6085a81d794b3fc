//! A job made ready for the model: its requests, and what completing it needs once the model has run them.

use image::RgbImage;

use crate::diffusion::request::Img2ImgRequest;

use super::depth::{self, DepthStage, DepthState};
use super::error::JobError;
use super::memory;
use super::retextured::Retextured;
use super::settings::{AssetRef, JobSettings};
use super::style::{self, StyleState};

/// Which stage a job runs.
#[derive(Clone, Copy)]
pub enum Stage<'a> {
    /// img2img on the image, or on every base-color texture of a mesh.
    Style,
    /// Depth-conditioned; multi-view for meshes.
    Depth(DepthStage<'a>),
}

enum State {
    Style(StyleState),
    Depth(DepthState),
}

/// A prepared job. Run [`PreparedJob::requests`] through the model (requests with equal
/// [`batch_key`](crate::diffusion::request::batch_key)s may share a batch), then [`PreparedJob::complete`] with
/// the images in request order.
pub struct PreparedJob {
    pub requests: Vec<Img2ImgRequest>,
    /// The requests run together, apart from other jobs, one batch per batch key (the views of a mesh share their
    /// settings and are made as one).
    pub one_batch: bool,
    state: State,
}

/// Loads the asset and builds its requests (CPU work: decoding, rasterizing views, depth).
pub fn prepare(
    asset: &AssetRef<'_>,
    stage: &Stage<'_>,
    settings: &JobSettings,
) -> Result<PreparedJob, JobError> {
    Ok(match stage {
        Stage::Style => {
            let (requests, state) = style::prepare(asset, settings)?;
            PreparedJob {
                requests,
                one_batch: false,
                state: State::Style(state),
            }
        }
        Stage::Depth(depth_stage) => {
            let (requests, state) = depth::prepare(asset, depth_stage, settings)?;
            PreparedJob {
                one_batch: matches!(state, DepthState::Mesh(_)),
                requests,
                state: State::Depth(state),
            }
        }
    })
}

impl PreparedJob {
    /// The memory the job holds until it completes: its requests' pixels and conditions and what completing
    /// needs (sources, rasters, mesh buffers). The pipeline bounds its queues by this.
    pub fn memory_bytes(&self) -> u64 {
        memory::request_bytes(&self.requests)
            + match &self.state {
                State::Style(s) => s.memory_bytes(),
                State::Depth(s) => s.memory_bytes(),
            }
    }

    /// Turns the model's outputs (one per request, in order) into the re-textured asset: resized back to the
    /// source's size, or baked into the mesh's textures (CPU work, no files written).
    pub fn complete(self, outputs: Vec<RgbImage>) -> Result<Retextured, JobError> {
        match self.state {
            State::Style(s) => style::complete(s, outputs),
            State::Depth(s) => depth::complete(s, outputs),
        }
    }
}
