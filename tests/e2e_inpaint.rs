//! End to end: inpainting. A recipe on an inpainting model (9 UNet input channels) runs image sources that carry a
//! `mask` column, and each sample is the image `texaug generate --mask` makes with the plan's seed, prompt and
//! strength; a plain model inpaints the same sources by blending; `validate` names every source an inpainting
//! recipe cannot run (no mask, a mesh, a mask of another size) and a depth stage on an inpainting model.

mod common;

use common::*;
use std::path::{Path, PathBuf};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(rel)
}

/// An L-mode mask: white (repaint) in the left `white` columns, black elsewhere.
fn write_mask(path: &Path, w: u32, h: u32, white: u32) {
    let m = image::GrayImage::from_fn(w, h, |x, _| image::Luma([if x < white { 255 } else { 0 }]));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    m.save(path).unwrap();
}

/// Two 48×32 images with a mask each; `extra` rows are appended as written.
fn masked_sources(dir: &Path, extra: &[&str]) -> PathBuf {
    let mut rows = vec!["id,path,label,mask".to_string()];
    for i in 0..2u32 {
        write_png(&dir.join(format!("img/s{i}.png")), 48, 32, (i * 90) as u8);
        write_mask(&dir.join(format!("img/s{i}-mask.png")), 48, 32, 16 + 16 * i);
        rows.push(format!("s{i},img/s{i}.png,mug,img/s{i}-mask.png"));
    }
    rows.extend(extra.iter().map(|r| r.to_string()));
    let manifest = dir.join("sources.csv");
    std::fs::write(&manifest, rows.join("\n") + "\n").unwrap();
    manifest
}

fn inpaint_recipe(dir: &Path, manifest: &Path, model: &Path, stages: &str) -> PathBuf {
    let text = recipe_head("inpaint", 5, "out", manifest, model, None) + stages;
    let path = dir.join("recipe.toml");
    std::fs::write(&path, text).unwrap();
    path
}

const STYLE: &str = r#"[[stage]]
kind = "style"
prompts = ["a {label} on a workbench"]
strength = 1.0
steps = 3
guidance = 4.0
size = 64
"#;

