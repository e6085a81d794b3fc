//! Which model a run uses, and the hashes that make every sample traceable to its exact weights: every file the
//! run loads — the model folder (symlinks followed, so a Hugging Face cache snapshot, whose files are links into
//! `blobs/`, is hashed like a plain folder), the ControlNet folder of a depth stage and the `[depth] estimator`
//! file. Digests come from the [`HashCache`], so a resume does not read the weights again.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Serialize;
use texaug_stages::files::combined_digest;

use texaug_stages::diffusion::pipeline_source::{ConfigSet, PipelineSource, VaeSource, Weights};

use super::hash_cache::HashCache;

#[derive(Debug, Clone, Serialize)]
pub struct ModelFile {
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
}

/// A part of the model beyond its folder: the ControlNet folder or the depth estimator file.
#[derive(Debug, Clone, Serialize)]
pub struct ComponentInfo {
    /// The folder or file, as the recipe resolves it.
    pub path: PathBuf,
    /// [`combined_digest`] of this component's files (a lone file: its sha256).
    pub hash: String,
    /// Relative to `path` (a file: its name).
    pub files: Vec<ModelFile>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelInfo {
    /// The hub id (`org/name[@revision]`), or the model folder as the recipe resolves it.
    pub id: String,
    pub dir: PathBuf,
    /// [`combined_digest`] of every file the run loads: the folder's files labelled by their path in it, the
    /// ControlNet's as `controlnet/<path>` and the estimator as `estimator/<name>`. What manifests record as
    /// `model_hash`; without a ControlNet or estimator it is the folder's own digest.
    pub hash: String,
    /// The model folder's files.
    pub files: Vec<ModelFile>,
    #[serde(skip)]
    pub controlnet: Option<ComponentInfo>,
    #[serde(skip)]
    pub estimator: Option<ComponentInfo>,
    /// A single file's `[model] config` folder.
    #[serde(skip)]
    pub config: Option<ComponentInfo>,
    /// `[model] vae`.
    #[serde(skip)]
    pub vae: Option<ComponentInfo>,
    /// `[[model.lora]]`, then each stage's `loras`, in order.
    #[serde(skip)]
    pub loras: Vec<ComponentInfo>,
    /// `[[model.embedding]]`, in order.
    #[serde(skip)]
    pub embeddings: Vec<ComponentInfo>,
}

/// What a run loads besides the model folder.
#[derive(Debug, Clone, Copy, Default)]
pub struct Extras<'a> {
    /// A depth stage's `controlnet = "…"` folder.
    pub controlnet: Option<&'a Path>,
    /// `[depth] estimator`.
    pub estimator: Option<&'a Path>,
    /// A single file's `[model] config` folder (its configs and tokenizer).
    pub config: Option<&'a Path>,
    /// `[model] vae`: a folder or a file.
    pub vae: Option<&'a Path>,
    /// `[[model.lora]]` files, in order.
    pub loras: &'a [PathBuf],
    /// Each stage's `loras`: (the label they are hashed under, the file), in order.
    pub stage_loras: &'a [(String, PathBuf)],
    /// Other files the model loads (textual-inversion embeddings): (label, file).
    pub files: &'a [(String, PathBuf)],
}

fn slash_path(rel: &Path) -> String {
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// Every file under `dir` (symlinks to files and folders followed; hidden names skipped), relative, sorted. A
/// dangling link is an error: the model would fail to load, and its hash would silently leave the file out.
fn model_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let walk = walkdir::WalkDir::new(dir)
        .follow_links(true)
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'));
    for entry in walk {
        let entry = entry.with_context(|| {
            format!(
                "reading the model folder {} (a broken symlink? an incomplete download?)",
                dir.display()
            )
        })?;
        if entry.file_type().is_file() {
            if let Ok(rel) = entry.path().strip_prefix(dir) {
                out.push(rel.to_path_buf());
            }
        }
    }
    out.sort();
    Ok(out)
}

fn hash_files(cache: &mut HashCache, root: &Path, rels: &[PathBuf]) -> Result<Vec<ModelFile>> {
    rels.iter()
        .map(|rel| {
            let (bytes, sha256) = cache.digest(&root.join(rel))?;
            Ok(ModelFile {
                path: slash_path(rel),
                bytes,
                sha256,
            })
        })
        .collect()
}

