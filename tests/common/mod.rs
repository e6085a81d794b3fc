//! Shared fixtures of the end-to-end tests: the `texaug` binary, a tiny model, source files (good and bad), and
//! recipes written into temp folders.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

pub fn texaug() -> Command {
    Command::new(env!("CARGO_BIN_EXE_texaug"))
}

/// Runs texaug and returns its output; panics with both streams when it cannot start.
pub fn run(args: &[&str]) -> Output {
    texaug()
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot start texaug {args:?}: {e}"))
}

/// `texaug run RECIPE --progress none --output OUT` with `extra` arguments, whatever its outcome.
pub fn try_run_recipe(recipe: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "run",
        recipe.to_str().unwrap(),
        "--progress",
        "none",
        "--output",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run(&args)
}

/// [`try_run_recipe`], panicking with both streams unless it succeeds; returns them.
pub fn run_recipe(recipe: &Path, out: &Path, extra: &[&str]) -> String {
    let o = try_run_recipe(recipe, out, extra);
    assert!(
        o.status.success(),
        "texaug run {} {extra:?}\n{}",
        recipe.display(),
        text(&o)
    );
    text(&o)
}

/// A style stage on the tiny model (one wood variant, two steps) and a render of its meshes (3 views of 48²,
/// elevation 10–40°) with `render_keys` added: the stages of the render, export and report tests.
pub fn style_then_render(render_keys: &str) -> String {
    format!(
        r#"[[stage]]
kind = "style"
prompts = ["a {{label}} made of wood"]
strength = 0.7
steps = 2
variants = 1
size = 64

[[stage]]
kind = "render"
after = "style"
views = 3
size = 48
elevation = [10, 40]
{render_keys}
"#
    )
}

pub fn text(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The CLIP vocabulary the tiny model's tokenizer is built from (the Makefile exports TEXAUG_CLIP_VOCAB).
pub fn vocab() -> PathBuf {
    let v = std::env::var_os("TEXAUG_CLIP_VOCAB").unwrap_or_else(|| {
        panic!(
            "TEXAUG_CLIP_VOCAB is not set: point it at bpe_simple_vocab_16e6.txt.gz (the Makefile does; \
             `make test` sets it up)"
        )
    });
    let v = PathBuf::from(v);
    assert!(
        v.is_file(),
        "TEXAUG_CLIP_VOCAB={} is not a file",
        v.display()
    );
    v
}

/// A tiny SD 1.x model, made once per test binary.
pub fn tiny_model() -> &'static Path {
    static MODEL: OnceLock<PathBuf> = OnceLock::new();
    MODEL.get_or_init(|| {
        // Made afresh by each test binary (the generator may have changed) in a folder of its own under target/,
        // replaced on the next run rather than piling up.
        let exe = std::env::current_exe().expect("test binary path");
        // `e2e_run-<hash>` → `e2e_run`, so a rebuilt binary reuses its folder.
        let stem = exe
            .file_stem()
            .map(|s| {
                s.to_string_lossy()
                    .split('-')
                    .next()
                    .unwrap_or("e2e")
                    .to_string()
            })
            .unwrap_or_default();
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("tiny-sd1-{stem}"));
        if out.exists() {
            std::fs::remove_dir_all(&out).expect("removing the previous tiny model");
        }
        let vocab = vocab();
        let o = run(&[
            "model",
            "init-tiny",
            "--kind",
            "sd1",
            "--out",
            out.to_str().unwrap(),
            "--vocab",
            vocab.to_str().unwrap(),
            "--seed",
            "0",
        ]);
        assert!(o.status.success(), "init-tiny failed\n{}", text(&o));
        out
    })
}

/// A deterministic RGBA test image (gradients, so resizing and the model have something to work on).
pub fn write_png(path: &Path, w: u32, h: u32, tint: u8) {
    let img = image::RgbaImage::from_fn(w, h, |x, y| {
        image::Rgba([(x * 255 / w) as u8, (y * 255 / h) as u8, tint, 255])
    });
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    img.save(path).unwrap();
}

