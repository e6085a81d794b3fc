//! One source of a recipe: an image or a mesh to re-texture, with its label, and where it was declared.

use std::path::PathBuf;

pub use texaug_stages::source::SourceKind;

/// The largest manifest file read (1 GiB, some ten million rows): a manifest is read whole, so a mistaken path
/// (a dataset archive, a device) fails with a message instead of filling memory.
pub const MAX_MANIFEST_BYTES: u64 = 1 << 30;

/// The columns a source manifest may have.
pub const COLUMNS: &[&str] = &[
    "id", "path", "label", "kind", "depth", "mask", "prompt", "split",
];

/// One source: an image or a mesh to re-texture.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub id: String,
    pub path: PathBuf,
    pub label: String,
    pub kind: SourceKind,
    pub depth: Option<PathBuf>,
    /// An inpainting mask for an image source (white = repaint), for style stages.
    pub mask: Option<PathBuf>,
    pub prompt: Option<String>,
    pub split: Option<String>,
    /// Where it was declared, for diagnostics: the manifest (or walked folder) and 1-based line (row).
    pub origin: PathBuf,
    pub line: usize,
}
