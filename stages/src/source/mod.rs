//! Sources: images and glTF 2.0 meshes in, re-textured assets out.
//!
//! - [`image_file`]: decode PNG/JPEG/WebP (format sniffed from the bytes), write PNGs atomically.
//! - [`mesh`]: a parsed glTF 2.0 asset, its base-color texture slots and its world-space triangles.
//! - [`mesh_writer`]: the same asset as a self-contained GLB with new base-color images.
//! - [`demo`]: small procedural demo assets (meshes and images) with their labels.

pub mod demo;
mod demo_gltf;
mod error;
mod gltf_io;
pub mod image_file;
pub mod mesh;
mod mesh_geometry;
pub mod mesh_writer;

pub use demo::{demo_manifest_csv, write_demo_sources, DemoSource};
pub use error::SourceError;
pub use image_file::{load_image, write_png_atomic};
pub use mesh::{BaseColorSlot, MeshAsset, WorldTriangles};
pub use mesh_writer::write_retextured_glb;