#[test]
fn an_inpainting_recipe_gives_the_images_generate_gives() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = masked_sources(dir.path(), &[]);
    let model = fixture("models/sd1-inpaint-tiny");
    let recipe = inpaint_recipe(dir.path(), &manifest, &model, STYLE);
    let o = run(&["validate", recipe.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let o = run(&["run", recipe.to_str().unwrap(), "--progress", "none"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = dir.path().join("out");

    let plan = run(&["plan", recipe.to_str().unwrap(), "--format", "jsonl"]);
    assert!(plan.status.success(), "{}", text(&plan));
    let jobs: Vec<serde_json::Value> = String::from_utf8_lossy(&plan.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(jobs.len(), 2);
    for job in &jobs {
        let (id, source) = (
            job["sample_id"].as_str().unwrap(),
            job["source_id"].as_str().unwrap(),
        );
        let sample = std::fs::read(sample_dir(&out, id).join("image.png")).unwrap();
        let again = dir.path().join(format!("{source}-generate.png"));
        let image = dir.path().join(format!("img/{source}.png"));
        let mask = dir.path().join(format!("img/{source}-mask.png"));
        let o = run(&[
            "generate",
            "--model",
            model.to_str().unwrap(),
            "--image",
            image.to_str().unwrap(),
            "--mask",
            mask.to_str().unwrap(),
            "--prompt",
            job["prompt"].as_str().unwrap(),
            "--strength",
            &job["strength"].to_string(),
            "--steps",
            "3",
            "--guidance",
            "4",
            "--scheduler",
            "ddim",
            "--seed",
            &job["seed"].to_string(),
            "--size",
            "64",
            "--out",
            again.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", text(&o));
        assert!(
            std::fs::read(&again).unwrap() == sample,
            "{id}: the recipe's sample is not the image generate --mask makes"
        );
    }
    // Without its mask the inpainting model cannot run at all.
    let image = dir.path().join("img/s0.png");
    let o = run(&[
        "generate",
        "--model",
        model.to_str().unwrap(),
        "--image",
        image.to_str().unwrap(),
        "--prompt",
        "a mug",
        "--size",
        "64",
        "--out",
        dir.path().join("no-mask.png").to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(text(&o).contains("--mask"), "{}", text(&o));
}

#[test]
fn a_plain_model_inpaints_by_blending_and_a_mask_changes_the_sample() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = masked_sources(dir.path(), &[]);
    let plain = dir.path().join("plain.csv");
    let text_rows = std::fs::read_to_string(&manifest).unwrap();
    let unmasked: Vec<String> = text_rows
        .lines()
        .map(|l| l.rsplit_once(',').unwrap().0.to_string())
        .collect();
    std::fs::write(&plain, unmasked.join("\n") + "\n").unwrap();
    let model = fixture("models/sd1-tiny");
    let mut trees = Vec::new();
    for (name, m) in [("masked", &manifest), ("plain", &plain)] {
        let d = dir.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        let recipe = inpaint_recipe(&d, m, &model, &STYLE.replace("1.0", "0.8"));
        let o = run(&["run", recipe.to_str().unwrap(), "--progress", "none"]);
        assert!(o.status.success(), "{}", text(&o));
        trees.push(tree(&d.join("out/samples")));
    }
    assert_eq!(
        trees[0].keys().collect::<Vec<_>>(),
        trees[1].keys().collect::<Vec<_>>(),
        "the mask changes no sample id"
    );
    let images: Vec<_> = trees[0]
        .keys()
        .filter(|p| p.ends_with("image.png"))
        .collect();
    assert_eq!(images.len(), 2);
    for p in images {
        assert!(
            trees[0][p] != trees[1][p],
            "{}: the mask changed nothing",
            p.display()
        );
    }
}

#[test]
fn validate_names_what_an_inpainting_recipe_cannot_run() {
    let dir = tempfile::tempdir().unwrap();
    write_png(&dir.path().join("img/bare.png"), 48, 32, 10);
    write_png(&dir.path().join("img/odd.png"), 48, 32, 20);
    write_mask(&dir.path().join("img/odd-mask.png"), 32, 32, 8);
    write_png(&dir.path().join("mesh/tex.png"), 32, 32, 200);
    write_gltf(&dir.path().join("mesh/tri.gltf"), "tex.png", true);
    let manifest = masked_sources(
        dir.path(),
        &[
            "bare,img/bare.png,mug,",
            "odd,img/odd.png,mug,img/odd-mask.png",
            "tri,mesh/tri.gltf,triangle,",
        ],
    );
    let stages = format!(
        "{STYLE}\n[[stage]]\nkind = \"depth\"\nprompts = [\"a mug\"]\ncontrolnet = \"{}\"\nsteps = 2\nsize = 64\n",
        fixture("models/controlnet-tiny").display()
    );
    let recipe = inpaint_recipe(
        dir.path(),
        &manifest,
        &fixture("models/sd1-inpaint-tiny"),
        &stages,
    );
    let o = run(&["validate", recipe.to_str().unwrap()]);
    assert!(!o.status.success());
    let t = text(&o);
    let csv = manifest.display().to_string();
    for (line, what) in [
        (4, "source `bare` has no mask"),
        (5, "mask"),
        (6, "source `tri` is a mesh"),
    ] {
        assert!(
            t.lines()
                .any(|l| l.starts_with(&format!("{csv}:{line}:")) && l.contains(what)),
            "no diagnostic at row {line} saying {what:?}:\n{t}"
        );
    }
    assert!(t.contains("32x32") && t.contains("48x32"), "{t}");
    assert!(
        t.contains("depth stage `depth` cannot run") && t.contains("inpainting model"),
        "{t}"
    );
}
