//! What one job asks for: the img2img settings every stage shares, and the depth stage's own.

use std::path::Path;

use crate::diffusion::request::XlConds;
use crate::diffusion::schedulers::SchedulerKind;
use crate::source::SourceKind;

use super::condition::DepthMode;
use super::fit::Fit;

/// The asset a job re-textures.
#[derive(Debug, Clone, Copy)]
pub struct AssetRef<'a> {
    /// Names the asset in errors (a manifest's `id`, or the file name).
    pub id: &'a str,
    pub path: &'a Path,
    pub kind: SourceKind,
    /// A depth image for an image asset (8/16-bit PNG or float TIFF, larger = nearer), for depth stages.
    pub depth: Option<&'a Path>,
    /// An inpainting mask for an image asset (white = repaint, at the image's size: it is resized with it), for
    /// style stages.
    pub mask: Option<&'a Path>,
}

/// The resolution the model runs at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelSize {
    /// An image or texture meets a model of long side `side` as `fit` says (see [`super::frame`]), and the result
    /// goes back to its own pixels; a mesh's views and UV-space passes run at `side × side` (a recipe's `size`).
    Sized { side: u32, fit: Fit },
    /// An image runs at its own size (its sides must be multiples of the VAE's factor), as diffusers runs it.
    /// Meshes need a square size for their views and textures.
    Native,
}

impl ModelSize {
    /// `side × side`, whatever the source's aspect.
    pub fn square(side: u32) -> Self {
        ModelSize::Sized {
            side,
            fit: Fit::Stretch,
        }
    }

    /// The long side, unless the source's own size is kept.
    pub fn side(self) -> Option<u32> {
        match self {
            ModelSize::Sized { side, .. } => Some(side),
            ModelSize::Native => None,
        }
    }

    /// The same side, fitted as a mesh's texture fits (see [`Fit::for_texture`]).
    pub fn for_texture(self) -> Self {
        match self {
            ModelSize::Sized { side, fit } => ModelSize::Sized {
                side,
                fit: fit.for_texture(),
            },
            ModelSize::Native => ModelSize::Native,
        }
    }
}

/// The img2img settings of one job (one sample).
#[derive(Debug, Clone)]
pub struct JobSettings {
    pub prompt: String,
    pub negative_prompt: String,
    pub strength: f64,
    pub guidance: f64,
    pub steps: u32,
    /// The job's seed; each further request of the job (a texture, a view) takes the next one.
    pub seed: u64,
    /// `None`: the scheduler the model was loaded with.
    pub scheduler: Option<SchedulerKind>,
    pub size: ModelSize,
    /// The LoRA set the job's requests run with ([`Img2ImgRequest::adapters`](crate::diffusion::request::Img2ImgRequest)).
    pub adapters: u32,
    /// SDXL's micro-conditioning (sizes, crop, aesthetic score); SD 1/2 ignore it.
    pub xl: XlConds,
    /// SDXL: start at this fraction of the schedule from the un-noised image latents (a refiner's
    /// `denoising_start`), instead of `strength`.
    pub denoising_start: Option<f64>,
}

/// Azimuths around a mesh (top and bottom views come on top).
pub const DEFAULT_AZIMUTHS: u32 = 8;
/// k of the (normal·view)^k weight when views are baked into the texture.
pub const DEFAULT_SHARPNESS: f64 = 4.0;
/// Texels of gutter dilated around the UV islands.
pub const DEFAULT_GUTTER: u32 = 4;
/// `controlnet_conditioning_scale` when a stage names none.
pub const DEFAULT_CONDITIONING_SCALE: f64 = 1.0;

/// The depth stage's settings beyond img2img.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DepthSettings {
    pub azimuths: u32,
    pub sharpness: f64,
    pub gutter: u32,
    pub mode: DepthMode,
    /// Denoise a mesh's views in step through its UV space (see [`crate::diffusion::view_sync`]).
    pub sync: bool,
}

impl Default for DepthSettings {
    fn default() -> Self {
        DepthSettings {
            azimuths: DEFAULT_AZIMUTHS,
            sharpness: DEFAULT_SHARPNESS,
            gutter: DEFAULT_GUTTER,
            mode: DepthMode::Unet,
            sync: true,
        }
    }
}

/// Where a sample's depth came from, as the manifest's `depth_source` column says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DepthSource {
    /// Rendered from the mesh.
    Mesh,
    /// The source's depth image.
    File,
    /// The recipe's depth estimator.
    Estimator,
}

impl DepthSource {
    pub fn as_str(self) -> &'static str {
        match self {
            DepthSource::Mesh => "mesh",
            DepthSource::File => "file",
            DepthSource::Estimator => "estimator",
        }
    }
}
