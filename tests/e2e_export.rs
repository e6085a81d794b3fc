//! `texaug export` end to end: a run with rendered views exported in every layout, read back by texaug's own
//! checks (COCO boxes and RLE equal to the masks, YOLO boxes normalised, splits per source, the same bytes twice, a
//! hostile row refused) and, with TEXAUG_PYTHON_CHECK=1, by the Python readers users have (ci/check_export.py).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

const DEMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../manifests/demo");
const FORMATS: [&str; 5] = ["imagefolder", "coco", "yolo", "webdataset", "hf-parquet"];
const JOURNAL: &str = "manifest/part-0000-of-0001.journal.jsonl";

/// Two demo meshes (re-styled, then 3 views each; and 2 views each of the source meshes, as JPEG) and two images,
/// one of them put in validation by the manifest. Returns the run's output folder.
fn run_output(dir: &Path) -> PathBuf {
    let manifest = dir.join("sources.csv");
    std::fs::write(
        &manifest,
        format!(
            "id,path,label,kind,split\nmug,{DEMO}/mug.glb,mug,mesh,\ncrate,{DEMO}/crate.glb,wooden crate,mesh,\n\
             apple,{DEMO}/apple.png,apple,image,\nsunset,{DEMO}/sunset.png,sunset,image,val\n"
        ),
    )
    .unwrap();
    let recipe = recipe_head("export", 3, "out", &manifest, tiny_model(), Some(2))
        + &style_then_render("background = \"random\"")
        + r#"
[[stage]]
kind = "render"
name = "source-views"
views = 2
size = 40
supersample = 1
background = "solid"
format = "jpeg"
"#;
    let path = dir.join("recipe.toml");
    std::fs::write(&path, recipe).unwrap();
    let out = dir.join("out");
    run_recipe(&path, &out, &[]);
    out
}

/// The journal's rows by sample id.
fn rows(out: &Path) -> BTreeMap<String, Value> {
    std::fs::read_to_string(out.join(JOURNAL))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|v| (v["sample_id"].as_str().unwrap().to_string(), v))
        .collect()
}

/// The rows an export holds: ok, with an image.
fn exported(out: &Path) -> BTreeMap<String, Value> {
    rows(out)
        .into_iter()
        .filter(|(_, r)| r["status"] == "ok" && r["image_path"].is_string())
        .collect()
}

fn export(out: &Path, format: &str, dest: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "export",
        out.to_str().unwrap(),
        "--format",
        format,
        "--out",
        dest.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run(&args)
}

fn export_ok(out: &Path, format: &str, dest: &Path, extra: &[&str]) {
    let o = export(out, format, dest, extra);
    assert!(o.status.success(), "export {format}\n{}", text(&o));
}

