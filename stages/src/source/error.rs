//! The one error type of the source stage: every variant names the file, the cause and a fix.

use std::path::{Path, PathBuf};

/// The folder of an asset, the only place its external files are read from, for messages.
fn asset_folder(path: &Path) -> String {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.display().to_string(),
        _ => ".".to_string(),
    }
}

/// Why a source could not be read or a re-textured asset could not be written.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read {path}: {source}. Check that the file exists and is readable")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}. Check that the folder exists, is writable and the disk is not full")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a readable image ({cause}). Use a PNG, JPEG or WebP file; re-export it if it is corrupt")]
    BadImage { path: PathBuf, cause: String },
    #[error("cannot encode a PNG for {path}: {cause}")]
    Encode { path: PathBuf, cause: String },
    #[error("{path} is a truncated or malformed GLB: {cause}. Re-export the asset; the file may have been cut off while copying")]
    TruncatedGlb { path: PathBuf, cause: String },
    #[error("{path} is not valid glTF 2.0: {cause}. Check it with the Khronos glTF-Validator and re-export it")]
    BadGltf { path: PathBuf, cause: String },
    #[error("{path}: {what} refers to \"{uri}\", resolved to {resolved}, which cannot be read ({cause}). Place the file next to the .gltf or export a self-contained .glb")]
    MissingExternal {
        path: PathBuf,
        what: String,
        uri: String,
        resolved: PathBuf,
        cause: String,
    },
    #[error("{path}: {what} names {uri:?}, which {reason}; texaug refused it without reading or fetching anything. texaug reads only regular files inside the asset's folder ({folder}), named by relative paths, and data: URIs: copy the file next to the .gltf, or export a self-contained .glb", folder = asset_folder(.path))]
    RefusedUri {
        path: PathBuf,
        what: String,
        /// The URI as the asset wrote it (shortened when very long).
        uri: String,
        reason: String,
    },
    #[error("{path} is {kind}, not a regular file; texaug reads sources only from regular files (never FIFOs, devices, sockets or folders). Point the manifest at the file itself")]
    NotAFile { path: PathBuf, kind: String },
    #[error("{path}: {what} {cause}. texaug refuses it before allocating so one asset cannot exhaust the machine's memory: shrink or re-export the asset, or raise SourceLimits::{limit} (MeshAsset::load_with, load_image_with) if the machine can afford it")]
    OverLimit {
        path: PathBuf,
        what: String,
        cause: String,
        /// The [`SourceLimits`](super::limits::SourceLimits) field that was exceeded.
        limit: &'static str,
    },
    #[error("{path}: {what} cannot be decoded ({cause}). Use PNG, JPEG or WebP textures")]
    UnsupportedTexture {
        path: PathBuf,
        what: String,
        cause: String,
    },
    #[error("{path}: mesh {mesh} primitive {primitive} has no UVs: its material's base color uses TEXCOORD_{set}, which the primitive lacks. Re-texturing needs UVs: unwrap the mesh (e.g. Blender's Smart UV Project) and re-export")]
    MissingUvs {
        path: PathBuf,
        mesh: String,
        primitive: usize,
        set: u32,
    },
    #[error("{path}: mesh {mesh} primitive {primitive} draws {mode}, not triangles. Only triangle meshes can be re-textured: remove point/line primitives or convert them to faces")]
    NonTriangle {
        path: PathBuf,
        mesh: String,
        primitive: usize,
        mode: String,
    },
    #[error("{path} uses what texaug cannot read: {cause}")]
    Unsupported { path: PathBuf, cause: String },
    #[error("{path} has nothing to re-texture: {cause}")]
    NothingToRetexture { path: PathBuf, cause: String },
    #[error("{path}: new texture for slot {slot}: {cause}")]
    BadSlot {
        path: PathBuf,
        slot: usize,
        cause: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Errors travel inside `Result`s of every job; clippy's `result_large_err` draws the line at 128 bytes.
    #[test]
    fn the_error_stays_small() {
        assert!(std::mem::size_of::<SourceError>() <= 120);
    }
}
