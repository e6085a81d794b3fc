//! Sources: images and glTF 2.0 meshes in, re-textured assets out.

pub mod demo;
pub mod image_file;
pub mod mesh;
pub mod mesh_writer;