fn json_file(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The mask of a sample as object pixels (row-major) and its size.
fn mask(out: &Path, row: &Value) -> (Vec<bool>, u32, u32) {
    let m = image::open(out.join(row["mask_path"].as_str().unwrap()))
        .unwrap()
        .to_luma8();
    let (w, h) = m.dimensions();
    (m.pixels().map(|p| p.0[0] >= 128).collect(), w, h)
}

fn extent(pixels: &[bool], w: u32) -> [i64; 4] {
    let set: Vec<(i64, i64)> = pixels
        .iter()
        .enumerate()
        .filter(|(_, &p)| p)
        .map(|(i, _)| ((i as u32 % w) as i64, (i as u32 / w) as i64))
        .collect();
    let (x0, x1) = (
        set.iter().map(|p| p.0).min().unwrap(),
        set.iter().map(|p| p.0).max().unwrap(),
    );
    let (y0, y1) = (
        set.iter().map(|p| p.1).min().unwrap(),
        set.iter().map(|p| p.1).max().unwrap(),
    );
    [x0, y0, x1 - x0 + 1, y1 - y0 + 1]
}

#[test]
fn every_layout_holds_the_ok_images_and_two_exports_are_the_same_bytes() {
    let d = tempfile::tempdir().unwrap();
    let out = run_output(d.path());
    let want = exported(&out);
    // 2 images' style samples, 2 meshes × 3 views, 2 source meshes × 2 views; the meshes' own rows have no image.
    assert_eq!(want.len(), 12);
    for format in FORMATS {
        let dest = d.path().join(format);
        export_ok(
            &out,
            format,
            &dest,
            &["--progress", "none", "--shard-size", "5"],
        );
        let marker = json_file(&dest.join("texaug-export.json"));
        assert_eq!(marker["format"], format);
        assert_eq!(marker["splits"]["validation"], 1, "{marker}");
        assert_eq!(marker["splits"]["train"], 11, "{marker}");
        let first = tree(&dest);
        // Again into the same folder, with JSON progress: replaced whole, and the same bytes.
        let o = export(
            &out,
            format,
            &dest,
            &["--progress", "json", "--shard-size", "5"],
        );
        assert!(o.status.success(), "{}", text(&o));
        let events: Vec<Value> = String::from_utf8_lossy(&o.stderr)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
            .collect();
        assert_eq!(events.first().unwrap()["event"], "start");
        assert_eq!(events.last().unwrap()["event"], "finish");
        assert_eq!(
            events
                .iter()
                .filter(|e| e["event"] == "sample_done")
                .count(),
            12
        );
        assert_eq!(tree(&dest), first, "{format}: a second export differs");
        let hidden: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
            .collect();
        assert!(hidden.is_empty(), "staging folders left: {hidden:?}");
    }
    let names = |dir: &str| -> BTreeSet<String> {
        tree(&d.path().join(dir))
            .keys()
            .map(|p| p.to_string_lossy().into_owned())
            .collect()
    };
    let wds = names("webdataset");
    assert!(
        wds.contains("train-000002.tar") && wds.contains("validation-000000.tar"),
        "{wds:?}"
    );
    let parquet = names("hf-parquet");
    assert!(
        parquet.contains("data/train-00002-of-00003.parquet"),
        "{parquet:?}"
    );
    let folder = names("imagefolder");
    assert!(
        folder.contains("train/metadata.jsonl") && folder.contains("validation/metadata.jsonl"),
        "{folder:?}"
    );
    assert!(
        folder.iter().any(|f| f.starts_with("train/wooden_crate/")),
        "{folder:?}"
    );
    // The default folder is OUT/export/<format>.
    let o = run(&[
        "export",
        out.to_str().unwrap(),
        "--format",
        "coco",
        "--progress",
        "none",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(out
        .join("export/coco/annotations/instances_train.json")
        .is_file());
}

#[test]
fn coco_boxes_areas_and_rle_are_the_masks_and_yolo_boxes_are_normalised() {
    let d = tempfile::tempdir().unwrap();
    let out = run_output(d.path());
    let want = exported(&out);
    let coco = d.path().join("coco");
    export_ok(&out, "coco", &coco, &["--progress", "none"]);
    let mut annotated = 0;
    for split in ["train", "validation"] {
        let file = json_file(&coco.join(format!("annotations/instances_{split}.json")));
        let categories: Vec<&str> = file["categories"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(categories, ["apple", "mug", "sunset", "wooden crate"]);
        let images: BTreeMap<u64, &Value> = file["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| (i["id"].as_u64().unwrap(), i))
            .collect();
        let ids: Vec<&str> = images
            .values()
            .map(|i| i["sample_id"].as_str().unwrap())
            .collect();
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        assert_eq!(ids, sorted, "images in sample-id order");
        for ann in file["annotations"].as_array().unwrap() {
            let image = images[&ann["image_id"].as_u64().unwrap()];
            let row = &want[image["sample_id"].as_str().unwrap()];
            let (pixels, w, h) = mask(&out, row);
            let bbox: Vec<i64> = ann["bbox"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_i64().unwrap())
                .collect();
            assert_eq!(bbox, extent(&pixels, w), "{ann}");
            let row_box: Vec<i64> = ["bbox_x", "bbox_y", "bbox_w", "bbox_h"]
                .iter()
                .map(|k| row[*k].as_i64().unwrap())
                .collect();
            assert_eq!(bbox, row_box, "the row's box is the mask's extent");
            assert_eq!(
                ann["area"].as_u64().unwrap(),
                pixels.iter().filter(|&&p| p).count() as u64
            );
            assert_eq!(ann["segmentation"]["size"], serde_json::json!([h, w]));
            assert_eq!(ann["iscrowd"], 0);
            // Decode the uncompressed RLE (column-major, background first) and compare pixel by pixel.
            let mut decoded = vec![false; pixels.len()];
            let (mut i, mut value) = (0u32, false);
            for n in ann["segmentation"]["counts"].as_array().unwrap() {
                for _ in 0..n.as_u64().unwrap() {
                    let (x, y) = (i / h, i % h);
                    decoded[(y * w + x) as usize] = value;
                    i += 1;
                }
                value = !value;
            }
            assert_eq!(i, w * h);
            assert_eq!(decoded, pixels, "RLE of {}", image["sample_id"]);
            annotated += 1;
        }
    }
    let with_mask = want.values().filter(|r| r["mask_path"].is_string()).count();
    assert_eq!((annotated, with_mask), (10, 10));

    let yolo = d.path().join("yolo");
    export_ok(&out, "yolo", &yolo, &["--progress", "none"]);
    let yaml = std::fs::read_to_string(yolo.join("data.yaml")).unwrap();
    assert!(
        yaml.contains(
            "names:\n  0: \"apple\"\n  1: \"mug\"\n  2: \"sunset\"\n  3: \"wooden crate\"\n"
        ),
        "{yaml}"
    );
    assert!(
        yaml.contains(&format!(
            "path: \"{}\"",
            yolo.canonicalize().unwrap().display()
        )),
        "{yaml}"
    );
    let labels = tree(&yolo.join("labels"));
    // Images without a mask (the image sources) have no box, so no place in a detection set.
    assert_eq!(labels.len(), 10);
    for (path, bytes) in labels {
        let id = path.file_stem().unwrap().to_str().unwrap();
        let row = &want[id];
        let (pixels, w, h) = mask(&out, row);
        let [x, y, bw, bh] = extent(&pixels, w).map(|v| v as f64);
        let class = if row["label"] == "mug" { 1 } else { 3 };
        let (w, h) = (f64::from(w), f64::from(h));
        let line = format!(
            "{class} {:.6} {:.6} {:.6} {:.6}\n",
            (x + bw / 2.0) / w,
            (y + bh / 2.0) / h,
            bw / w,
            bh / h
        );
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            line,
            "{}",
            path.display()
        );
        assert!(yolo
            .join("images/train")
            .join(format!(
                "{id}.{}",
                if row["stage"] == "render" {
                    "png"
                } else {
                    "jpg"
                }
            ))
            .is_file());
    }
}

#[test]
fn every_view_of_a_source_lands_in_one_split() {
    let d = tempfile::tempdir().unwrap();
    let out = run_output(d.path());
    for seed in ["1", "2", "3", "4"] {
        let dest = d.path().join(format!("if-{seed}"));
        export_ok(
            &out,
            "imagefolder",
            &dest,
            &["--progress", "none", "--val-ratio", "0.5", "--seed", seed],
        );
        let mut split_of: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for split in ["train", "validation"] {
            let Ok(text) = std::fs::read_to_string(dest.join(split).join("metadata.jsonl")) else {
                continue;
            };
            for line in text.lines() {
                let v: Value = serde_json::from_str(line).unwrap();
                assert!(
                    dest.join(split)
                        .join(v["file_name"].as_str().unwrap())
                        .is_file(),
                    "{v}"
                );
                split_of
                    .entry(v["source_id"].as_str().unwrap().into())
                    .or_default()
                    .insert(split.into());
            }
        }
        assert_eq!(split_of.len(), 4, "{split_of:?}");
        assert!(
            split_of.values().all(|s| s.len() == 1),
            "seed {seed}: {split_of:?}"
        );
        assert_eq!(
            split_of["sunset"],
            BTreeSet::from(["validation".to_string()]),
            "the manifest's split wins"
        );
    }
    let o = export(&out, "coco", &d.path().join("bad"), &["--val-ratio", "1.5"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
}

#[test]
fn a_row_whose_path_leaves_the_output_is_refused_and_nothing_is_written() {
    let d = tempfile::tempdir().unwrap();
    let out = run_output(d.path());
    let journal = out.join(JOURNAL);
    let text_before = std::fs::read_to_string(&journal).unwrap();
    let (id, row) = exported(&out).into_iter().next().unwrap();
    let hostile = text_before.replace(
        &format!("\"image_path\":{}", row["image_path"]),
        "\"image_path\":\"../../etc/passwd\"",
    );
    assert_ne!(hostile, text_before);
    std::fs::write(&journal, hostile).unwrap();
    for format in FORMATS {
        let dest = d.path().join(format);
        let o = export(&out, format, &dest, &["--progress", "none"]);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(
            stderr.contains(&id) && stderr.contains("../../etc/passwd"),
            "{stderr}"
        );
        assert!(
            !dest.exists(),
            "{format}: a refused export wrote {}",
            dest.display()
        );
    }
    // The run's own folder is never an export's destination.
    std::fs::write(&journal, text_before).unwrap();
    let o = export(&out, "coco", &out, &["--progress", "none"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(out.join(JOURNAL).is_file());
}

#[test]
fn python_readers_open_every_layout() {
    if std::env::var("TEXAUG_PYTHON_CHECK").as_deref() != Ok("1") {
        eprintln!(
            "skipped: set TEXAUG_PYTHON_CHECK=1 (with ci/pycheck-requirements.txt installed: bash ci/setup-pycheck.sh) \
             to run this check"
        );
        return;
    }
    let python = std::env::var("TEXAUG_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../ci/check_export.py");
    let d = tempfile::tempdir().unwrap();
    let out = run_output(d.path());
    let want = exported(&out);
    let ids_in = |split: &str| -> Vec<String> {
        want.iter()
            .filter(|(_, r)| (r["source_id"] == "sunset") == (split == "validation"))
            .map(|(id, _)| id.clone())
            .collect()
    };
    for format in FORMATS {
        let dest = d.path().join(format);
        export_ok(
            &out,
            format,
            &dest,
            &["--progress", "none", "--shard-size", "4"],
        );
        let o = std::process::Command::new(&python)
            .args([
                script,
                dest.to_str().unwrap(),
                format,
                out.to_str().unwrap(),
            ])
            .output()
            .unwrap_or_else(|e| panic!("cannot start {python}: {e}"));
        // A missing package is a failure here, not a skip: TEXAUG_PYTHON_CHECK=1 asks for this check.
        assert!(o.status.success(), "{format}\n{}", text(&o));
        let summary: Value = serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("{format}: {e}\n{}", text(&o)));
        let splits = &summary["splits"];
        let (train, validation) = if format == "yolo" {
            ("train", "val")
        } else {
            ("train", "validation")
        };
        let mut want_train = ids_in("train");
        if format == "yolo" {
            want_train.retain(|id| want[id]["mask_path"].is_string());
            assert!(splits.get(validation).is_none(), "{summary}");
            assert_eq!(splits[train]["boxes"], 10, "{summary}");
            assert_eq!(
                summary["names"],
                serde_json::json!(["apple", "mug", "sunset", "wooden crate"])
            );
        } else {
            assert_eq!(
                splits[validation]["sample_ids"],
                serde_json::json!(ids_in("validation")),
                "{summary}"
            );
            assert_eq!(
                splits[validation]["labels"],
                serde_json::json!(["sunset"]),
                "{summary}"
            );
            assert_eq!(
                splits[train]["labels"],
                serde_json::json!(["apple", "mug", "wooden crate"]),
                "{summary}"
            );
        }
        assert_eq!(
            splits[train]["sample_ids"],
            serde_json::json!(want_train),
            "{format}: {summary}"
        );
        match format {
            "coco" => {
                assert_eq!(summary["masks_checked"], 10, "{summary}");
                assert_eq!(splits[train]["annotations"], 10, "{summary}");
            }
            "webdataset" => {
                assert_eq!(splits[train]["masks"], 10, "{summary}");
                assert_eq!(splits[train]["shards"], 3, "{summary}");
            }
            "hf-parquet" => {
                assert_eq!(splits[train]["masks"], 10, "{summary}");
                assert_eq!(splits[train]["boxes"], 10, "{summary}");
                assert_eq!(summary["files"]["train"], 3, "{summary}");
            }
            "imagefolder" => assert_eq!(splits[train]["boxes"], 10, "{summary}"),
            _ => {}
        }
    }
}
