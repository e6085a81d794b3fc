//! Fuzz harnesses for everything texaug reads from a user or from the internet: glTF/GLB meshes, images, depth
//! images, source manifests (CSV, JSONL, Parquet), recipes and model files (safetensors headers).
//!
//! Each harness takes arbitrary bytes, writes them where texaug would find such a file, and runs texaug's own code
//! on them — the same functions `texaug run` and `texaug validate` call. A harness panics (a crash, for the fuzzer)
//! only when texaug broke a promise:
//!
//! - it panicked (any panic inside texaug's code propagates);
//! - an error does not name the file it is about;
//! - an accepted asset re-textured and written does not load back, or loads back with other base-color slots;
//! - a written asset holds the bytes of a file outside the asset's folder (every scratch folder has a secret
//!   beside it, and a symbolic link to the secret inside it, for a URI to try).
//!
//! The afl.rs binaries in `src/bin` call these in a loop; `tests/replay.rs` runs every input of `corpus/` and
//! `crashes/` through them in `make test`.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use image::{Rgba, RgbaImage};
use texaug_stages::depth::load_depth_image;
use texaug_stages::job::{
    prepare, AssetRef, DepthSettings, DepthStage, JobError, JobSettings, ModelSize, Retextured,
    Stage,
};
use texaug_stages::source::{MeshAsset, SourceKind};

/// The marker the secret outside every scratch folder holds; no written file may contain it.
const SECRET: &[u8] = b"texaug-fuzz: this file lies outside the asset folder";

/// A folder for one thread's inputs: `<tmp>/asset/` holds the input and companions a `.gltf` may name
/// (`buffer.bin`, `texture.png`, `escape.bin` → `../secret.bin`); `<tmp>/secret.bin` must never be read into an
/// output.
struct Scratch {
    _root: tempfile::TempDir,
    asset_dir: PathBuf,
}

impl Scratch {
    fn new() -> Scratch {
        let root = tempfile::Builder::new()
            .prefix("texaug-fuzz-")
            .tempdir()
            .expect("a scratch folder in the temp dir");
        let asset_dir = root.path().join("asset");
        std::fs::create_dir(&asset_dir).expect("scratch asset folder");
        std::fs::write(root.path().join("secret.bin"), SECRET.repeat(4)).expect("secret");
        #[cfg(unix)]
        std::os::unix::fs::symlink("../secret.bin", asset_dir.join("escape.bin"))
            .expect("symlink in scratch");
        std::fs::write(asset_dir.join("buffer.bin"), [0u8; 256]).expect("buffer.bin");
        let mut png = Vec::new();
        RgbaImage::from_pixel(4, 4, Rgba([200, 100, 50, 255]))
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .expect("encode texture.png");
        std::fs::write(asset_dir.join("texture.png"), png).expect("texture.png");
        Scratch {
            _root: root,
            asset_dir,
        }
    }

    /// Writes `data` as `name` in the asset folder (replacing the last input) and returns its path.
    fn input(&self, name: &str, data: &[u8]) -> PathBuf {
        let path = self.asset_dir.join(name);
        std::fs::write(&path, data).expect("write the fuzz input");
        path
    }

    /// A fresh, absent folder for a sample's output.
    fn out_dir(&self) -> PathBuf {
        let out = self.asset_dir.join("out");
        let _ = std::fs::remove_dir_all(&out);
        out
    }
}

thread_local! {
    static SCRATCH: RefCell<Option<Scratch>> = const { RefCell::new(None) };
}

fn with_scratch<R>(f: impl FnOnce(&Scratch) -> R) -> R {
    SCRATCH.with(|cell| {
        let mut cell = cell.borrow_mut();
        f(cell.get_or_insert_with(Scratch::new))
    })
}

/// A written file must not hold the secret (a URI escaped the asset's folder).
fn assert_no_secret(path: &Path) {
    let Ok(bytes) = std::fs::read(path) else {
        return;
    };
    assert!(
        !bytes.windows(SECRET.len()).any(|w| w == SECRET),
        "{} holds bytes of a file outside the asset's folder",
        path.display()
    );
}

fn assert_names(message: &str, path: &Path) {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    assert!(
        message.contains(name.as_ref()),
        "the error does not name {}: {message}",
        path.display()
    );
}

