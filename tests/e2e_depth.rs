//! End to end: the `depth` stage through the built binary, on the demo meshes with a tiny SD 2-depth model, plus an
//! image with a depth file and one without.

mod common;

use common::{recipe_head, records, run, sample_dir, text, tree, vocab, write_png};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use texaug_stages::source::MeshAsset;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn part(out: &Path) -> PathBuf {
    out.join("manifest/part-0000-of-0001.parquet")
}

const MESHES: [(&str, &str, &str); 4] = [
    ("mug", "demo/mug.glb", "mug"),
    ("crate", "demo/crate.glb", "wooden crate"),
    ("ball", "demo/ball.gltf", "beach ball"),
    ("can", "demo/can/can.gltf", "soda can"),
];

/// A scratch folder under target/, emptied first.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("e2e_depth-{name}"));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).unwrap();
    }
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn init_tiny(kind: &str, out: &Path) {
    let v = vocab();
    let o = run(&[
        "model",
        "init-tiny",
        "--kind",
        kind,
        "--out",
        out.to_str().unwrap(),
        "--vocab",
        v.to_str().unwrap(),
        "--seed",
        "0",
    ]);
    assert!(o.status.success(), "init-tiny {kind}\n{}", text(&o));
}

/// The demo meshes, an image with a 16-bit depth PNG and an image without depth; returns the manifest.
fn write_sources(dir: &Path) -> PathBuf {
    let demo = repo().join("manifests");
    let mut rows = vec!["id,path,label,kind,depth".to_string()];
    for (id, rel, label) in MESHES {
        rows.push(format!("{id},{},{label},mesh,", demo.join(rel).display()));
    }
    write_png(&dir.join("img/with.png"), 48, 40, 90);
    let depth = image::ImageBuffer::<image::Luma<u16>, Vec<u16>>::from_fn(48, 40, |x, y| {
        image::Luma([(x * 1000 + y * 300) as u16])
    });
    depth.save(dir.join("img/with-depth.png")).unwrap();
    rows.push("withdepth,img/with.png,vase,image,img/with-depth.png".into());
    write_png(&dir.join("img/without.png"), 40, 40, 20);
    rows.push("nodepth,img/without.png,vase,image,".into());
    let manifest = dir.join("sources.csv");
    std::fs::write(&manifest, rows.join("\n") + "\n").unwrap();
    manifest
}

fn write_recipe(dir: &Path, manifest: &Path, model: &Path, extra: &str) -> PathBuf {
    let text = recipe_head("e2e-depth", 5, "out", manifest, model, None)
        + &format!(
            r#"[[stage]]
kind = "depth"
prompts = ["a {{label}} made of wood"]
strength = 0.8
steps = 2
guidance = 3.0
size = 64
{extra}
"#
        );
    let path = dir.join("recipe.toml");
    std::fs::write(&path, text).unwrap();
    path
}

struct DepthRun {
    dir: PathBuf,
    recipe: PathBuf,
    out: PathBuf,
}

/// One depth run shared by the tests that only read its output.
fn depth_run() -> &'static DepthRun {
    static RUN: OnceLock<DepthRun> = OnceLock::new();
    RUN.get_or_init(|| {
        let dir = scratch("run");
        let model = dir.join("tiny-sd2-depth");
        init_tiny("sd2-depth", &model);
        let manifest = write_sources(&dir);
        let recipe = write_recipe(&dir, &manifest, &model, "");
        let o = run(&["run", recipe.to_str().unwrap(), "--progress", "none"]);
        // The image without depth fails (exit 2); everything else must have run.
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        DepthRun {
            out: dir.join("out"),
            dir,
            recipe,
        }
    })
}

/// (column → value as text) of the row of `source_id`.
fn row(out: &Path, source_id: &str) -> std::collections::HashMap<String, String> {
    use polars::prelude::*;
    let df = ParquetReader::new(std::fs::File::open(part(out)).unwrap())
        .finish()
        .unwrap();
    let ids = df.column("source_id").unwrap().str().unwrap().clone();
    let i = (0..df.height())
        .find(|&i| ids.get(i) == Some(source_id))
        .unwrap_or_else(|| panic!("no row for {source_id}"));
    df.get_column_names()
        .iter()
        .map(|c| {
            let v = df.column(c).unwrap().get(i).unwrap();
            let s = match v {
                AnyValue::String(s) => s.to_string(),
                AnyValue::Null => String::new(),
                other => format!("{other}"),
            };
            (c.to_string(), s)
        })
        .collect()
}

