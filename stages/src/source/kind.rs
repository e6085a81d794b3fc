//! Whether a source is an image or a mesh, told by its extension when a manifest does not say.

use std::path::Path;

use serde::{Deserialize, Serialize};

pub const IMAGE_EXTS: &[&str] = &["png", "jpg", "jpeg", "webp"];
pub const MESH_EXTS: &[&str] = &["glb", "gltf"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Image,
    Mesh,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Image => "image",
            SourceKind::Mesh => "mesh",
        }
    }

    pub fn from_extension(path: &Path) -> Option<SourceKind> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        if IMAGE_EXTS.contains(&ext.as_str()) {
            Some(SourceKind::Image)
        } else if MESH_EXTS.contains(&ext.as_str()) {
            Some(SourceKind::Mesh)
        } else {
            None
        }
    }
}
