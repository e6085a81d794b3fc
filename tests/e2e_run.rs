//! End to end: runs of the `texaug` binary on a tiny model — outputs, determinism, failure isolation, fail-fast.

mod common;

use common::*;
use std::path::Path;

fn part(out: &Path) -> std::path::PathBuf {
    out.join("manifest/part-0000-of-0001.parquet")
}

#[test]
fn a_run_makes_every_planned_sample_with_its_files() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write_sources(dir.path(), 3, true);
    let recipe = write_recipe(dir.path(), &manifest, 2, 2);
    let o = run(&["run", recipe.to_str().unwrap(), "--progress", "none"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = dir.path().join("out");
    let rows = manifest_rows(&part(&out));
    let planned = planned_ids(&recipe, None);
    assert_eq!(rows.keys().cloned().collect::<Vec<_>>(), planned);
    assert_eq!(planned.len(), 8);
    for id in &planned {
        let sample = sample_dir(&out, id);
        let has_image = sample.join("image.png").is_file();
        let has_mesh = sample.join("asset.glb").is_file() && sample.join("texture_0.png").is_file();
        assert!(
            has_image ^ has_mesh,
            "sample {id} has neither an image nor a GLB + texture"
        );
        if has_image {
            // Back at the source's size, not the model's.
            let img = image::open(sample.join("image.png")).unwrap();
            assert_ne!((img.width(), img.height()), (64, 64));
        }
    }
    assert!(out.join("run.toml").is_file());
    let run_toml = std::fs::read_to_string(out.join("run.toml")).unwrap();
    assert!(
        run_toml.contains("sha256"),
        "run.toml lacks model file hashes:\n{run_toml}"
    );
}

#[test]
fn two_runs_of_one_recipe_give_identical_bytes_and_manifests() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write_sources(dir.path(), 2, true);
    let recipe = write_recipe(dir.path(), &manifest, 2, 2);
    let outs: Vec<_> = ["a", "b"].iter().map(|n| dir.path().join(n)).collect();
    for out in &outs {
        let o = run(&[
            "run",
            recipe.to_str().unwrap(),
            "--progress",
            "none",
            "--output",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", text(&o));
    }
    let (a, b) = (
        tree(&outs[0].join("samples")),
        tree(&outs[1].join("samples")),
    );
    assert!(!a.is_empty());
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (k, v) in &a {
        assert!(b[k] == *v, "{} differs between two runs", k.display());
    }
    assert_eq!(
        manifest_rows(&part(&outs[0])),
        manifest_rows(&part(&outs[1]))
    );
}

#[test]
fn bad_inputs_fail_alone_with_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_sources(d, 2, false);
    std::fs::write(
        d.join("corrupt.png"),
        b"\x89PNG\r\n\x1a\n this is not a png",
    )
    .unwrap();
    std::fs::write(
        d.join("truncated.glb"),
        b"glTF\x02\x00\x00\x00\xff\xff\x00\x00",
    )
    .unwrap();
    write_gltf(&d.join("notex/missing.gltf"), "gone.png", true);
    write_png(&d.join("nouv/tex.png"), 16, 16, 9);
    write_gltf(&d.join("nouv/nouv.gltf"), "tex.png", false);
    let manifest = d.join("bad.csv");
    std::fs::write(
        &manifest,
        "id,path,label\nimg0,img/mug/s0.png,mug\nimg1,img/cup/s1.png,cup\ncorrupt,corrupt.png,mug\n\
         truncated,truncated.glb,mug\nmissing,notex/missing.gltf,mug\nnouv,nouv/nouv.gltf,mug\n",
    )
    .unwrap();
    let recipe = write_recipe(d, &manifest, 1, 2);
    let o = run(&["run", recipe.to_str().unwrap(), "--progress", "none"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let rows = common::records(&part(&d.join("out")));
    let by_source: std::collections::BTreeMap<_, _> = rows
        .iter()
        .map(|r| (r.0.clone(), (r.1.clone(), r.2.clone())))
        .collect();
    assert_eq!(by_source.len(), 6);
    for ok in ["img0", "img1"] {
        assert_eq!(by_source[ok].0, "ok", "{ok}: {:?}", by_source[ok]);
    }
    for (bad, names) in [
        ("corrupt", "corrupt.png"),
        ("truncated", "truncated.glb"),
        ("missing", "gone.png"),
        ("nouv", "nouv.gltf"),
    ] {
        let (status, error) = &by_source[bad];
        assert_eq!(status, "failed", "{bad}");
        assert!(
            error.contains(names),
            "{bad}: error does not name {names}: {error}"
        );
    }
    // Only the two good samples have folders; the failed ones left nothing behind.
    assert_eq!(sample_dir_count(&d.join("out")), 2);
}

#[test]
fn fail_fast_stops_early_and_keeps_what_is_done() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_sources(d, 4, false);
    std::fs::write(d.join("corrupt.png"), b"not an image").unwrap();
    let manifest = d.join("ff.csv");
    // The corrupt row comes first in the manifest; sample order is by id, so some good samples may precede it.
    let mut rows = String::from("id,path,label\ncorrupt,corrupt.png,mug\n");
    for i in 0..4 {
        let label = if i % 2 == 0 { "mug" } else { "cup" };
        rows.push_str(&format!("img{i},img/{label}/s{i}.png,{label}\n"));
    }
    std::fs::write(&manifest, rows).unwrap();
    let recipe = write_recipe(d, &manifest, 3, 1);
    let o = run(&[
        "run",
        recipe.to_str().unwrap(),
        "--progress",
        "none",
        "--fail-fast",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let rows = common::records(&part(&d.join("out")));
    assert!(rows.iter().any(|r| r.1 == "failed"));
    // Samples after the first failure are not started, apart from the few already queued (two units per device,
    // one per prepare thread); so when the failure comes early in the plan, the run must end short.
    let plan = planned(&recipe);
    let first_bad = plan.iter().position(|(_, src)| src == "corrupt").unwrap();
    if first_bad + 6 < plan.len() {
        assert!(
            rows.len() < plan.len(),
            "fail-fast ran all {} samples",
            rows.len()
        );
    }
    let ok: Vec<_> = rows.iter().filter(|r| r.1 == "ok").collect();
    for r in &ok {
        let image = sample_dir(&d.join("out"), &r.3).join("image.png");
        assert!(image.is_file(), "{} is missing", image.display());
    }
    // Every sample folder is one of a recorded ok row: a failed or never-started sample leaves none.
    assert_eq!(sample_dir_count(&d.join("out")), ok.len());
    // The rest is made by a resumed run; the failure stays failed.
    let o = run(&[
        "run",
        recipe.to_str().unwrap(),
        "--progress",
        "none",
        "--resume",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let rows = common::records(&part(&d.join("out")));
    assert_eq!(rows.len(), 15);
    assert_eq!(rows.iter().filter(|r| r.1 == "failed").count(), 3);
}

/// The decoded pixels of every PNG under a sample folder tree, by relative path.
fn pngs(samples: &Path) -> std::collections::BTreeMap<std::path::PathBuf, image::RgbaImage> {
    tree(samples)
        .into_iter()
        .filter(|(p, _)| p.extension().is_some_and(|e| e == "png"))
        .map(|(p, bytes)| (p, image::load_from_memory(&bytes).unwrap().to_rgba8()))
        .collect()
}

#[test]
fn batch_one_and_batch_four_agree_within_one_level() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write_sources(dir.path(), 6, true);
    let mut runs = Vec::new();
    for batch in [1, 4] {
        let sub = dir.path().join(format!("b{batch}"));
        std::fs::create_dir_all(&sub).unwrap();
        let recipe = write_recipe(&sub, &manifest, 2, batch);
        let units = planned_units(&recipe, None);
        let mut per_unit = std::collections::BTreeMap::new();
        for (_, unit) in &units {
            *per_unit.entry(*unit).or_insert(0) += 1;
        }
        let largest = per_unit.values().copied().max().unwrap();
        // The agreement means something only if batch 4 really runs several jobs in one UNet call.
        assert_eq!(largest, batch, "batch {batch}: units {per_unit:?}");
        let out = sub.join("out");
        let o = run(&[
            "run",
            recipe.to_str().unwrap(),
            "--progress",
            "none",
            "--output",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", text(&o));
        runs.push(pngs(&out.join("samples")));
    }
    let (one, four) = (&runs[0], &runs[1]);
    assert_eq!(
        one.keys().collect::<Vec<_>>(),
        four.keys().collect::<Vec<_>>()
    );
    assert!(one.len() >= 14, "{} images", one.len());
    let (mut worst, mut differing, mut total) = (0u8, 0usize, 0usize);
    for (path, a) in one {
        let b = &four[path];
        assert_eq!(a.dimensions(), b.dimensions(), "{}", path.display());
        for (x, y) in a.as_raw().iter().zip(b.as_raw()) {
            worst = worst.max(x.abs_diff(*y));
            differing += usize::from(x != y);
            total += 1;
        }
    }
    eprintln!(
        "batch 1 vs 4: {} images, max {worst}, {differing} of {total} values differ",
        one.len()
    );
    assert!(worst <= 1, "batch 1 and batch 4 differ by {worst} levels");
}

#[test]
fn json_progress_reports_device_throughput_and_each_samples_own_time() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write_sources(dir.path(), 3, true);
    let recipe = write_recipe(dir.path(), &manifest, 2, 2);
    let started = std::time::Instant::now();
    let o = run(&["run", recipe.to_str().unwrap(), "--progress", "json"]);
    let wall_ms = started.elapsed().as_millis() as i64;
    assert!(o.status.success(), "{}", text(&o));
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let batches: Vec<_> = events
        .iter()
        .filter(|e| e["event"] == "device_batch")
        .collect();
    let last = batches.last().expect("no device_batch event");
    assert_eq!(last["device"], "cpu");
    assert_eq!(last["samples"], 8, "{last}");
    // Three images, and the mesh's base-color atlas: one request each.
    assert!(last["images"].as_u64().unwrap() >= 8, "{last}");
    assert!(last["images_per_s"].as_f64().unwrap() > 0.0, "{last}");
    let busy = last["busy"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&busy), "{last}");
    let done: Vec<_> = events
        .iter()
        .filter(|e| e["event"] == "sample_done")
        .collect();
    assert_eq!(done.len(), 8);
    for e in done {
        let (own, queue) = (
            e["duration_ms"].as_i64().unwrap(),
            e["queue_ms"].as_i64().unwrap(),
        );
        assert!(own >= 0 && queue >= 0, "{e}");
        // Both are parts of the sample's wall time, which lies inside the run's.
        assert!(own + queue <= wall_ms + 1, "{e} in a run of {wall_ms} ms");
    }
}