#[test]
fn every_mesh_is_retextured_from_all_views_with_high_coverage() {
    let r = depth_run();
    for (id, _, _) in MESHES {
        let row = row(&r.out, id);
        assert_eq!(row["status"], "ok", "{id}: {}", row["error"]);
        assert_eq!(row["depth_source"], "mesh");
        assert_eq!(row["views"], "10", "8 azimuths + top + bottom");
        // The demo meshes are closed and nearly convex: ten views around and over them see almost every used
        // texel; the mug's handle hides a little of its inner side, so not all.
        let coverage: f64 = row["coverage"].parse().unwrap();
        assert!((0.9..=1.0).contains(&coverage), "{id}: coverage {coverage}");
        let consistency: f64 = row["view_consistency_db"].parse().unwrap();
        assert!(
            (5.0..99.0).contains(&consistency),
            "{id}: view_consistency_db {consistency}"
        );
        let sample = sample_dir(&r.out, &row["sample_id"]);
        let views = std::fs::read_to_string(sample.join("views.txt")).unwrap();
        let names: Vec<&str> = views.trim().split(',').collect();
        assert_eq!(names.len(), 10);
        assert_eq!((names[0], names[8], names[9]), ("front", "top", "bottom"));
        for t in row["texture_path"].split(';') {
            let img = image::open(r.out.join(t)).unwrap();
            assert!(img.width() > 0);
        }
    }
}

/// `inspect` reports the distribution of the views' consistency over the mesh samples.
#[test]
fn inspect_reports_the_view_consistency_distribution() {
    let r = depth_run();
    let o = run(&["inspect", r.out.to_str().unwrap()]);
    let out = text(&o);
    let line = out
        .lines()
        .find(|l| l.starts_with("view_consistency_db"))
        .unwrap_or_else(|| panic!("no consistency line in:\n{out}"));
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(fields[2], MESHES.len().to_string(), "{line}");
    let (min, max): (f64, f64) = (fields[3].parse().unwrap(), fields[7].parse().unwrap());
    assert!(min > 0.0 && min <= max, "{line}");
}

#[test]
fn images_take_depth_from_their_file_and_without_one_fail_naming_the_fix() {
    let r = depth_run();
    let ok = row(&r.out, "withdepth");
    assert_eq!(ok["status"], "ok", "{}", ok["error"]);
    assert_eq!(ok["depth_source"], "file");
    let img = image::open(r.out.join(&ok["image_path"])).unwrap();
    assert_eq!((img.width(), img.height()), (48, 40));

    let failed: Vec<_> = records(&part(&r.out))
        .into_iter()
        .filter(|(_, status, _, _)| status != "ok")
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    let (source, _, error, _) = &failed[0];
    assert_eq!(source, "nodepth");
    assert!(
        error.contains("`depth` column") && error.contains("estimator"),
        "{error}"
    );
}

/// The accessor's bytes: its stretch of its buffer view (the whole view when strided or unsized).
fn accessor_bytes(asset: &MeshAsset, accessor: usize) -> Vec<u8> {
    let acc = &asset.json()["accessors"][accessor];
    let view = acc["bufferView"].as_u64().unwrap() as usize;
    let bytes = asset.buffer_view(view).unwrap();
    let offset = acc["byteOffset"].as_u64().unwrap_or(0) as usize;
    bytes[offset..].to_vec()
}

/// Every accessor a primitive reads (attributes, indices), in document order.
fn geometry(asset: &MeshAsset) -> Vec<(serde_json::Value, Vec<u8>)> {
    let mut out = Vec::new();
    for mesh in asset.json()["meshes"].as_array().unwrap() {
        for prim in mesh["primitives"].as_array().unwrap() {
            let mut accessors: Vec<usize> = prim["attributes"]
                .as_object()
                .unwrap()
                .values()
                .map(|v| v.as_u64().unwrap() as usize)
                .collect();
            accessors.extend(prim["indices"].as_u64().map(|v| v as usize));
            for a in accessors {
                let mut json = asset.json()["accessors"][a].clone();
                // Which buffer view holds the data may change; what it holds may not.
                json.as_object_mut().unwrap().remove("bufferView");
                out.push((json, accessor_bytes(asset, a)));
            }
        }
    }
    out
}

#[test]
fn geometry_is_byte_identical_to_the_source() {
    let r = depth_run();
    for (id, rel, _) in MESHES {
        let row = row(&r.out, id);
        let source = MeshAsset::load(&repo().join("manifests").join(rel)).unwrap();
        let written = MeshAsset::load(&r.out.join(&row["asset_path"])).unwrap();
        let (a, b) = (geometry(&source), geometry(&written));
        assert!(!a.is_empty());
        assert_eq!(a.len(), b.len(), "{id}");
        for (i, ((ja, ba), (jb, bb))) in a.iter().zip(&b).enumerate() {
            assert_eq!(ja, jb, "{id}: accessor {i}");
            let n = ba.len().min(bb.len());
            assert!(
                n > 0 && ba[..n] == bb[..n],
                "{id}: accessor {i} bytes differ"
            );
        }
    }
}

