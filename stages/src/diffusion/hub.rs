//! The Hugging Face hub cache, read the way `huggingface_hub` lays it out:
//! `<cache>/models--<org>--<name>/refs/<revision>` holds a commit hash and `snapshots/<hash>/` the files.
//! texaug reads the cache; built with the `hub-download` feature it also fetches a missing pipeline's files
//! into that cache (unless `HF_HUB_OFFLINE=1`). Otherwise a missing model is an error with the command that
//! fetches it.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error(
        "model {repo:?} is not in the Hugging Face cache {cache}{detail}; download it with\n    \
         huggingface-cli download {repo}{rev_flag} --exclude '*.bin' '*.ckpt' '*.pt'\n\
         (set HF_HUB_CACHE or HF_HOME if your cache lives elsewhere, or give `path = ...` to a local folder)"
    )]
    NotCached {
        repo: String,
        cache: PathBuf,
        detail: String,
        rev_flag: String,
    },
    #[error("{repo:?} is not a Hugging Face repository id: write it as \"org/name\" (e.g. \"stabilityai/stable-diffusion-2-depth\")")]
    BadRepoId { repo: String },
    #[error(
        "downloading {repo:?} from the Hugging Face Hub failed at {file}: {reason}; check the network and the id, \
         or download it by hand with\n    huggingface-cli download {repo} --exclude '*.bin' '*.ckpt' '*.pt'"
    )]
    Download {
        repo: String,
        file: String,
        reason: String,
    },
    #[error(
        "the Hugging Face Hub refused {file} of {repo:?} (HTTP {status}): the repository is gated or private; accept \
         its terms on its page on huggingface.co, then set HF_TOKEN to a token with read access (or run \
         `huggingface-cli login`){}",
        if *token_given { " — the token given was refused" } else { "" }
    )]
    Gated {
        repo: String,
        file: String,
        status: u16,
        token_given: bool,
    },
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// `HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub` (as huggingface_hub resolves it).
pub fn cache_dir() -> PathBuf {
    cache_dir_from(|k| std::env::var_os(k))
}

fn cache_dir_from(env: impl Fn(&str) -> Option<std::ffi::OsString>) -> PathBuf {
    if let Some(p) = env("HF_HUB_CACHE").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    if let Some(p) = env("HF_HOME").filter(|p| !p.is_empty()) {
        return PathBuf::from(p).join("hub");
    }
    let home = env("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".cache").join("huggingface").join("hub")
}

/// Whether a string looks like `org/name` rather than a path.
pub fn is_repo_id(s: &str) -> bool {
    let parts: Vec<&str> = s.split('/').collect();
    parts.len() == 2
        && parts.iter().all(|p| {
            !p.is_empty()
                && *p != "."
                && *p != ".."
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        })
        && !Path::new(s).exists()
}

/// The snapshot folder of `repo` at `revision` (a branch/tag name under `refs/`, or a commit hash;
/// default `main`) in `cache`.
pub fn snapshot_dir(cache: &Path, repo: &str, revision: Option<&str>) -> Result<PathBuf, HubError> {
    if !repo.contains('/') {
        return Err(HubError::BadRepoId {
            repo: repo.to_owned(),
        });
    }
    let rev = revision.unwrap_or("main");
    let rev_flag = revision
        .map(|r| format!(" --revision {r}"))
        .unwrap_or_default();
    let not_cached = |detail: String| HubError::NotCached {
        repo: repo.to_owned(),
        cache: cache.to_path_buf(),
        detail,
        rev_flag: rev_flag.clone(),
    };
    let base = cache.join(format!("models--{}", repo.replace('/', "--")));
    if !base.is_dir() {
        return Err(not_cached(String::new()));
    }
    let ref_file = base.join("refs").join(rev);
    let commit = if ref_file.is_file() {
        std::fs::read_to_string(&ref_file)
            .map_err(|source| HubError::Io {
                path: ref_file.clone(),
                source,
            })?
            .trim()
            .to_owned()
    } else {
        rev.to_owned()
    };
    let snap = base.join("snapshots").join(&commit);
    if snap.is_dir() {
        Ok(snap)
    } else {
        Err(not_cached(format!(" (no snapshot for revision {rev:?})")))
    }
}

/// Files of a Stable Diffusion pipeline the snapshot lacks (relative paths), for a precise error.
pub fn missing_files(snapshot: &Path, components: &[&str]) -> Vec<String> {
    let mut missing = Vec::new();
    if !snapshot.join("model_index.json").is_file() {
        missing.push("model_index.json".to_owned());
    }
    for c in components {
        let (config, weights_stem) = match *c {
            "scheduler" => ("scheduler_config.json", None),
            "tokenizer" | "tokenizer_2" => ("tokenizer_config.json", None),
            "text_encoder" | "text_encoder_2" => ("config.json", Some("model")),
            _ => ("config.json", Some("diffusion_pytorch_model")),
        };
        if !snapshot.join(c).join(config).is_file() {
            missing.push(format!("{c}/{config}"));
        }
        if let Some(stem) = weights_stem {
            let dir = snapshot.join(c);
            let any = std::fs::read_dir(&dir)
                .map(|rd| {
                    rd.filter_map(Result::ok).any(|e| {
                        let n = e.file_name().to_string_lossy().into_owned();
                        n.starts_with(stem)
                            && (n.ends_with(".safetensors") || n.ends_with(".index.json"))
                    })
                })
                .unwrap_or(false);
            if !any {
                missing.push(format!("{c}/{stem}.safetensors"));
            }
        }
    }
    missing
}

/// Whether `HF_HUB_OFFLINE` asks for no network (as huggingface_hub reads it).
pub fn offline() -> bool {
    std::env::var("HF_HUB_OFFLINE")
        .map(|v| {
            matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "1" | "true" | "yes" | "on"
            )
        })
        .unwrap_or(false)
}

