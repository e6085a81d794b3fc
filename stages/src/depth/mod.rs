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
pub mod error;
pub mod estimator;
pub mod image_depth;
pub mod mesh_view;
pub mod raster;
pub mod views;

pub use camera::Camera;
pub use error::DepthError;
pub use estimator::{DepthEstimator, DepthNormalization};
pub use image_depth::{load_depth_image, load_depth_image_with, DepthMap};
pub use mesh_view::MeshView;
pub use raster::{rasterize, rasterize_with, RasterOptions, ViewRaster, NO_TRIANGLE};
pub use views::{view_schedule, view_schedule_with, View, ViewOptions};
