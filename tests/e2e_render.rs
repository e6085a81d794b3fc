//! The render stage end to end: labeled views of re-textured and source meshes, one row each, their boxes equal
//! to their masks, their depth where the mask is, the same bytes on every run, resumed and merged exactly once.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

const DEMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../manifests/demo");

/// Two demo meshes and one image; a backgrounds folder of two images.
fn setup(dir: &Path) -> PathBuf {
    let manifest = dir.join("sources.csv");
    std::fs::write(
        &manifest,
        format!(
            "id,path,label,kind\nmug,{DEMO}/mug.glb,mug,mesh\ncrate,{DEMO}/crate.glb,crate,mesh\n\
             apple,{DEMO}/apple.png,apple,image\n"
        ),
    )
    .unwrap();
    let bg = dir.join("bg");
    std::fs::create_dir_all(&bg).unwrap();
    write_png(&bg.join("a.png"), 40, 30, 10);
    write_png(&bg.join("b.png"), 30, 40, 200);
    let recipe = recipe_head("render", 5, "out", &manifest, tiny_model(), Some(2))
        + &style_then_render("jitter = 10\nbackground = \"random\"")
        + r#"
[[stage]]
kind = "render"
name = "source-views"
views = 2
size = 40
supersample = 1
background = "images"
backgrounds = "bg"
format = "jpeg"
quality = 85
"#;
    let path = dir.join("recipe.toml");
    std::fs::write(&path, recipe).unwrap();
    path
}

/// The journal's latest row of each sample.
fn rows(out: &Path) -> BTreeMap<String, Value> {
    let journal = out.join("manifest/part-0000-of-0001.journal.jsonl");
    std::fs::read_to_string(&journal)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|v| (v["sample_id"].as_str().unwrap().to_string(), v))
        .collect()
}

fn s<'a>(row: &'a Value, key: &str) -> &'a str {
    row[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} missing in {row}"))
}