/// The files of a diffusers pipeline repository worth fetching: `model_index.json`, every component's
/// configs, tokenizer files, and its safetensors weights (plain files or shards; a variant only when no plain
/// weights exist). Pickles and other formats are skipped.
pub fn pipeline_files(listing: &[String], components: &[&str]) -> Vec<String> {
    let mut out = vec!["model_index.json".to_owned()];
    for c in components {
        let prefix = format!("{c}/");
        let files: Vec<&String> = listing
            .iter()
            .filter(|f| f.starts_with(&prefix) && !f[prefix.len()..].contains('/'))
            .collect();
        out.extend(
            files
                .iter()
                .filter(|f| f.ends_with(".json") || f.ends_with(".txt"))
                .filter(|f| !f.contains(".safetensors.index.") || is_plain(f))
                .map(|f| (*f).clone()),
        );
        let weights: Vec<&&String> = files
            .iter()
            .filter(|f| f.ends_with(".safetensors"))
            .collect();
        let plain: Vec<String> = weights
            .iter()
            .filter(|f| is_plain(f))
            .map(|f| (**f).clone())
            .collect();
        if plain.is_empty() {
            out.extend(weights.first().map(|f| (**f).clone()));
        } else {
            out.extend(plain);
        }
    }
    out
}

/// `model.safetensors`, `diffusion_pytorch_model-00001-of-00002.safetensors` or their index; not `*.fp16.*`.
fn is_plain(file: &str) -> bool {
    let name = file.rsplit('/').next().unwrap_or(file);
    let stem = name.split_once('.').map(|(s, _)| s).unwrap_or(name);
    let rest = &name[stem.len()..];
    matches!(rest, ".safetensors" | ".safetensors.index.json")
}

/// `HF_TOKEN` (or the older `HUGGING_FACE_HUB_TOKEN`), when set and not empty.
#[cfg(feature = "hub-download")]
fn env_token() -> Option<String> {
    ["HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"]
        .iter()
        .filter_map(|k| std::env::var(k).ok())
        .map(|t| t.trim().to_owned())
        .find(|t| !t.is_empty())
}