/// A minimal glTF (one triangle) whose base color is `texture_uri`; with `uvs` false the primitive has no
/// TEXCOORD_0, which a textured material needs.
pub fn write_gltf(path: &Path, texture_uri: &str, uvs: bool) {
    // Positions (3 × vec3 f32) then UVs (3 × vec2 f32), as one little-endian buffer.
    let mut bytes = Vec::new();
    for v in [0f32, 0., 0., 1., 0., 0., 0., 1., 0.] {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    for v in [0f32, 0., 1., 0., 0., 1.] {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let bin = path.with_extension("bin");
    std::fs::write(&bin, &bytes).unwrap();
    let bin_name = bin.file_name().unwrap().to_str().unwrap();
    let attributes = if uvs {
        r#"{"POSITION": 0, "TEXCOORD_0": 1}"#
    } else {
        r#"{"POSITION": 0}"#
    };
    let json = format!(
        r#"{{
  "asset": {{"version": "2.0"}},
  "scene": 0, "scenes": [{{"nodes": [0]}}], "nodes": [{{"mesh": 0}}],
  "meshes": [{{"primitives": [{{"attributes": {attributes}, "material": 0}}]}}],
  "materials": [{{"pbrMetallicRoughness": {{"baseColorTexture": {{"index": 0}}}}}}],
  "textures": [{{"source": 0}}],
  "images": [{{"uri": "{texture_uri}"}}],
  "buffers": [{{"uri": "{bin_name}", "byteLength": {len}}}],
  "bufferViews": [
    {{"buffer": 0, "byteOffset": 0, "byteLength": 36}},
    {{"buffer": 0, "byteOffset": 36, "byteLength": 24}}
  ],
  "accessors": [
    {{"bufferView": 0, "componentType": 5126, "count": 3, "type": "VEC3", "min": [0,0,0], "max": [1,1,0]}},
    {{"bufferView": 1, "componentType": 5126, "count": 3, "type": "VEC2"}}
  ]
}}"#,
        len = bytes.len()
    );
    std::fs::write(path, json).unwrap();
}

/// Sources: `n` good images (plus a good mesh when `mesh`), and a manifest for them; returns the manifest path.
pub fn write_sources(dir: &Path, n: usize, mesh: bool) -> PathBuf {
    let mut rows = vec!["id,path,label,split".to_string()];
    for i in 0..n {
        let rel = format!("img/{}/s{i}.png", if i % 2 == 0 { "mug" } else { "cup" });
        write_png(&dir.join(&rel), 40 + 8 * i as u32, 32, (i * 40) as u8);
        let label = if i % 2 == 0 { "mug" } else { "cup" };
        rows.push(format!("img{i},{rel},{label},train"));
    }
    if mesh {
        write_png(&dir.join("mesh/tex.png"), 32, 32, 200);
        write_gltf(&dir.join("mesh/tri.gltf"), "tex.png", true);
        rows.push("tri,mesh/tri.gltf,triangle,val".into());
    }
    let manifest = dir.join("sources.csv");
    std::fs::write(&manifest, rows.join("\n") + "\n").unwrap();
    manifest
}

/// The head every test recipe starts with: its name, seed and output folder, the manifest, the model with DDIM, the
/// CPU and (when given) a batch size. The `[[stage]]` tables follow it.
pub fn recipe_head(
    name: &str,
    seed: u64,
    output: &str,
    manifest: &Path,
    model: &Path,
    batch: Option<usize>,
) -> String {
    let batch = batch.map(|b| format!("batch = {b}\n")).unwrap_or_default();
    format!(
        r#"name = "{name}"
seed = {seed}
output = "{output}"

[sources]
manifest = "{manifest}"

[model]
path = "{model}"
scheduler = "ddim"

[devices]
use = "cpu"
{batch}
"#,
        manifest = manifest.display(),
        model = model.display(),
    )
}

