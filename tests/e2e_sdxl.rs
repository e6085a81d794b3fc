//! End to end: `recipes/sdxl.toml` (an SDXL style stage and an SDXL depth-ControlNet stage on the demo meshes) on a
//! tiny SDXL pipeline with its ControlNet, made by `texaug model init-tiny --kind sdxl-controlnet`; and
//! `texaug generate` with SDXL's micro-conditioning flags.

mod common;

use common::{run, run_recipe, string_rows, text, vocab, write_png};
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A scratch folder under target/, emptied first.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("e2e_sdxl-{name}"));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).unwrap();
    }
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn tiny_sdxl(dir: &Path) -> PathBuf {
    let model = dir.join("tiny-sdxl");
    let v = vocab();
    let o = run(&[
        "model",
        "init-tiny",
        "--kind",
        "sdxl-controlnet",
        "--out",
        model.to_str().unwrap(),
        "--vocab",
        v.to_str().unwrap(),
    ]);
    assert!(
        o.status.success(),
        "init-tiny sdxl-controlnet\n{}",
        text(&o)
    );
    model
}

/// `(stage, status, error)` of every row of a one-shard output.
fn rows(out: &Path) -> Vec<(String, String, String)> {
    let part = out.join("manifest/part-0000-of-0001.parquet");
    string_rows(&part, &["stage", "status", "error"])
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone(), r[2].clone()))
        .collect()
}

#[test]
fn the_sdxl_recipe_retextures_meshes_by_style_and_depth_controlnet() {
    let dir = scratch("recipe");
    let model = tiny_sdxl(&dir);
    let recipe_in = repo().join("recipes/sdxl.toml");
    let original = std::fs::read_to_string(&recipe_in).unwrap();
    // The recipe as shipped, pointed at this test's model and the repository's demo manifest.
    let recipe_text = original
        .replace("../output/models/tiny-sdxl", model.to_str().unwrap())
        .replace(
            "../manifests/demo-depth.csv",
            repo().join("manifests/demo-depth.csv").to_str().unwrap(),
        );
    assert_ne!(
        recipe_text, original,
        "the recipe no longer names the tiny model"
    );
    let recipe = dir.join("sdxl.toml");
    std::fs::write(&recipe, recipe_text).unwrap();
    let o = run(&["validate", recipe.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));

    let out = dir.join("out");
    run_recipe(&recipe, &out, &[]);
    let rows = rows(&out);
    let meshes = std::fs::read_to_string(repo().join("manifests/demo-depth.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .count();
    for stage in ["style", "depth"] {
        let of_stage: Vec<_> = rows.iter().filter(|r| r.0 == stage).collect();
        assert_eq!(of_stage.len(), meshes, "{stage}: {rows:?}");
        for (_, status, error) in of_stage {
            assert_eq!(status, "ok", "{stage}: {error}");
        }
    }
    let glbs = walkdir::WalkDir::new(out.join("samples"))
        .into_iter()
        .flatten()
        .filter(|e| {
            e.path()
                .extension()
                .is_some_and(|x| x == "glb" || x == "gltf")
        })
        .count();
    assert!(glbs >= 2 * meshes, "{glbs} re-textured assets");

    // Same recipe and seed, same bytes: a second run makes an identical manifest of samples.
    let again = dir.join("again");
    run_recipe(&recipe, &again, &[]);
    assert_eq!(rows, self::rows(&again));
}

#[test]
fn generate_takes_sdxl_micro_conditioning_and_refuses_bad_values() {
    let dir = scratch("generate");
    let model = tiny_sdxl(&dir);
    let input = dir.join("in.png");
    write_png(&input, 64, 64, 60);
    let out = |name: &str| dir.join(name);
    let gen = |extra: &[&str], name: &str| {
        let o = out(name);
        let mut args = vec![
            "generate",
            "--model",
            model.to_str().unwrap(),
            "--image",
            input.to_str().unwrap(),
            "--prompt",
            "a vase",
            "--steps",
            "3",
            "--out",
        ];
        args.push(o.to_str().unwrap());
        args.extend_from_slice(extra);
        (run(&args), o)
    };
    let (o, plain) = gen(&[], "plain.png");
    assert!(o.status.success(), "{}", text(&o));
    let (o, sized) = gen(
        &["--original-size", "1024x768", "--crop", "16x0"],
        "sized.png",
    );
    assert!(o.status.success(), "{}", text(&o));
    // The size ids reach the UNet: the same seed gives another image.
    assert_ne!(
        std::fs::read(&plain).unwrap(),
        std::fs::read(&sized).unwrap()
    );
    let (o, _) = gen(&["--denoising-start", "0.5"], "refine.png");
    assert!(o.status.success(), "{}", text(&o));
    let (o, _) = gen(&["--original-size", "1024"], "bad.png");
    assert!(!o.status.success());
    assert!(text(&o).contains("HEIGHTxWIDTH"), "{}", text(&o));
    let (o, _) = gen(&["--denoising-start", "1.5"], "bad2.png");
    assert!(!o.status.success());
    assert!(text(&o).contains("--denoising-start"), "{}", text(&o));
}
