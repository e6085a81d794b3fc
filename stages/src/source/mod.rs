//! Sources: images and glTF 2.0 meshes in, re-textured assets out.
//!
//! - [`image_file`]: decode PNG/JPEG/WebP (format sniffed from the bytes), write PNGs atomically.
//! - [`kind`]: image or mesh, by extension.
//! - [`limits`]: [`SourceLimits`], what reading one source may cost (file sizes, pixels, accessor elements).
//! - [`mesh`]: a parsed glTF 2.0 asset, its base-color texture slots and its world-space triangles.
//! - [`mesh_writer`]: the same asset as a self-contained GLB with new base-color images.
//! - [`demo`]: small procedural demo assets (meshes and images) with their labels.

mod accessor;
pub mod demo;
mod demo_gltf;
mod error;
mod glb;
mod gltf_io;
pub mod image_file;
pub mod kind;
pub mod limits;
mod material;
pub mod mesh;
pub mod mesh_geometry;
pub mod mesh_writer;
mod uri;

pub use demo::{demo_manifest_csv, write_demo_sources, DemoSource};
pub use error::SourceError;
pub use image_file::{load_image, load_image_with, write_png_atomic};
pub use kind::{SourceKind, IMAGE_EXTS, MESH_EXTS};
pub use limits::SourceLimits;
pub use mesh::{BaseColorSlot, MeshAsset};
pub use mesh_geometry::{WorldTriangles, NO_SLOT};
pub use mesh_writer::write_retextured_glb;
