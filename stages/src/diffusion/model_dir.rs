//! Where a model lives: a local diffusers folder or a Hugging Face repository in the local hub cache.
//! Either way the result is a folder in the diffusers layout (`model_index.json`, `unet/`, `vae/`,
//! `text_encoder/`, `tokenizer/`, `scheduler/`, optionally `controlnet/`).

use std::path::{Path, PathBuf};

use super::hub::{self, HubError};

/// How a recipe names a model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelSource {
    /// A local folder in the diffusers layout.
    Dir(PathBuf),
    /// A single-file checkpoint (`.safetensors` in the original LDM layout).
    File(PathBuf),
    /// `org/name` in the Hugging Face cache, at a revision (default `main`).
    Hub {
        repo: String,
        revision: Option<String>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum ModelDirError {
    #[error("model folder {path} does not exist; check `[model] path` in the recipe")]
    NoDir { path: PathBuf },
    #[error(
        "{path} is not a diffusers model folder: missing {missing}; save the pipeline with diffusers' \
         `save_pretrained(dir, safe_serialization=True)` or point at the folder that has model_index.json"
    )]
    Incomplete { path: PathBuf, missing: String },
    #[error("model file {path} does not exist; check `[model] path` (or `vae`) in the recipe")]
    NoFile { path: PathBuf },
    #[error("`[model] ema = true`, but {path} holds no EMA weights (`model_ema.*`); remove `ema`")]
    NoEma { path: PathBuf },
    #[error(
        "`[model] config` names the file {path}; it takes a diffusers folder (with unet/config.json, vae/, \
         text_encoder/, tokenizer/, scheduler/) or a hub id in the local cache"
    )]
    ConfigIsFile { path: PathBuf },
    #[error(transparent)]
    Hub(#[from] HubError),
}

/// The Stable Diffusion components img2img needs.
pub const PIPELINE_COMPONENTS: [&str; 5] =
    ["unet", "vae", "text_encoder", "tokenizer", "scheduler"];

/// The components a pipeline needs, given which it `has`: SD's five; SDXL base adds `text_encoder_2` and
/// `tokenizer_2`; the SDXL refiner has those two instead of `text_encoder` and `tokenizer`.
pub fn pipeline_components(has: impl Fn(&str) -> bool) -> Vec<&'static str> {
    let mut out = PIPELINE_COMPONENTS.to_vec();
    if has("text_encoder_2") {
        if !has("text_encoder") {
            out.retain(|c| !matches!(*c, "text_encoder" | "tokenizer"));
        }
        out.extend(["text_encoder_2", "tokenizer_2"]);
    }
    out
}

/// [`pipeline_components`] of a folder: what its `model_index.json` names (a `[null, null]` entry is absent,
/// as diffusers writes an SDXL refiner's `text_encoder`); without one, SD's five.
pub fn folder_components(root: &Path) -> Vec<&'static str> {
    let index: Option<serde_json::Value> = std::fs::read(root.join("model_index.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    match index {
        Some(index) => pipeline_components(|c| {
            index
                .get(c)
                .and_then(|v| v.as_array())
                .is_some_and(|a| a.iter().any(|x| !x.is_null()))
        }),
        None => PIPELINE_COMPONENTS.to_vec(),
    }
}

impl ModelSource {
    /// A recipe's `path` is a folder; an `id` is `org/name[@revision]`.
    pub fn from_id(id: &str) -> Self {
        match id.split_once('@') {
            Some((repo, rev)) => Self::Hub {
                repo: repo.to_owned(),
                revision: Some(rev.to_owned()),
            },
            None => Self::Hub {
                repo: id.to_owned(),
                revision: None,
            },
        }
    }

    /// A string that is an existing path or not of the form `org/name` is a folder (a file, if it is one or
    /// ends in `.safetensors`); otherwise a hub id.
    pub fn parse(s: &str) -> Self {
        let path = Path::new(s);
        if path.exists() || !hub::is_repo_id(s.split('@').next().unwrap_or(s)) {
            Self::local(path)
        } else {
            Self::from_id(s)
        }
    }

    /// A local path: a single file (an existing file, or a name with a checkpoint extension) or a folder.
    pub fn local(path: &Path) -> Self {
        if super::single_file::is_single_file(path) {
            Self::File(path.to_path_buf())
        } else {
            Self::Dir(path.to_path_buf())
        }
    }

    /// What manifests record as `model_id`.
    pub fn id(&self) -> String {
        match self {
            Self::Dir(p) | Self::File(p) => p.display().to_string(),
            Self::Hub {
                repo,
                revision: None,
            } => repo.clone(),
            Self::Hub {
                repo,
                revision: Some(r),
            } => format!("{repo}@{r}"),
        }
    }

    /// The local folder, checked to hold the pipeline's components.
    pub fn resolve(&self) -> Result<ModelDir, ModelDirError> {
        self.resolve_in(&hub::cache_dir())
    }

    pub fn resolve_in(&self, hub_cache: &Path) -> Result<ModelDir, ModelDirError> {
        self.resolve_with(hub_cache, true)
    }

    /// As [`Self::resolve_in`] without downloading, whatever the build's features.
    pub fn resolve_cached_in(&self, hub_cache: &Path) -> Result<ModelDir, ModelDirError> {
        self.resolve_with(hub_cache, false)
    }