fn folder_component(cache: &mut HashCache, dir: &Path, what: &str) -> Result<ComponentInfo> {
    if !dir.is_dir() {
        bail!("{what} folder {} does not exist", dir.display());
    }
    let files = hash_files(cache, dir, &model_files(dir)?)?;
    Ok(ComponentInfo {
        path: dir.to_path_buf(),
        hash: combined_digest(&labelled(&files, "")),
        files,
    })
}

/// One file, labelled by its name.
fn file_component(cache: &mut HashCache, path: &Path, what: &str) -> Result<ComponentInfo> {
    let (bytes, sha256) = cache
        .digest(path)
        .with_context(|| format!("hashing {what} {}", path.display()))?;
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    Ok(ComponentInfo {
        path: path.to_path_buf(),
        hash: sha256.clone(),
        files: vec![ModelFile {
            path: name,
            bytes,
            sha256,
        }],
    })
}

fn labelled(files: &[ModelFile], prefix: &str) -> Vec<(String, String)> {
    files
        .iter()
        .map(|f| (format!("{prefix}{}", f.path), f.sha256.clone()))
        .collect()
}

/// [`describe`] of a resolved model: its folder or single file, its `config` folder and replacement VAE, and
/// `extras`' ControlNet and estimator.
pub fn describe_source(src: &PipelineSource, extras: Extras<'_>) -> Result<ModelInfo> {
    let (path, config) = match (&src.weights, &src.configs) {
        (Weights::Folder(root), _) => (root.clone(), None),
        (Weights::SingleFile(f), ConfigSet::Folder(c)) => (f.path.clone(), Some(c.as_path())),
        (Weights::SingleFile(f), ConfigSet::Builtin { .. }) => (f.path.clone(), None),
    };
    let vae = src.vae.as_ref().map(|v| match v {
        VaeSource::Folder(p) | VaeSource::File(p) => p.as_path(),
    });
    let loras: Vec<PathBuf> = src.loras.iter().map(|l| l.path.clone()).collect();
    let mut embeddings: Vec<(String, PathBuf)> = src
        .embeddings
        .iter()
        .enumerate()
        .map(|(i, e)| (format!("embedding/{i}"), e.path.clone()))
        .collect();
    // Built-in configs build the tokenizer from CLIP's BPE file: it is loaded, so it is hashed.
    if let ConfigSet::Builtin { kind, checkpoint } = &src.configs {
        if let Ok(vocab) = texaug_stages::diffusion::single_file::clip_vocab(checkpoint, *kind) {
            embeddings.push(("tokenizer-vocab".into(), vocab));
        }
    }
    describe(
        &src.id,
        &path,
        Extras {
            config,
            vae,
            loras: &loras,
            files: &embeddings,
            ..extras
        },
    )
}

/// Hashes every file the run loads (see the module doc), through the cache in texaug's cache folder.
pub fn describe(id: &str, dir: &Path, extras: Extras<'_>) -> Result<ModelInfo> {
    let mut cache = HashCache::open_default();
    let info = describe_with(&mut cache, id, dir, extras);
    cache.save();
    info
}

