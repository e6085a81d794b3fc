//! Which model a run uses, and the hashes that make every sample traceable to its exact weights.

use anyhow::{bail, Context, Result};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize)]
pub struct ModelFile {
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelInfo {
    /// The hub id (`org/name[@revision]`), or the model folder as the recipe resolves it.
    pub id: String,
    pub dir: PathBuf,
    /// sha256 over the sorted `path sha256` lines of every file: one value that changes with any file.
    pub hash: String,
    pub files: Vec<ModelFile>,
}

/// Hashes every file of a model folder (hidden files skipped). Seconds for a full SD checkpoint; done once a run.
pub fn describe(id: &str, dir: &Path) -> Result<ModelInfo> {
    if !dir.is_dir() {
        bail!(
            "model folder {} does not exist; set [model] path to a diffusers folder (model_index.json, unet/, vae/, \
             text_encoder/, tokenizer/, scheduler/), or make a tiny one with `texaug model init-tiny`",
            dir.display()
        );
    }
    let mut files = Vec::new();
    for rel in crate::sinks::files_under(dir) {
        if rel
            .components()
            .any(|c| c.as_os_str().to_string_lossy().starts_with('.'))
        {
            continue;
        }
        let full = dir.join(&rel);
        let bytes = std::fs::metadata(&full)
            .with_context(|| format!("reading {}", full.display()))?
            .len();
        let sha256 = crate::sinks::sha256_file(&full)
            .with_context(|| format!("hashing {}", full.display()))?;
        let path = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        files.push(ModelFile {
            path,
            bytes,
            sha256,
        });
    }
    let mut h = Sha256::new();
    for f in &files {
        h.update(format!("{} {}\n", f.path, f.sha256).as_bytes());
    }
    Ok(ModelInfo {
        id: id.to_string(),
        dir: dir.to_path_buf(),
        hash: hex::encode(h.finalize()),
        files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_follows_file_contents() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("unet")).unwrap();
        std::fs::write(dir.path().join("unet/config.json"), b"{}").unwrap();
        std::fs::write(dir.path().join(".hidden"), b"x").unwrap();
        let a = describe("m", dir.path()).unwrap();
        assert_eq!(a.files.len(), 1);
        assert_eq!(a.files[0].path, "unet/config.json");
        std::fs::write(dir.path().join("unet/config.json"), b"{ }").unwrap();
        let b = describe("m", dir.path()).unwrap();
        assert_ne!(a.hash, b.hash);
    }
}