fn settings() -> JobSettings {
    JobSettings {
        prompt: "a mug carved from oak".into(),
        negative_prompt: String::new(),
        strength: 0.5,
        guidance: 7.5,
        steps: 2,
        seed: 1,
        scheduler: None,
        size: ModelSize::Sized {
            side: 32,
            fit: texaug_stages::job::Fit::Keep,
        },
        adapters: 0,
        xl: Default::default(),
        denoising_start: None,
    }
}

fn depth_stage() -> DepthStage<'static> {
    DepthStage {
        settings: DepthSettings {
            azimuths: 2,
            gutter: 1,
            ..DepthSettings::default()
        },
        estimator: None,
    }
}

/// Prepares the job, stands in for the model (each request's input image comes back as its output), completes it
/// and writes the sample. An error must name the asset; a written mesh must load back with the same slots.
fn run_job(asset: &AssetRef<'_>, stage: &Stage<'_>, out: &Path) {
    let job = match prepare(asset, stage, &settings()) {
        Ok(job) => job,
        Err(e) => return assert_job_error(&e, asset),
    };
    let outputs = job.requests.iter().map(|r| (*r.image).clone()).collect();
    let done = match job.complete(outputs) {
        Ok(done) => done,
        Err(e) => return assert_job_error(&e, asset),
    };
    if let Err(e) = done.write(out) {
        assert!(!out.exists(), "a failed write left {}: {e}", out.display());
        return assert_job_error(&e, asset);
    }
    if let Retextured::Mesh(mesh) = &done {
        let written = out.join("asset.glb");
        assert_no_secret(&written);
        let back = MeshAsset::load(&written).unwrap_or_else(|e| {
            panic!("texaug wrote a GLB it cannot read back: {e}");
        });
        assert_eq!(
            back.base_color_slots().len(),
            mesh.asset.base_color_slots().len(),
            "the written GLB has other base-color slots than its source"
        );
    }
}

fn assert_job_error(e: &JobError, asset: &AssetRef<'_>) {
    let text = e.to_string();
    let file_name = |p: &Path| {
        p.file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned()
    };
    let named = text.contains(asset.id)
        || text.contains(&file_name(asset.path))
        || asset.depth.is_some_and(|d| text.contains(&file_name(d)))
        || asset.mask.is_some_and(|m| text.contains(&file_name(m)));
    assert!(
        named,
        "the error names neither the asset nor its files: {text}"
    );
}

/// A glTF (JSON, with `buffer.bin`, `texture.png` and `escape.bin` beside it) or a GLB (bytes starting `glTF`):
/// loaded, its geometry expanded, and re-textured by the style and the depth stage up to the written GLB.
pub fn mesh(data: &[u8]) {
    with_scratch(|s| {
        let name = if data.starts_with(b"glTF") {
            "input.glb"
        } else {
            "input.gltf"
        };
        let path = s.input(name, data);
        let asset = AssetRef {
            id: "fuzz-mesh",
            path: &path,
            kind: SourceKind::Mesh,
            depth: None,
            mask: None,
        };
        run_job(&asset, &Stage::Style, &s.out_dir());
        run_job(&asset, &Stage::Depth(depth_stage()), &s.out_dir());
    })
}

/// An image source (PNG, JPEG or WebP by content) through the style stage, then as a valid image's mask.
pub fn image(data: &[u8]) {
    with_scratch(|s| {
        let path = s.input("input.img", data);
        let asset = AssetRef {
            id: "fuzz-image",
            path: &path,
            kind: SourceKind::Image,
            depth: None,
            mask: None,
        };
        run_job(&asset, &Stage::Style, &s.out_dir());
        // The same bytes as the inpainting mask of a valid image.
        let image = s.asset_dir.join("texture.png");
        let masked = AssetRef {
            path: &image,
            mask: Some(&path),
            ..asset
        };
        run_job(&masked, &Stage::Style, &s.out_dir());
    })
}

/// A depth image (8/16-bit PNG, float TIFF, …) read on its own, then beside a valid image in the depth stage.
pub fn depth_image(data: &[u8]) {
    with_scratch(|s| {
        let path = s.input("input.depth", data);
        if let Err(e) = load_depth_image(&path) {
            assert_names(&e.to_string(), &path);
        }
        let image = s.asset_dir.join("texture.png");
        let asset = AssetRef {
            id: "fuzz-depth",
            path: &image,
            kind: SourceKind::Image,
            depth: Some(&path),
            mask: None,
        };
        run_job(&asset, &Stage::Depth(depth_stage()), &s.out_dir());
    })
}

