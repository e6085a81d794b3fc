//! End to end over the hostile corpus (`tests/hostile/`, made by `ci/hostile/make_corpus.py`): truncated and
//! corrupt files, bad accessors, escaping URIs, bombs. One `texaug run` over all of them must not panic, must give
//! each row exactly one record, fail each bad file alone with an error naming it, finish the good ones beside
//! them, and leak no byte of the files the escaping URIs aim at. Hostile manifests and recipes are checked with
//! `texaug validate`.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/hostile")
}

/// The secret files beside the corpus copy: text with a marker, and a valid PNG (so reading it would succeed).
const SECRET_TXT: &[u8] = b"HOSTILE-SECRET-7f3a9c1e-do-not-leak\n";

/// Copies the corpus into `<tmp>/hostile` and writes the secrets beside it; returns the copy.
fn corpus_copy(tmp: &Path) -> PathBuf {
    let dst = tmp.join("hostile");
    for e in walkdir::WalkDir::new(corpus()).into_iter().flatten() {
        let rel = e.path().strip_prefix(corpus()).unwrap();
        let to = dst.join(rel);
        if e.file_type().is_dir() {
            std::fs::create_dir_all(&to).unwrap();
        } else {
            std::fs::copy(e.path(), &to).unwrap();
        }
    }
    std::fs::write(tmp.join("hostile-secret.txt"), SECRET_TXT).unwrap();
    write_png(&tmp.join("hostile-secret.png"), 8, 8, 77);
    dst
}

fn expected() -> BTreeMap<String, serde_json::Value> {
    let text = std::fs::read_to_string(corpus().join("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn recipe(dir: &Path, manifest: &Path, stage: &str, model: &Path) -> PathBuf {
    let head = recipe_head(
        &format!("hostile-{stage}"),
        3,
        &format!("out-{stage}"),
        manifest,
        model,
        Some(4),
    );
    let text = head
        + &format!(
            r#"[[stage]]
kind = "{stage}"
prompts = ["a {{label}}"]
strength = 0.6
steps = 2
guidance = 2.0
size = 64
"#
        );
    let path = dir.join(format!("recipe-{stage}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// A tiny SD 2-depth model for the depth stage, made once per test binary.
fn tiny_depth_model() -> PathBuf {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("tiny-sd2-depth-e2e_hostile");
    if out.exists() {
        std::fs::remove_dir_all(&out).unwrap();
    }
    let o = run(&[
        "model",
        "init-tiny",
        "--kind",
        "sd2-depth",
        "--out",
        out.to_str().unwrap(),
        "--vocab",
        vocab().to_str().unwrap(),
        "--seed",
        "0",
    ]);
    assert!(o.status.success(), "init-tiny sd2-depth\n{}", text(&o));
    out
}

/// Runs `stage` over `manifest` (a file of the corpus copy) and checks every row against expected.json's
/// `<prefix>outcome` / `<prefix>error`.
fn run_and_check(tmp: &Path, copy: &Path, manifest: &str, stage: &str, model: &Path, prefix: &str) {
    let expected = expected();
    let recipe = recipe(tmp, &copy.join(manifest), stage, model);
    let started = std::time::Instant::now();
    let o = run(&["run", recipe.to_str().unwrap(), "--progress", "none"]);
    eprintln!(
        "texaug run ({stage}) over {manifest}: {:?}",
        started.elapsed()
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!stderr.contains("panicked"), "a panic\n{}", text(&o));
    assert!(
        matches!(o.status.code(), Some(0) | Some(2)),
        "exit code\n{}",
        text(&o)
    );

    let out = tmp.join(format!("out-{stage}"));
    let records = records(&out.join("manifest/part-0000-of-0001.parquet"));
    let rows = std::fs::read_to_string(copy.join(manifest)).unwrap();
    // source id → file, from the manifest the run read.
    let files: BTreeMap<String, String> = rows
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].to_string(), f[1].to_string())
        })
        .collect();
    let mut per_source: BTreeMap<&str, Vec<&(String, String, String, String)>> = BTreeMap::new();
    for r in &records {
        per_source.entry(r.0.as_str()).or_default().push(r);
    }
    let mut problems = Vec::new();
    let mut report = Vec::new();
    for (id, file) in &files {
        let want = &expected[file];
        let Some(rows) = per_source.get(id.as_str()) else {
            problems.push(format!("{file}: no record"));
            continue;
        };
        if rows.len() != 1 {
            problems.push(format!("{file}: {} records", rows.len()));
            continue;
        }
        let (_, status, error, sample_id) = rows[0];
        report.push(format!("{file}\t{status}\t{error}"));
        let outcome = want[format!("{prefix}outcome")].as_str().unwrap();
        if status != outcome {
            problems.push(format!("{file}: {status} (want {outcome}), error: {error}"));
            continue;
        }
        if outcome == "failed" {
            let frag = want[format!("{prefix}error")].as_str().unwrap();
            if error.trim().is_empty() || !error.contains(frag) {
                problems.push(format!("{file}: error lacks `{frag}`: {error}"));
            }
            if !error.contains(file.as_str()) {
                problems.push(format!("{file}: error does not name the file: {error}"));
            }
            if sample_dir(&out, sample_id).exists() {
                problems.push(format!("{file}: failed, yet its sample folder exists"));
            }
        } else {
            let sample = sample_dir(&out, sample_id);
            let written = if want["kind"] == "mesh" {
                sample.join("asset.glb").is_file() && sample.join("texture_0.png").is_file()
            } else {
                sample.join("image.png").is_file()
            };
            if !written {
                problems.push(format!("{file}: ok but its files are missing"));
            }
        }
    }
    assert_eq!(
        records.len(),
        files.len(),
        "one record per manifest row\n{}",
        text(&o)
    );
    let journal =
        std::fs::read_to_string(out.join("manifest/part-0000-of-0001.journal.jsonl")).unwrap();
    assert_eq!(
        journal.lines().count(),
        files.len(),
        "one journal line per row"
    );
    // No byte of the secret in any output file (journal and Parquet included), nor in what the run printed.
    let secret = SECRET_TXT.trim_ascii();
    for (path, bytes) in tree(&out) {
        assert!(
            !contains(&bytes, secret),
            "the secret leaked into {}",
            path.display()
        );
    }
    assert!(!contains(&o.stdout, secret) && !contains(&o.stderr, secret));
    assert!(
        problems.is_empty(),
        "{} problems:\n{}\n\nall rows:\n{}",
        problems.len(),
        problems.join("\n"),
        report.join("\n")
    );
}

#[test]
fn a_run_over_the_hostile_corpus_fails_each_bad_file_alone_and_finishes_the_good_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let copy = corpus_copy(tmp.path());
    let listed = std::fs::read_to_string(copy.join("manifest.csv")).unwrap();
    assert_eq!(
        listed.lines().count() - 1,
        expected().len(),
        "manifest.csv vs expected.json"
    );
    run_and_check(tmp.path(), &copy, "manifest.csv", "style", tiny_model(), "");
}

