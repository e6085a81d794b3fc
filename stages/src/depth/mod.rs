//! Depth for the `depth` stage: a CPU rasterizer for meshes, and depth images for image sources.
//!
//! - [`camera`]: a perspective look-at camera and its pixel convention.
//! - [`views`]: the view schedule around a mesh (azimuth ring plus top and bottom), framed to its bounds.
//! - [`raster`]: the software rasterizer (depth, uv, normal·view, triangle id per pixel).
//! - [`image_depth`]: depth maps from 8/16-bit PNG or float TIFF files (larger = nearer).
//! - [`estimator`]: a TorchScript monocular depth estimator (MiDaS/DPT-like) for images without depth.
//!
//! Geometry comes in as a [`MeshView`]: world-space arrays borrowed from the caller, checked once.

pub mod camera;
pub mod estimator;
pub mod image_depth;
pub mod mesh_view;
pub mod raster;
pub mod views;

pub use camera::Camera;
pub use estimator::{DepthEstimator, DepthNormalization};
pub use image_depth::{load_depth_image, DepthMap};
pub use mesh_view::MeshView;
pub use raster::{rasterize, rasterize_with, RasterOptions, ViewRaster, NO_TRIANGLE};
pub use views::{view_schedule, view_schedule_with, View, ViewOptions};

use std::path::PathBuf;

/// What can go wrong in depth: bad mesh arrays, unreadable depth files, estimator failures.
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
    #[error("depth estimator {path}: {cause}")]
    Estimator { path: PathBuf, cause: String },
}