#[test]
fn retextured_glbs_pass_the_gltf_validator() {
    let validator = repo().join("ci").join("gltf-validator");
    if !validator
        .join("node_modules")
        .join("gltf-validator")
        .exists()
    {
        let msg = format!(
            "glTF-Validator is not installed: run `npm ci` in {}",
            validator.display()
        );
        if std::env::var("TEXAUG_REQUIRE_GLTF_VALIDATOR").as_deref() == Ok("1") {
            panic!("{msg} (TEXAUG_REQUIRE_GLTF_VALIDATOR=1 requires it)");
        }
        eprintln!("skipped: {msg}");
        return;
    }
    let r = depth_run();
    let files: Vec<PathBuf> = MESHES
        .iter()
        .map(|(id, _, _)| r.out.join(&row(&r.out, id)["asset_path"]))
        .collect();
    let output = std::process::Command::new("node")
        .arg(validator.join("validate.mjs"))
        .args(&files)
        .output()
        .expect("running node; install Node.js 18 or newer");
    assert!(
        output.status.success(),
        "glTF-Validator found errors:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_depth_run_gives_the_same_bytes_twice() {
    let r = depth_run();
    let again = r.dir.join("again");
    let o = run(&[
        "run",
        r.recipe.to_str().unwrap(),
        "--output",
        again.to_str().unwrap(),
        "--progress",
        "none",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let (a, b) = (tree(&r.out.join("samples")), tree(&again.join("samples")));
    assert!(a.len() >= 4 * 3, "{} files", a.len());
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (k, v) in &a {
        assert!(b[k] == *v, "{} differs between two runs", k.display());
    }
    assert_eq!(
        common::manifest_rows(&part(&r.out)),
        common::manifest_rows(&part(&again))
    );
}

#[test]
fn a_controlnet_depth_stage_retextures_meshes() {
    let dir = scratch("controlnet");
    let model = dir.join("tiny-controlnet");
    init_tiny("controlnet", &model);
    let demo = repo().join("manifests");
    let manifest = dir.join("meshes.csv");
    let rows: Vec<String> = MESHES[..2]
        .iter()
        .map(|(id, rel, label)| format!("{id},{},{label},mesh", demo.join(rel).display()))
        .collect();
    std::fs::write(
        &manifest,
        format!("id,path,label,kind\n{}\n", rows.join("\n")),
    )
    .unwrap();
    let extra = format!(
        "views = 4\ncontrolnet = \"{}\"\nconditioning_scale = 0.8",
        model.join("controlnet").display()
    );
    let recipe = write_recipe(&dir, &manifest, &model, &extra);
    let o = run(&["validate", recipe.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let o = run(&["run", recipe.to_str().unwrap(), "--progress", "none"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = dir.join("out");
    for (id, _, _) in &MESHES[..2] {
        let row = row(&out, id);
        assert_eq!(row["status"], "ok", "{}", row["error"]);
        assert_eq!(row["views"], "6");
        assert!(out.join(&row["asset_path"]).is_file());
    }
}

#[test]
fn generate_runs_one_depth_conditioned_image() {
    let dir = scratch("generate");
    let model = dir.join("tiny-sd2-depth");
    init_tiny("sd2-depth", &model);
    write_png(&dir.join("in.png"), 64, 64, 50);
    let depth = image::ImageBuffer::<image::Luma<u16>, Vec<u16>>::from_fn(64, 64, |x, _| {
        image::Luma([(x * 900) as u16])
    });
    depth.save(dir.join("depth.png")).unwrap();
    let out = dir.join("out.png");
    let input = dir.join("in.png");
    let base = [
        "generate",
        "--model",
        model.to_str().unwrap(),
        "--image",
        input.to_str().unwrap(),
        "--prompt",
        "a vase",
        "--steps",
        "2",
        "--out",
        out.to_str().unwrap(),
    ];
    // A depth model without --depth says what to add.
    let o = run(&base);
    assert!(!o.status.success());
    assert!(text(&o).contains("--depth"), "{}", text(&o));
    let mut args = base.to_vec();
    let d = dir.join("depth.png");
    args.extend(["--depth", d.to_str().unwrap()]);
    let o = run(&args);
    assert!(o.status.success(), "{}", text(&o));
    let img = image::open(&out).unwrap();
    assert_eq!((img.width(), img.height()), (64, 64));
}

#[test]
fn a_hub_id_as_estimator_is_refused_by_validate_and_run() {
    let dir = scratch("hub-estimator");
    let manifest = write_sources(&dir);
    // The model is never reached: the estimator is refused first.
    let recipe = write_recipe(
        &dir,
        &manifest,
        &dir.join("no-model"),
        "\n[depth]\nestimator = \"Intel/dpt-hybrid-midas\"\n",
    );
    let refusal = "\"Intel/dpt-hybrid-midas\" looks like a hub id, but the estimator is a local TorchScript file; \
                   texaug does not download code: export the estimator yourself (see README) and give its path";
    let o = run(&["validate", recipe.to_str().unwrap()]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(refusal)
            || String::from_utf8_lossy(&o.stderr).contains(refusal),
        "{}",
        text(&o)
    );
    let o = run(&["run", recipe.to_str().unwrap(), "--progress", "none"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(refusal),
        "{}",
        text(&o)
    );
    assert!(!dir.join("out").exists(), "a refused run wrote its output");
}