#[test]
fn views_are_labeled_rows_whose_box_is_their_mask_and_whose_bytes_repeat() {
    let d = tempfile::tempdir().unwrap();
    let recipe = setup(d.path());
    let plan = run(&["plan", recipe.to_str().unwrap()]);
    assert!(
        text(&plan).contains("10 rendered views ride on them"),
        "{}",
        text(&plan)
    );

    let out = d.path().join("out");
    run_recipe(&recipe, &out, &[]);
    let rows = rows(&out);
    // 3 style samples; 2 meshes × 3 views after them; 2 source meshes × 2 views (the image renders nothing).
    let by_stage = |stage: &str| rows.values().filter(|r| s(r, "stage") == stage).count();
    assert_eq!(
        (
            by_stage("style"),
            by_stage("render"),
            by_stage("source-views")
        ),
        (3, 6, 4)
    );
    assert!(rows.values().all(|r| s(r, "status") == "ok"), "{rows:?}");

    for r in rows.values().filter(|r| s(r, "stage") != "style") {
        let image = image::open(out.join(s(r, "image_path"))).unwrap();
        let mask = image::open(out.join(s(r, "mask_path"))).unwrap().to_luma8();
        let depth = image::open(out.join(s(r, "depth_path")))
            .unwrap()
            .to_luma16();
        let size = if s(r, "stage") == "render" { 48 } else { 40 };
        assert_eq!(
            (image.width(), mask.width(), depth.width()),
            (size, size, size)
        );
        // The box is the mask's extent, and depth is set exactly where the mask is.
        let set: Vec<(u32, u32)> = mask
            .enumerate_pixels()
            .filter(|p| p.2 .0[0] == 255)
            .map(|p| (p.0, p.1))
            .collect();
        assert!(!set.is_empty(), "the object is in view: {r}");
        assert!(mask.pixels().all(|p| p.0[0] == 0 || p.0[0] == 255));
        let x0 = set.iter().map(|p| p.0).min().unwrap();
        let x1 = set.iter().map(|p| p.0).max().unwrap();
        let y0 = set.iter().map(|p| p.1).min().unwrap();
        let y1 = set.iter().map(|p| p.1).max().unwrap();
        let bbox: Vec<u64> = ["bbox_x", "bbox_y", "bbox_w", "bbox_h"]
            .iter()
            .map(|k| r[*k].as_u64().unwrap())
            .collect();
        assert_eq!(
            bbox,
            [x0, y0, x1 - x0 + 1, y1 - y0 + 1].map(u64::from),
            "{r}"
        );
        for (m, z) in mask.pixels().zip(depth.pixels()) {
            assert_eq!(m.0[0] == 255, z.0[0] > 0);
        }
        let scale = r["depth_scale_m"].as_f64().unwrap();
        let camera: Value = serde_json::from_str(s(r, "camera")).unwrap();
        let distance = camera["distance"].as_f64().unwrap();
        let nearest = depth
            .pixels()
            .filter(|z| z.0[0] > 0)
            .map(|z| z.0[0])
            .min()
            .unwrap();
        assert!(
            f64::from(nearest) * scale < distance,
            "the surface lies before the target"
        );
        assert_eq!(camera["world_to_camera"].as_array().unwrap().len(), 4);
        // The label is the source's; a view after the style stage points at its re-textured sample.
        let source = s(r, "source_id");
        assert!(source == "mug" || source == "crate");
        if s(r, "stage") == "render" {
            let parent = &rows[s(r, "parent_sample_id")];
            assert_eq!(
                (s(parent, "stage"), s(parent, "source_id")),
                ("style", source)
            );
            assert_eq!(r["asset_path"], parent["asset_path"]);
            assert!(s(r, "background").starts_with('#'));
        } else {
            assert!(r["parent_sample_id"].is_null());
            assert!(s(r, "image_path").ends_with(".jpg"));
            assert!(s(r, "background").starts_with("image:"));
        }
    }

    // Same recipe, same bytes: every file of a second run equals the first's.
    let again = d.path().join("again");
    run_recipe(&recipe, &again, &[]);
    let files = |o: &Path| tree(&o.join("samples"));
    assert_eq!(files(&out), files(&again));
    assert_eq!(
        manifest_rows(&out.join("manifest/part-0000-of-0001.parquet")),
        manifest_rows(&again.join("manifest/part-0000-of-0001.parquet"))
    );
}

#[test]
fn a_job_whose_rows_were_cut_short_runs_again_whole_and_merges_exactly_once() {
    let d = tempfile::tempdir().unwrap();
    let recipe = setup(d.path());
    let out = d.path().join("out");
    run_recipe(&recipe, &out, &[]);
    let fresh = tree(&out.join("samples"));

    // A journal that ends inside a job's rows (views written, the sample's own row not): the journal is cut
    // before the crate's style row; its files stay, as a kill would leave them, for the resumed run to remove.
    let journal = out.join("manifest/part-0000-of-0001.journal.jsonl");
    let journal_text = std::fs::read_to_string(&journal).unwrap();
    let lines: Vec<&str> = journal_text.lines().collect();
    let cut = lines
        .iter()
        .position(|l| l.contains("\"stage\":\"style\"") && l.contains("\"source_id\":\"crate\""))
        .unwrap();
    assert!(
        lines[cut - 1].contains("\"stage\":\"render\""),
        "views come before their sample's row"
    );
    std::fs::write(&journal, lines[..cut].join("\n") + "\n").unwrap();
    let summary = run_recipe(&recipe, &out, &["--resume"]);
    // Remade: every row cut off, and the crate's 3 views recorded before its row (its job runs whole).
    let remade = lines.len() - cut + 3;
    assert!(
        summary.contains(&format!("{remade} sample(s) made this run")),
        "{remade} rows expected: {summary}"
    );
    assert_eq!(tree(&out.join("samples")), fresh);
    assert_eq!(rows(&out).len(), 13);

    // Two shards merge into the 13 rows of the plan, none missing, none twice.
    let shards: Vec<PathBuf> = (0..2).map(|i| d.path().join(format!("shard{i}"))).collect();
    for (i, shard) in shards.iter().enumerate() {
        run_recipe(&recipe, shard, &["--shard", &format!("{i}/2")]);
    }
    let merged = d.path().join("merged");
    let o = run(&[
        "merge",
        shards[0].to_str().unwrap(),
        shards[1].to_str().unwrap(),
        "--recipe",
        recipe.to_str().unwrap(),
        "--out",
        merged.to_str().unwrap(),
    ]);
    assert!(
        o.status.success() && text(&o).contains("0 missing"),
        "{}",
        text(&o)
    );
    assert_eq!(tree(&merged.join("samples")), fresh);
}