#[test]
fn the_depth_stage_refuses_the_meshes_with_bad_geometry() {
    let tmp = tempfile::tempdir().unwrap();
    let copy = corpus_copy(tmp.path());
    let listed = std::fs::read_to_string(copy.join("manifest.csv")).unwrap();
    let mut meshes: Vec<&str> = listed.lines().take(1).collect();
    meshes.extend(listed.lines().skip(1).filter(|l| l.ends_with(",mesh")));
    std::fs::write(copy.join("meshes.csv"), meshes.join("\n") + "\n").unwrap();
    let model = tiny_depth_model();
    run_and_check(tmp.path(), &copy, "meshes.csv", "depth", &model, "depth_");
}

/// `validate` on a recipe from `tests/hostile/recipes/`, its model set to the tiny one; returns (exit, output).
fn validate_hostile(tmp: &Path, name: &str) -> (Option<i32>, String, PathBuf) {
    let copy = corpus_copy(tmp);
    let path = copy.join("recipes").join(name);
    let text_in = std::fs::read_to_string(&path)
        .unwrap()
        .replace("MODEL", tiny_model().to_str().unwrap());
    std::fs::write(&path, text_in).unwrap();
    let o = run(&["validate", path.to_str().unwrap()]);
    let all = text(&o);
    assert!(!all.contains("panicked"), "{all}");
    (o.status.code(), all, path)
}

#[test]
fn a_csv_with_a_bom_and_crlf_validates_and_plans_its_rows() {
    let tmp = tempfile::tempdir().unwrap();
    // nan_guidance's manifest is the BOM one; build a sound recipe from unknown_key's without the bad key.
    let copy = corpus_copy(tmp.path());
    let path = copy.join("recipes/bom.toml");
    let text_in = std::fs::read_to_string(copy.join("recipes/unknown_key.toml"))
        .unwrap()
        .replace("stepz = 3\n", "")
        .replace("MODEL", tiny_model().to_str().unwrap());
    std::fs::write(&path, text_in).unwrap();
    let o = run(&["validate", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let jobs = planned(&path);
    let sources: Vec<&str> = jobs.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(sources.len(), 2, "{jobs:?}");
    assert!(
        sources.contains(&"apple") && sources.contains(&"quad"),
        "{jobs:?}"
    );
}

#[test]
fn hostile_manifests_and_recipes_fail_validate_with_located_messages() {
    let cases: &[(&str, &[&str])] = &[
        ("unknown_key.toml", &["stepz"]),
        ("wrong_type.toml", &["invalid type: string \"two\""]),
        ("nan_guidance.toml", &["guidance"]),
        ("inf_guidance.toml", &["guidance"]),
    ];
    for (name, frags) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let (code, all, path) = validate_hostile(tmp.path(), name);
        assert_eq!(code, Some(1), "{name}\n{all}");
        for f in *frags {
            assert!(all.contains(f), "{name}: no `{f}`\n{all}");
        }
        // file:line:col — the recipe's name followed by `:<line>:<col>`.
        let at = format!("{}:", path.display());
        let located = all.lines().any(|l| {
            l.find(&at).is_some_and(|i| {
                let rest = &l[i + at.len()..];
                let mut parts = rest.splitn(3, ':');
                let (a, b) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                a.parse::<usize>().is_ok_and(|n| n > 0) && b.parse::<usize>().is_ok()
            })
        });
        assert!(located, "{name}: no {at}<line>:<col>\n{all}");
    }
    // Duplicate ids: a recipe on that manifest.
    let tmp = tempfile::tempdir().unwrap();
    let copy = corpus_copy(tmp.path());
    let path = copy.join("recipes/dup.toml");
    let text_in = std::fs::read_to_string(copy.join("recipes/unknown_key.toml"))
        .unwrap()
        .replace("stepz = 3\n", "")
        .replace("bom_crlf.csv", "duplicate_ids.csv")
        .replace("MODEL", tiny_model().to_str().unwrap());
    std::fs::write(&path, text_in).unwrap();
    let o = run(&["validate", path.to_str().unwrap()]);
    let all = text(&o);
    assert_eq!(o.status.code(), Some(1), "{all}");
    assert!(all.contains("duplicate id `apple`"), "{all}");
    assert!(all.contains("duplicate_ids.csv:3"), "{all}");
}