/// [`describe`] with a given cache.
pub fn describe_with(
    cache: &mut HashCache,
    id: &str,
    dir: &Path,
    extras: Extras<'_>,
) -> Result<ModelInfo> {
    let files = if dir.is_file() {
        file_component(cache, dir, "model file")?.files
    } else if dir.is_dir() {
        hash_files(cache, dir, &model_files(dir)?)?
    } else {
        bail!(
            "model folder {} does not exist; set [model] path to a diffusers folder (model_index.json, unet/, vae/, \
             text_encoder/, tokenizer/, scheduler/) or a single-file .safetensors checkpoint, or make a tiny one \
             with `texaug model init-tiny`",
            dir.display()
        );
    };
    if files.is_empty() {
        bail!("model folder {} holds no files", dir.display());
    }
    // The model's own `controlnet/`, named again, is already among its files (and is what loads).
    let own = dir.join("controlnet").canonicalize().ok();
    let controlnet = match extras.controlnet {
        Some(c) if c.canonicalize().ok().is_some_and(|c| Some(c) == own) => None,
        Some(c) => Some(
            folder_component(cache, c, "ControlNet")
                .with_context(|| format!("hashing the ControlNet {}", c.display()))?,
        ),
        None => None,
    };
    let estimator = extras
        .estimator
        .map(|p| file_component(cache, p, "[depth] estimator"))
        .transpose()?;
    let config = extras
        .config
        .map(|c| folder_component(cache, c, "[model] config"))
        .transpose()?;
    let vae = match extras.vae {
        Some(v) if v.is_file() => Some(file_component(cache, v, "[model] vae")?),
        Some(v) => Some(folder_component(cache, v, "[model] vae")?),
        None => None,
    };
    let loras = extras
        .loras
        .iter()
        .map(|p| file_component(cache, p, "[[model.lora]]"))
        .collect::<Result<Vec<_>>>()?;
    let mut all = labelled(&files, "");
    for (part, label) in [(&config, "config/"), (&vae, "vae-override/")] {
        if let Some(c) = part {
            all.extend(labelled(&c.files, label));
        }
    }
    // Numbered: the order LoRAs merge in is part of what was loaded.
    for (i, l) in loras.iter().enumerate() {
        all.extend(labelled(&l.files, &format!("lora/{i}/")));
    }
    let mut stage_loras = Vec::new();
    for (label, path) in extras.stage_loras {
        let c = file_component(cache, path, "a stage's loras")?;
        all.extend(labelled(&c.files, &format!("{label}/")));
        stage_loras.push(c);
    }
    let mut others = Vec::new();
    for (label, path) in extras.files {
        let c = file_component(cache, path, label)?;
        all.extend(labelled(&c.files, &format!("{label}/")));
        others.push(c);
    }
    if let Some(c) = &controlnet {
        all.extend(labelled(&c.files, "controlnet/"));
    }
    if let Some(e) = &estimator {
        all.extend(labelled(&e.files, "estimator/"));
    }
    Ok(ModelInfo {
        id: id.to_string(),
        dir: dir.to_path_buf(),
        hash: combined_digest(&all),
        files,
        controlnet,
        estimator,
        config,
        vae,
        loras: loras.into_iter().chain(stage_loras).collect(),
        embeddings: others,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;
    use texaug_stages::files::sha256_hex;

    fn write(path: &Path, bytes: &[u8]) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    fn no_cache() -> HashCache {
        HashCache::open(None)
    }

    const FILES: [(&str, &[u8]); 3] = [
        ("model_index.json", b"{}"),
        ("unet/config.json", b"{\"a\":1}"),
        ("unet/diffusion_pytorch_model.safetensors", b"weights"),
    ];

    #[test]
    fn the_hash_follows_file_contents() {
        let dir = tempfile::tempdir().unwrap();
        write(&dir.path().join("unet/config.json"), b"{}");
        write(&dir.path().join(".hidden"), b"x");
        write(&dir.path().join(".cache/huggingface/x.lock"), b"x");
        let a = describe_with(&mut no_cache(), "m", dir.path(), Extras::default()).unwrap();
        assert_eq!(a.files.len(), 1);
        assert_eq!(a.files[0].path, "unet/config.json");
        write(&dir.path().join("unet/config.json"), b"{ }");
        let b = describe_with(&mut no_cache(), "m", dir.path(), Extras::default()).unwrap();
        assert_ne!(a.hash, b.hash);
    }

    /// A model as the Hugging Face cache holds it: `snapshots/<rev>/…` are relative symlinks into `blobs/`.
    #[test]
    fn a_hugging_face_cache_snapshot_hashes_like_the_plain_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let plain = tmp.path().join("plain");
        let repo = tmp.path().join("hub/models--org--tiny");
        let snap = repo.join("snapshots/c0ffee");
        for (rel, bytes) in FILES {
            write(&plain.join(rel), bytes);
            let sha = sha256_hex(bytes);
            write(&repo.join("blobs").join(&sha), bytes);
            let depth = Path::new(rel).components().count();
            let target = format!("{}blobs/{sha}", "../".repeat(depth + 1));
            std::fs::create_dir_all(snap.join(rel).parent().unwrap()).unwrap();
            symlink(target, snap.join(rel)).unwrap();
        }
        write(&repo.join("refs/main"), b"c0ffee");
        let a = describe_with(&mut no_cache(), "plain", &plain, Extras::default()).unwrap();
        let b = describe_with(&mut no_cache(), "org/tiny", &snap, Extras::default()).unwrap();
        let paths: Vec<&str> = b.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            FILES.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
            "every linked file is listed"
        );
        assert_eq!(a.hash, b.hash);
        assert_eq!(b.files[2].bytes, 7);
        // A dangling link is an error, not a file silently left out of the hash.
        std::fs::remove_file(repo.join("blobs").join(sha256_hex(b"weights"))).unwrap();
        let err = describe_with(&mut no_cache(), "org/tiny", &snap, Extras::default()).unwrap_err();
        assert!(format!("{err:#}").contains("broken symlink"), "{err:#}");
    }

    #[test]
    fn the_controlnet_and_the_estimator_are_part_of_the_model_hash() {
        let tmp = tempfile::tempdir().unwrap();
        let model = tmp.path().join("model");
        for (rel, bytes) in FILES {
            write(&model.join(rel), bytes);
        }
        let (cn_a, cn_b) = (tmp.path().join("cn-a"), tmp.path().join("cn-b"));
        write(&cn_a.join("config.json"), b"{}");
        write(&cn_a.join("diffusion_pytorch_model.safetensors"), b"cn-a");
        write(&cn_b.join("config.json"), b"{}");
        write(&cn_b.join("diffusion_pytorch_model.safetensors"), b"cn-b");
        let est = tmp.path().join("midas.pt");
        write(&est, b"torchscript");
        let hash = |controlnet: Option<&Path>, estimator: Option<&Path>| {
            describe_with(
                &mut no_cache(),
                "m",
                &model,
                Extras {
                    controlnet,
                    estimator,
                    ..Extras::default()
                },
            )
            .unwrap()
        };
        let plain = hash(None, None);
        let a = hash(Some(&cn_a), None);
        let b = hash(Some(&cn_b), None);
        let ae = hash(Some(&cn_a), Some(&est));
        let all = [&plain.hash, &a.hash, &b.hash, &ae.hash];
        for (i, x) in all.iter().enumerate() {
            for y in &all[i + 1..] {
                assert_ne!(x, y);
            }
        }
        let c = a.controlnet.as_ref().unwrap();
        assert_eq!(c.files.len(), 2);
        assert_eq!(
            a.files.len(),
            plain.files.len(),
            "the folder's own list is unchanged"
        );
        let e = ae.estimator.as_ref().unwrap();
        assert_eq!(
            (e.files[0].path.as_str(), e.hash.as_str()),
            ("midas.pt", sha256_hex(b"torchscript").as_str())
        );
        // The one formula, with component labels.
        let mut entries: Vec<(String, String)> = plain
            .files
            .iter()
            .map(|f| (f.path.clone(), f.sha256.clone()))
            .collect();
        entries.extend(
            c.files
                .iter()
                .map(|f| (format!("controlnet/{}", f.path), f.sha256.clone())),
        );
        assert_eq!(a.hash, combined_digest(&entries));
        // The model's own controlnet/ named again adds nothing.
        write(&model.join("controlnet/config.json"), b"{}");
        let own = hash(Some(&model.join("controlnet")), None);
        assert!(own.controlnet.is_none());
    }

    #[test]
    fn a_second_describe_reads_no_file_again() {
        let tmp = tempfile::tempdir().unwrap();
        let model = tmp.path().join("model");
        for (rel, bytes) in FILES {
            write(&model.join(rel), bytes);
        }
        let cache_file = tmp.path().join("cache/hashes.json");
        let mut cache = HashCache::open(Some(cache_file.clone()));
        let a = describe_with(&mut cache, "m", &model, Extras::default()).unwrap();
        assert_eq!(cache.hashed, 3);
        cache.save();
        let mut cache = HashCache::open(Some(cache_file));
        let b = describe_with(&mut cache, "m", &model, Extras::default()).unwrap();
        assert_eq!(cache.hashed, 0);
        assert_eq!(a.hash, b.hash);
    }
}