#[test]
fn a_broken_background_image_stops_the_run_before_anything_is_made_naming_the_file() {
    let d = tempfile::tempdir().unwrap();
    let recipe = setup(d.path());
    std::fs::write(
        d.path().join("bg/broken.png"),
        b"\x89PNG\r\n\x1a\nnot a png",
    )
    .unwrap();
    let out = d.path().join("out");
    let o = try_run_recipe(&recipe, &out, &[]);
    let said = text(&o);
    assert!(!o.status.success(), "{said}");
    assert!(
        said.contains("broken.png") && said.contains("background"),
        "{said}"
    );
    assert!(!out.join("samples").exists(), "nothing is made: {said}");
}

#[test]
fn views_below_min_clip_score_are_filtered_rows_without_files_and_count_as_done() {
    let d = tempfile::tempdir().unwrap();
    let clip = d.path().join("clip");
    let o = run(&[
        "model",
        "init-tiny",
        "--kind",
        "clip",
        "--out",
        clip.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let manifest = d.path().join("sources.csv");
    std::fs::write(
        &manifest,
        format!(
            "id,path,label,kind\nmug,{DEMO}/mug.glb,mug,mesh\napple,{DEMO}/apple.png,apple,image\n"
        ),
    )
    .unwrap();
    // Every score is at most 100: min 100 filters (almost surely) every view; min 0 keeps every image.
    let recipe_text = |keep: bool| {
        recipe_head("scored", 5, "out", &manifest, tiny_model(), Some(2))
            + &format!(
                "[score]\npath = \"{}\"\n\n[[stage]]\nkind = \"style\"\nprompts = [\"a {{label}} made of wood\"]\n\
                 steps = 2\nsize = 64\nmin_clip_score = 0\n\n[[stage]]\nkind = \"render\"\nafter = \"style\"\n\
                 views = 3\nsize = 48\nmin_clip_score = 100\nkeep_filtered = {keep}\n",
                clip.display()
            )
    };
    for keep in [false, true] {
        let recipe = d.path().join(format!("recipe-{keep}.toml"));
        std::fs::write(&recipe, recipe_text(keep)).unwrap();
        let out = d.path().join(format!("out-{keep}"));
        run_recipe(&recipe, &out, &[]);
        let rows = rows(&out);
        assert_eq!(rows.len(), 5, "2 samples and the mug's 3 views: {rows:?}");
        for r in rows.values() {
            let score = r["clip_score"].as_f64();
            if s(r, "stage") == "render" {
                assert_eq!(s(r, "status"), "filtered", "{r}");
                let score = score.expect("views are scored");
                assert!((0.0..100.0).contains(&score), "{r}");
                let folder = sample_dir(&out, s(r, "sample_id"));
                assert_eq!(folder.join("image.png").is_file(), keep, "{r}");
                assert_eq!(r["image_path"].is_null(), !keep, "{r}");
            } else {
                assert_eq!(s(r, "status"), "ok", "{r}");
                // An image sample is scored; a mesh sample (textures only) is scored through its views.
                assert_eq!(score.is_some(), s(r, "source_kind") == "image", "{r}");
            }
        }
        // Filtered is done: a resume makes nothing again.
        let again = run_recipe(&recipe, &out, &["--resume"]);
        assert!(again.contains("0 sample(s) made this run"), "{again}");
        let inspect = run(&["inspect", out.to_str().unwrap()]);
        assert!(
            text(&inspect).contains("3 of them filtered by min_clip_score"),
            "{}",
            text(&inspect)
        );
    }
}