    fn resolve_with(&self, hub_cache: &Path, download: bool) -> Result<ModelDir, ModelDirError> {
        let root = match self {
            Self::File(p) => {
                return Err(ModelDirError::Incomplete {
                    path: p.clone(),
                    missing: "model_index.json (this is a single file: load it through `ModelRef`)"
                        .into(),
                })
            }
            Self::Dir(p) => {
                if !p.is_dir() {
                    return Err(ModelDirError::NoDir { path: p.clone() });
                }
                p.clone()
            }
            Self::Hub { repo, revision } => {
                let snap = match hub::snapshot_dir(hub_cache, repo, revision.as_deref()) {
                    Ok(s) if hub::missing_files(&s, &folder_components(&s)).is_empty() => s,
                    // `download` is checked before `fetch` is called: building its result and then
                    // discarding it would still have downloaded.
                    cached => match download.then(|| fetch(hub_cache, repo, revision.as_deref())) {
                        Some(Some(downloaded)) => downloaded?,
                        _ => cached?,
                    },
                };
                let missing = hub::missing_files(&snap, &folder_components(&snap));
                if !missing.is_empty() {
                    return Err(HubError::NotCached {
                        repo: repo.clone(),
                        cache: hub_cache.to_path_buf(),
                        detail: format!(" completely (missing {})", missing.join(", ")),
                        rev_flag: revision
                            .as_ref()
                            .map(|r| format!(" --revision {r}"))
                            .unwrap_or_default(),
                    }
                    .into());
                }
                snap
            }
        };
        let missing = hub::missing_files(&root, &folder_components(&root));
        if !missing.is_empty() {
            return Err(ModelDirError::Incomplete {
                path: root,
                missing: missing.join(", "),
            });
        }
        Ok(ModelDir {
            root,
            id: self.id(),
        })
    }
}

/// Downloads the pipeline when built with `hub-download` and not offline (`HF_HUB_OFFLINE=1`); `None` when
/// no download is attempted, so the caller reports what the cache lacks.
#[cfg(feature = "hub-download")]
fn fetch(cache: &Path, repo: &str, revision: Option<&str>) -> Option<Result<PathBuf, HubError>> {
    (!hub::offline()).then(|| hub::download(cache, repo, revision, &PIPELINE_COMPONENTS))
}

#[cfg(not(feature = "hub-download"))]
fn fetch(_cache: &Path, _repo: &str, _revision: Option<&str>) -> Option<Result<PathBuf, HubError>> {
    None
}

/// A resolved diffusers folder.
#[derive(Clone, Debug)]
pub struct ModelDir {
    pub root: PathBuf,
    pub id: String,
}

impl ModelDir {
    pub fn component(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    pub fn has(&self, name: &str) -> bool {
        self.root.join(name).join("config.json").is_file()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdxl_base_and_refiner_need_their_own_text_encoders() {
        assert_eq!(pipeline_components(|_| false), PIPELINE_COMPONENTS);
        let base = pipeline_components(|_| true);
        assert!(
            ["text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2"]
                .iter()
                .all(|c| base.contains(c))
        );
        let refiner = pipeline_components(|c| c == "text_encoder_2");
        assert!(refiner.contains(&"tokenizer_2") && !refiner.contains(&"text_encoder"));
        assert!(!refiner.contains(&"tokenizer") && refiner.contains(&"unet"));
    }

    #[test]
    fn parse_tells_paths_from_repo_ids() {
        assert_eq!(
            ModelSource::parse("stabilityai/stable-diffusion-2-depth"),
            ModelSource::Hub {
                repo: "stabilityai/stable-diffusion-2-depth".into(),
                revision: None
            }
        );
        assert_eq!(
            ModelSource::parse("models/sd/x"),
            ModelSource::Dir("models/sd/x".into())
        );
        assert_eq!(ModelSource::parse("./a"), ModelSource::Dir("./a".into()));
        assert_eq!(ModelSource::from_id("o/n@v1").id(), "o/n@v1");
    }

    #[test]
    fn incomplete_folder_names_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("model_index.json"), "{}").unwrap();
        let err = ModelSource::Dir(dir.path().into())
            .resolve_cached_in(dir.path())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unet/config.json") && err.contains("scheduler/scheduler_config.json"),
            "{err}"
        );
    }

    #[test]
    fn hub_id_resolves_through_a_fake_cache() {
        let cache = tempfile::tempdir().unwrap();
        let snap = cache.path().join("models--org--m/snapshots/c0ffee");
        std::fs::create_dir_all(cache.path().join("models--org--m/refs")).unwrap();
        std::fs::write(cache.path().join("models--org--m/refs/main"), "c0ffee").unwrap();
        std::fs::create_dir_all(&snap).unwrap();
        std::fs::write(snap.join("model_index.json"), "{}").unwrap();
        let err = ModelSource::from_id("org/m")
            .resolve_cached_in(cache.path())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("missing unet/config.json")
                && err.contains("huggingface-cli download org/m"),
            "{err}"
        );
        for (c, files) in [
            (
                "unet",
                ["config.json", "diffusion_pytorch_model.safetensors"],
            ),
            (
                "vae",
                ["config.json", "diffusion_pytorch_model.safetensors"],
            ),
            ("text_encoder", ["config.json", "model.safetensors"]),
            ("tokenizer", ["tokenizer_config.json", "vocab.json"]),
            ("scheduler", ["scheduler_config.json", "x"]),
        ] {
            std::fs::create_dir_all(snap.join(c)).unwrap();
            for f in files {
                std::fs::write(snap.join(c).join(f), "{}").unwrap();
            }
        }
        let dir = ModelSource::from_id("org/m")
            .resolve_cached_in(cache.path())
            .unwrap();
        assert_eq!(dir.root, snap);
        assert_eq!(dir.id, "org/m");
    }
}