fn manifest(data: &[u8], name: &str) {
    with_scratch(|s| {
        let path = s.input(name, data);
        if let Err(problems) = texaug_pipeline::inputs::read_manifest(&path) {
            assert!(!problems.is_empty(), "a refused manifest without a reason");
            for p in &problems {
                assert_names(p, &path);
            }
        }
    })
}

/// A CSV source manifest, read and every row checked.
pub fn manifest_csv(data: &[u8]) {
    manifest(data, "manifest.csv")
}

/// A JSON-lines source manifest, read and every row checked.
pub fn manifest_jsonl(data: &[u8]) {
    manifest(data, "manifest.jsonl")
}

/// A Parquet source manifest, read and every row checked.
pub fn manifest_parquet(data: &[u8]) {
    manifest(data, "manifest.parquet")
}

/// A recipe, parsed and checked as `texaug validate` does.
pub fn recipe(data: &[u8]) {
    with_scratch(|s| {
        let path = s.input("recipe.toml", data);
        if let Err(problems) = texaug_pipeline::inputs::check_recipe(&path) {
            assert!(!problems.is_empty(), "a refused recipe without a reason");
            for p in &problems {
                assert_names(p, &path);
            }
        }
    })
}

/// The harness of a target, by name (the folder names under `corpus/` and `crashes/`).
pub fn harness(target: &str) -> Option<fn(&[u8])> {
    Some(match target {
        "mesh" => mesh,
        "image" => image,
        "depth_image" => depth_image,
        "manifest_csv" => manifest_csv,
        "manifest_jsonl" => manifest_jsonl,
        "manifest_parquet" => manifest_parquet,
        "recipe" => recipe,
        "checkpoint" => checkpoint,
        _ => return None,
    })
}

/// A model file (`[model] path`, `vae`, `model inspect`): its safetensors header read, its kind told, its tensors
/// read; every refusal names the file.
pub fn checkpoint(data: &[u8]) {
    use texaug_stages::diffusion::single_file::SingleFile;
    use texaug_stages::diffusion::weights::TensorIndex;
    with_scratch(|s| {
        let path = s.input("model.safetensors", data);
        match TensorIndex::open(std::slice::from_ref(&path)) {
            Ok(index) => {
                let names: Vec<String> = index.names().take(64).map(str::to_owned).collect();
                for name in names {
                    if let Err(e) = index.read(&name) {
                        assert_names(&e.to_string(), &path);
                    }
                }
            }
            Err(e) => assert_names(&e.to_string(), &path),
        }
        if let Err(e) = SingleFile::open(&path, None) {
            assert_names(&e.to_string(), &path);
        }
        // The same bytes as a LoRA (layers resolved against a small UNet-like name set) and as an embedding.
        let vars = |n: texaug_stages::diffusion::lora::Network| match n {
            texaug_stages::diffusion::lora::Network::Unet => vec![
                "down_blocks.0.attentions.0.proj_in.weight".to_owned(),
                "mid_block.attentions.0.proj_in.weight".to_owned(),
            ],
            texaug_stages::diffusion::lora::Network::TextEncoder
            | texaug_stages::diffusion::lora::Network::TextEncoder2 => {
                vec!["text_model.encoder.layers.0.self_attn.q_proj.weight".to_owned()]
            }
        };
        let spec = texaug_stages::diffusion::lora::LoraSpec {
            path: path.clone(),
            scale: 1.0,
        };
        if let Err(e) = texaug_stages::diffusion::lora::Lora::read(&spec, &vars, &|_| None) {
            assert_names(&e.to_string(), &path);
        }
        let emb = texaug_stages::diffusion::textual_inversion::EmbeddingSpec {
            path: path.clone(),
            token: Some("<fuzz>".into()),
        };
        if let Err(e) = texaug_stages::diffusion::textual_inversion::Embedding::read(&emb) {
            assert_names(&e.to_string(), &path);
        }
    })
}

/// Every target, in the order `make fuzz` runs them.
pub const TARGETS: &[&str] = &[
    "mesh",
    "image",
    "depth_image",
    "manifest_csv",
    "manifest_jsonl",
    "manifest_parquet",
    "recipe",
    "checkpoint",
];
