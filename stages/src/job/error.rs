//! Why a job could not re-texture its asset; every message names the asset and says what to do.

use std::path::PathBuf;

use crate::depth::DepthError;
use crate::diffusion::error::DiffusionError;
use crate::source::SourceError;

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Depth(#[from] DepthError),
    #[error(transparent)]
    Diffusion(#[from] DiffusionError),
    #[error("{}: the mesh has no base-color texture slot to re-texture", path.display())]
    NoBaseColorSlot { path: PathBuf },
    #[error("{}: the default scene has no triangles to render; export the mesh with its geometry", path.display())]
    NoTriangles { path: PathBuf },
    #[error(
        "image source `{id}` ({}) has no depth: add a `depth` column to the manifest naming a depth image for it \
         (8/16-bit PNG or float TIFF, larger = nearer), or set [depth] estimator = \"midas.pt\" (a TorchScript \
         depth model) in the recipe",
        path.display()
    )]
    NoDepth { id: String, path: PathBuf },
    #[error(
        "{}: the mask is {width}x{height} but its image is {w0}x{h0}; give the mask at the image's size (white = \
         repaint, black = keep)",
        path.display()
    )]
    MaskSize {
        path: PathBuf,
        width: u32,
        height: u32,
        w0: u32,
        h0: u32,
    },
    #[error(
        "{}: the depth map is {width}×{height}, not the shape of its {w0}×{h0} image (depth must cover the image \
         pixel for pixel, at any resolution of the same aspect); save the depth at the image's aspect",
        path.display()
    )]
    DepthAspect {
        path: PathBuf,
        width: u32,
        height: u32,
        w0: u32,
        h0: u32,
    },
    #[error(
        "{}: meshes take no inpainting mask (the `mask` column is for image sources); leave it empty for this row",
        path.display()
    )]
    MaskOnMesh { path: PathBuf },
    #[error("{}: a mesh needs a square model size for its views and textures; pass a size such as 512", path.display())]
    MeshNeedsSize { path: PathBuf },
    #[error("the depth estimator failed earlier")]
    EstimatorPoisoned,
    #[error("cannot keep the views in step: {detail}; set `sync = false` on the depth stage to run them independently")]
    SyncMap { detail: String },
    #[error("the model returned {got} images for {expected} requests ({what})")]
    OutputCount {
        got: usize,
        expected: usize,
        what: String,
    },
    #[error("cannot create {}: {source}", path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}. Check that the folder is writable and the disk is not full", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