/// Fetches the pipeline files of `repo` into `cache` (the hub layout) and returns the snapshot folder.
#[cfg(feature = "hub-download")]
pub fn download(
    cache: &Path,
    repo: &str,
    revision: Option<&str>,
    components: &[&str],
) -> Result<PathBuf, HubError> {
    use hf_hub::api::sync::ApiBuilder;
    use hf_hub::{Repo, RepoType};
    let token = env_token();
    let token_given = token.is_some();
    let fail = |file: &str, e: &dyn std::fmt::Display| {
        let reason = e.to_string();
        match [401u16, 403]
            .into_iter()
            .find(|s| reason.contains(&format!("status code {s}")))
        {
            Some(status) => HubError::Gated {
                repo: repo.to_owned(),
                file: file.to_owned(),
                status,
                token_given,
            },
            None => HubError::Download {
                repo: repo.to_owned(),
                file: file.to_owned(),
                reason,
            },
        }
    };
    let mut builder = ApiBuilder::new()
        .with_cache_dir(cache.to_path_buf())
        .with_progress(false)
        // An interrupted transfer is tried again rather than failing the run.
        .with_retries(3);
    // As huggingface_hub reads them: a token in the environment wins over the saved one (gated repos), and
    // HF_ENDPOINT points at a mirror.
    if token.is_some() {
        builder = builder.with_token(token);
    }
    if let Some(endpoint) = std::env::var("HF_ENDPOINT").ok().filter(|e| !e.is_empty()) {
        builder = builder.with_endpoint(endpoint.trim_end_matches('/').to_owned());
    }
    let api = builder.build().map_err(|e| fail("(connecting)", &e))?;
    let r = Repo::with_revision(
        repo.to_owned(),
        RepoType::Model,
        revision.unwrap_or("main").to_owned(),
    );
    let api_repo = api.repo(r);
    let info = api_repo
        .info()
        .map_err(|e| fail("(listing the repository)", &e))?;
    let listing: Vec<String> = info.siblings.into_iter().map(|s| s.rfilename).collect();
    // SDXL's second text encoder (and a refiner's lack of the first) shows in the listing.
    let listed = |c: &str| listing.iter().any(|f| *f == format!("{c}/config.json"));
    let mut components: Vec<&str> = components.to_vec();
    if listed("text_encoder_2") {
        if !listed("text_encoder") {
            components.retain(|c| !matches!(*c, "text_encoder" | "tokenizer"));
        }
        components.extend(["text_encoder_2", "tokenizer_2"]);
    }
    if listing.iter().any(|f| f.starts_with("controlnet/")) {
        components.push("controlnet");
    }
    for file in pipeline_files(&listing, &components) {
        api_repo.get(&file).map_err(|e| fail(&file, &e))?;
    }
    snapshot_dir(cache, repo, revision)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    #[test]
    fn cache_dir_precedence() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| OsString::from(v))
            }
        };
        assert_eq!(
            cache_dir_from(env(&[("HF_HUB_CACHE", "/a"), ("HF_HOME", "/b")])),
            PathBuf::from("/a")
        );
        assert_eq!(
            cache_dir_from(env(&[("HF_HOME", "/b"), ("HOME", "/h")])),
            PathBuf::from("/b/hub")
        );
        assert_eq!(
            cache_dir_from(env(&[("HOME", "/h")])),
            PathBuf::from("/h/.cache/huggingface/hub")
        );
    }

    #[test]
    fn resolves_refs_main_to_the_snapshot() {
        let cache = tempfile::tempdir().unwrap();
        let base = cache.path().join("models--org--tiny");
        std::fs::create_dir_all(base.join("refs")).unwrap();
        std::fs::create_dir_all(base.join("snapshots/abc123/unet")).unwrap();
        std::fs::write(base.join("refs/main"), "abc123\n").unwrap();
        let snap = snapshot_dir(cache.path(), "org/tiny", None).unwrap();
        assert_eq!(snap, base.join("snapshots/abc123"));
        assert_eq!(
            snapshot_dir(cache.path(), "org/tiny", Some("abc123")).unwrap(),
            snap
        );
        std::fs::write(snap.join("unet/config.json"), "{}").unwrap();
        let missing = missing_files(&snap, &["unet", "vae"]);
        assert!(missing.contains(&"model_index.json".to_owned()));
        assert!(missing.contains(&"unet/diffusion_pytorch_model.safetensors".to_owned()));
        assert!(missing.contains(&"vae/config.json".to_owned()));
        assert!(!missing.contains(&"unet/config.json".to_owned()));
    }

    #[test]
    fn pipeline_files_prefer_plain_safetensors_and_skip_pickles() {
        let listing: Vec<String> = [
            "model_index.json",
            "README.md",
            "unet/config.json",
            "unet/diffusion_pytorch_model.bin",
            "unet/diffusion_pytorch_model.safetensors",
            "unet/diffusion_pytorch_model.fp16.safetensors",
            "vae/config.json",
            "vae/diffusion_pytorch_model.fp16.safetensors",
            "text_encoder/config.json",
            "text_encoder/model.safetensors.index.json",
            "text_encoder/model-00001-of-00002.safetensors",
            "text_encoder/model-00002-of-00002.safetensors",
            "tokenizer/vocab.json",
            "tokenizer/merges.txt",
            "safety_checker/model.safetensors",
        ]
        .map(String::from)
        .to_vec();
        let got = pipeline_files(&listing, &["unet", "vae", "text_encoder", "tokenizer"]);
        for want in [
            "model_index.json",
            "unet/config.json",
            "unet/diffusion_pytorch_model.safetensors",
            "vae/diffusion_pytorch_model.fp16.safetensors",
            "text_encoder/model.safetensors.index.json",
            "text_encoder/model-00002-of-00002.safetensors",
            "tokenizer/merges.txt",
        ] {
            assert!(
                got.contains(&want.to_owned()),
                "{want} missing from {got:?}"
            );
        }
        for unwanted in [
            "unet/diffusion_pytorch_model.bin",
            "unet/diffusion_pytorch_model.fp16.safetensors",
            "safety_checker/model.safetensors",
            "README.md",
        ] {
            assert!(!got.contains(&unwanted.to_owned()), "{unwanted} in {got:?}");
        }
    }

    /// This machine (and CI) cannot reach the Hub: the attempt must fail with a usable message, not hang or
    /// panic.
    #[cfg(feature = "hub-download")]
    #[test]
    fn failed_download_names_the_repo_and_the_manual_command() {
        let cache = tempfile::tempdir().unwrap();
        let err = download(cache.path(), "texaug-test/absent", None, &["unet"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("texaug-test/absent") && err.contains("huggingface-cli download"),
            "{err}"
        );
    }

    #[test]
    fn missing_repo_error_gives_the_download_command() {
        let cache = tempfile::tempdir().unwrap();
        let err = snapshot_dir(cache.path(), "org/absent", None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("huggingface-cli download org/absent"), "{err}");
        let err = snapshot_dir(cache.path(), "org/absent", Some("v2"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("--revision v2"), "{err}");
    }
}
