//! End to end: the bundle `make dist` writes runs the demo on a node that has nothing else. The test packs the
//! binary it was built with (ci/dist/build.sh), unpacks the tarball into a fresh folder and runs `bin/texaug-demo`
//! with an empty environment: no LIBTORCH, no LD_LIBRARY_PATH, no TEXAUG_* variables, a HOME without
//! `.cache/texaug`, and a PATH of the system's folders only.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn the_unpacked_bundle_runs_the_demo_with_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The vocabulary the bundle ships: the one the tests use (the Makefile exports TEXAUG_CLIP_VOCAB).
    let vocab = vocab();
    let o = Command::new("bash")
        .arg(repo().join("ci/dist/build.sh"))
        .env("TEXAUG_BIN", env!("CARGO_BIN_EXE_texaug"))
        .env("DIST_DIR", d.join("dist"))
        .env("TEXAUG_CLIP_VOCAB", &vocab)
        .output()
        .expect("bash runs ci/dist/build.sh");
    assert!(o.status.success(), "{}", text(&o));
    let tarball = PathBuf::from(String::from_utf8_lossy(&o.stdout).trim());
    let name = tarball.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with("texaug-") && name.ends_with("-linux-x86_64.tar.gz"),
        "{name}"
    );

    let node = d.join("node");
    std::fs::create_dir_all(node.join("home")).unwrap();
    let o = Command::new("tar")
        .args(["-xzf"])
        .arg(&tarball)
        .arg("-C")
        .arg(&node)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let top = node.join(name.trim_end_matches(".tar.gz"));
    let bin = top.join("bin/texaug");

    // The binary names its libraries relative to itself, never the build machine's libtorch.
    let o = Command::new("readelf")
        .arg("-d")
        .arg(&bin)
        .output()
        .unwrap();
    let dynamic = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        dynamic.contains("[$ORIGIN/../lib]"),
        "RUNPATH is not $ORIGIN/../lib:\n{dynamic}"
    );
    assert!(top.join("lib/libtorch_cpu.so").is_file() || top.join("lib/libtorch.so").is_file());
    // Moving the build machine's libtorch out of reach would be the strict proof; an empty environment and a
    // RUNPATH without its folder amount to the same, as the loader has no other way to find it.
    let libtorch = std::env::var("LIBTORCH").unwrap_or_default();
    assert!(
        libtorch.is_empty() || !dynamic.contains(&libtorch),
        "{dynamic}"
    );

    let o = Command::new(top.join("bin/texaug-demo"))
        .arg(node.join("demo"))
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", node.join("home"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    for recipe in ["demo", "demo-depth", "inpaint"] {
        let part = node.join(format!(
            "demo/output/{recipe}/manifest/part-0000-of-0001.parquet"
        ));
        let rows = records(&part);
        assert!(!rows.is_empty(), "{recipe}: no rows");
        assert!(
            rows.iter().all(|r| r.1 == "ok"),
            "{recipe}: {:?}",
            rows.iter().filter(|r| r.1 != "ok").collect::<Vec<_>>()
        );
    }
    assert!(
        !node.join("home/.cache/texaug/clip").exists()
            && !node.join("home/.cache/texaug/libtorch-2.11.0-cpu").exists(),
        "the bundle fetched into ~/.cache/texaug"
    );
}
