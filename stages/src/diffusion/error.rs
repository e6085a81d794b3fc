//! The errors of loading and running a Stable Diffusion pipeline.

use std::path::PathBuf;

use super::config::ConfigError;
use super::lora::LoraError;
use super::model_dir::ModelDirError;
use super::schedulers::SchedulerError;
use super::single_file::CheckpointError;
use super::textual_inversion::EmbeddingError;
use super::tokenizer::TokenizerError;
use super::weights::WeightsError;

#[derive(Debug, thiserror::Error)]
pub enum DiffusionError {
    #[error(transparent)]
    Model(#[from] ModelDirError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Weights(#[from] WeightsError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Embedding(#[from] EmbeddingError),
    /// Boxed: a LoRA error names a layer and two shapes, and would make every result of the crate large.
    #[error(transparent)]
    Lora(Box<LoraError>),
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    #[error(transparent)]
    Scheduler(#[from] SchedulerError),
    #[error(
        "synchronised views: {detail}; a mesh's views run as one batch (set `sync = false` on the depth stage to \
         denoise them independently)"
    )]
    ViewSync { detail: String },
    #[error(
        "image {index} of the batch is {width}x{height}, but both sides must be multiples of {factor} (the VAE's \
         downscale factor); resize or crop it, e.g. to {}x{}",
        width / factor * factor, height / factor * factor
    )]
    Size {
        index: usize,
        width: u32,
        height: u32,
        factor: u32,
    },
    #[error("image {index} of the batch is {width}x{height}, the first is {w0}x{h0}; batch only equal sizes (see batch_key)")]
    MixedSizes {
        index: usize,
        width: u32,
        height: u32,
        w0: u32,
        h0: u32,
    },
    #[error("request {index} does not share the batch's {what}; group requests by batch_key before calling img2img")]
    MixedBatch { index: usize, what: &'static str },
    #[error("empty batch: img2img needs at least one request")]
    EmptyBatch,
    #[error(
        "strength {strength} with {steps} steps runs no denoising step (int(steps * strength) = 0); \
         raise strength or steps"
    )]
    NoSteps { strength: f64, steps: usize },
    #[error("strength must be in [0, 1], got {strength} (request {index})")]
    Strength { index: usize, strength: f64 },
    #[error(
        "the UNet in {path} takes {channels} input channels; texaug runs 4 (img2img), 5 (depth-conditioned, \
         latents + depth) or 9 (inpainting, latents + mask + masked image); use a Stable Diffusion 1.x/2.x, \
         2-depth or inpainting model"
    )]
    Channels { path: PathBuf, channels: i64 },
    #[error(
        "model {model} is depth-conditioned (5 UNet input channels) and needs one depth map per request \
         (got {given} for {requests} requests); use a depth stage, or a plain model for img2img"
    )]
    DepthNeeded {
        model: String,
        given: usize,
        requests: usize,
    },
    #[error("model {model} takes no depth map (4 UNet input channels); drop the depth or use a depth model")]
    DepthUnused { model: String },
    #[error(
        "model {model} has no ControlNet; put one in its controlnet/ folder or attach one with \
         StableDiffusion::attach_controlnet"
    )]
    NoControlNet { model: String },
    #[error("{path}: not a usable SDXL pipeline: {why}; use the model's own unet, text_encoder and text_encoder_2 folders")]
    XlShape { path: PathBuf, why: String },
    #[error("model {model} is SDXL, and texaug does not yet run {what} with SDXL; drop them from the recipe for this model")]
    XlUnsupported { model: String, what: &'static str },
    #[error(
        "control image {index} is {width}x{height} but the image is {w0}x{h0}; give control images at the \
         output size (got {given} for {requests} requests)"
    )]
    Control {
        index: usize,
        width: u32,
        height: u32,
        w0: u32,
        h0: u32,
        given: usize,
        requests: usize,
    },
    #[error(
        "model {model} is an inpainting model (9 UNet input channels) and needs a mask per request; give each \
         image a mask (the manifest's `mask` column, `texaug generate --mask`), or use a plain model"
    )]
    MaskNeeded { model: String },
    #[error("inpainting needs one mask per request, got {given} for {requests} requests")]
    MaskCount { given: usize, requests: usize },
    #[error(
        "model {model} cannot inpaint: {why}; inpaint with an inpainting model or a plain SD 1.x/2.x model"
    )]
    MaskUnsupported { model: String, why: &'static str },
    #[error(
        "mask {index} is {width}x{height} but its image is {w0}x{h0}; give masks at the image's size (white = \
         repaint)"
    )]
    MaskSize {
        index: usize,
        width: u32,
        height: u32,
        w0: u32,
        h0: u32,
    },
    #[error(
        "depth map {index} is {width}x{height} with {len} values (expected width × height); \
         give row-major values, one per pixel"
    )]
    DepthShape {
        index: usize,
        width: u32,
        height: u32,
        len: usize,
    },
    #[error("{what} failed in libtorch: {source}")]
    Torch {
        what: &'static str,
        #[source]
        source: tch::TchError,
    },
    #[error("cannot write {path}: {source}; check free space and permissions")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl From<LoraError> for DiffusionError {
    fn from(e: LoraError) -> Self {
        Self::Lora(Box::new(e))
    }
}

impl From<super::single_file::SingleFileError> for DiffusionError {
    fn from(e: super::single_file::SingleFileError) -> Self {
        match e {
            super::single_file::SingleFileError::Weights(w) => Self::Weights(w),
            super::single_file::SingleFileError::Checkpoint(c) => Self::Checkpoint(c),
        }
    }
}