/// A recipe on the tiny model: 64×64, two steps, `variants` per source.
pub fn write_recipe(dir: &Path, manifest: &Path, variants: u32, batch: usize) -> PathBuf {
    let text = recipe_head("e2e", 11, "out", manifest, tiny_model(), Some(batch))
        + &format!(
            r#"[[stage]]
kind = "style"
prompts = ["a {{label}} made of wood", "a shiny {{label}}"]
strength = [0.5, 0.9]
steps = 2
guidance = 3.0
variants = {variants}
size = 64
"#
        );
    let path = dir.join("recipe.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The manifest rows of an output folder as (sample_id → every column but the timing ones), via polars.
pub fn manifest_rows(part: &Path) -> std::collections::BTreeMap<String, Vec<String>> {
    use polars::prelude::*;
    let df = ParquetReader::new(std::fs::File::open(part).unwrap())
        .finish()
        .unwrap();
    let keep: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|s| s.to_string())
        .filter(|n| n != "duration_ms" && n != "queue_ms" && n != "device")
        .collect();
    let mut out = std::collections::BTreeMap::new();
    for i in 0..df.height() {
        let row: Vec<String> = keep
            .iter()
            .map(|c| format!("{}", df.column(c).unwrap().get(i).unwrap()))
            .collect();
        let id = df
            .column("sample_id")
            .unwrap()
            .str()
            .unwrap()
            .get(i)
            .unwrap()
            .to_string();
        out.insert(id, row);
    }
    out
}

/// A sample's folder in an output: `samples/<first two characters of the id>/<id>` (`output/layout.rs`).
pub fn sample_dir(out: &Path, id: &str) -> PathBuf {
    out.join("samples").join(&id[..2]).join(id)
}

/// The ids of the sample folders an output holds (the folders under its `samples/<prefix>/`; a prefix folder left
/// empty when its only sample was removed holds none).
pub fn sample_folders(out: &Path) -> std::collections::BTreeSet<String> {
    let list = |dir: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(dir)
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    };
    list(&out.join("samples"))
        .iter()
        .flat_map(|prefix| list(prefix))
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

/// How many sample folders an output holds.
pub fn sample_dir_count(out: &Path) -> usize {
    sample_folders(out).len()
}

/// Every file under `dir`, relative, with its bytes.
pub fn tree(dir: &Path) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            (
                e.path().strip_prefix(dir).unwrap().to_path_buf(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

/// (sample_id, source_id) of every planned job, in plan order (batch by batch, the order a run takes them).
pub fn planned(recipe: &Path) -> Vec<(String, String)> {
    let o = run(&["plan", recipe.to_str().unwrap(), "--format", "jsonl"]);
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let s = |k: &str| v[k].as_str().unwrap().to_string();
            (s("sample_id"), s("source_id"))
        })
        .collect()
}

/// (sample_id, batch index in the full plan) of the jobs `texaug plan --format jsonl` prints, batch by batch.
pub fn planned_units(recipe: &Path, shard: Option<&str>) -> Vec<(String, u64)> {
    let mut args = vec!["plan", recipe.to_str().unwrap(), "--format", "jsonl"];
    if let Some(s) = shard {
        args.extend(["--shard", s]);
    }
    let o = run(&args);
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["sample_id"].as_str().unwrap().to_string(),
                v["unit"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// The `sample_id`s a `texaug plan --format jsonl` prints, sorted (the plan prints them batch by batch).
pub fn planned_ids(recipe: &Path, shard: Option<&str>) -> Vec<String> {
    let mut ids: Vec<String> = planned_units(recipe, shard)
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    ids.sort();
    ids
}

/// (source_id, status, error, sample_id) of every row of a manifest part.
pub fn records(part: &Path) -> Vec<(String, String, String, String)> {
    string_rows(part, &["source_id", "status", "error", "sample_id"])
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone(), r[2].clone(), r[3].clone()))
        .collect()
}

/// The string columns `names` of every row of a manifest part (null as "").
pub fn string_rows(part: &Path, names: &[&str]) -> Vec<Vec<String>> {
    use polars::prelude::*;
    let df = ParquetReader::new(std::fs::File::open(part).unwrap())
        .finish()
        .unwrap();
    let cols: Vec<Vec<String>> = names
        .iter()
        .map(|n| {
            df.column(n)
                .unwrap()
                .str()
                .unwrap()
                .iter()
                .map(|v| v.unwrap_or("").to_string())
                .collect()
        })
        .collect();
    (0..df.height())
        .map(|i| cols.iter().map(|c| c[i].clone()).collect())
        .collect()
}
