//! Single-file checkpoints: one `.safetensors` in the original Stable Diffusion (LDM/CompVis) layout, as
//! DreamBooth fine-tunes and civitai models are shared. The file's header tells its kind ([`kind`]); each diffusers
//! variable is read from its LDM key ([`unet_keys`], [`vae_keys`], [`text_keys`]) straight into the store, with
//! no converted copy written; the configs are the published ones ([`builtin`]) unless the recipe names a folder.

pub mod builtin;
pub mod export;
pub mod kind;
pub mod text_keys;
pub mod unet_keys;
pub mod vae_keys;

use std::path::{Path, PathBuf};

pub use kind::{CheckpointError, CheckpointKind, Detected, TextLayout};

use super::weights::{TensorIndex, WeightsError};

/// An opened single-file checkpoint: its tensor index and what it holds.
pub struct SingleFile {
    pub path: PathBuf,
    pub index: TensorIndex,
    pub detected: Detected,
}

#[derive(Debug, thiserror::Error)]
pub enum SingleFileError {
    #[error(transparent)]
    Weights(#[from] WeightsError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
}

impl SingleFile {
    /// Reads the header of `path` (no tensor) and tells its kind; `kind` is the recipe's, if it says one.
    pub fn open(path: &Path, kind: Option<CheckpointKind>) -> Result<Self, SingleFileError> {
        if super::weights::is_pickle(path) {
            return Err(WeightsError::Pickle { path: path.into() }.into());
        }
        let index = TensorIndex::open(&[path.to_path_buf()])?;
        let detected = kind::detect(path, &index, kind)?;
        Ok(Self {
            path: path.to_path_buf(),
            index,
            detected,
        })
    }
}

/// Whether a recipe's `path` names a single file rather than a folder.
pub fn is_single_file(path: &Path) -> bool {
    path.is_file()
        || path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "safetensors" | "ckpt" | "pt" | "pth" | "bin"))
}

/// CLIP's BPE vocabulary for the built-in tokenizer: `TEXAUG_CLIP_VOCAB`, else the bundle's copy beside the
/// executable (`../share/texaug/`), else texaug's cache. The error lists where it looked.
pub fn find_clip_vocab() -> Result<PathBuf, String> {
    const NAME: &str = "bpe_simple_vocab_16e6.txt.gz";
    let mut candidates = Vec::new();
    if let Some(p) = std::env::var_os("TEXAUG_CLIP_VOCAB") {
        candidates.push((PathBuf::from(p), "TEXAUG_CLIP_VOCAB="));
    }
    if let Some(bin) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        candidates.push((bin.join("../share/texaug").join(NAME), ""));
    }
    let cache = std::env::var_os("TEXAUG_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/texaug")));
    if let Some(c) = cache {
        candidates.push((c.join("clip").join(NAME), ""));
    }
    let mut tried = Vec::new();
    for (p, label) in candidates {
        if p.is_file() {
            return Ok(p);
        }
        tried.push(format!("{label}{}", p.display()));
    }
    Err(tried.join(", "))
}

/// [`find_clip_vocab`] for a checkpoint that needs it.
pub fn clip_vocab(path: &Path, kind: CheckpointKind) -> Result<PathBuf, CheckpointError> {
    find_clip_vocab().map_err(|tried| CheckpointError::NoVocab {
        path: path.into(),
        kind,
        tried,
    })
}
