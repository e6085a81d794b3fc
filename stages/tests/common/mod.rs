//! Helpers shared by the integration tests; each test crate uses a different subset.
#![allow(dead_code)]

pub mod fixtures;
pub mod gltf;
pub mod mesh;
pub mod networks;
pub mod parity;
pub mod single_file;
