//! What can go wrong in depth: bad mesh arrays, unreadable depth files, estimator failures.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DepthError {
    #[error("mesh arrays disagree: {what}; pass one normal and one uv per position (or none) and one slot per triangle")]
    BadMesh { what: String },
    #[error("triangle {triangle} uses vertex {vertex} but the mesh has {vertices} positions; fix the index buffer")]
    IndexOutOfRange {
        triangle: usize,
        vertex: u32,
        vertices: usize,
    },
    #[error("a depth map of {width}×{height} needs {expected} values, got {got}; pass one value per pixel, row by row")]
    BadDepthMap {
        width: u32,
        height: u32,
        expected: usize,
        got: usize,
    },
    #[error("cannot read depth image {path}: {cause}")]
    Read { path: PathBuf, cause: String },
    #[error("depth image {path} has an unsupported layout: {what}; use an 8/16-bit grayscale PNG or a 32-bit float TIFF")]
    Unsupported { path: PathBuf, what: String },
    #[error("depth image {path} {cause} (limit `{limit}`); downscale it, or raise the limit in SourceLimits")]
    OverLimit {
        path: PathBuf,
        cause: String,
        limit: &'static str,
    },
    #[error("depth estimator {path}: {cause}")]
    Estimator { path: PathBuf, cause: String },
}
