//! Replays every committed fuzz input — the corpora in `fuzz/corpus/<target>/` and the crashes found and fixed in
//! `fuzz/crashes/<target>/` — through its harness, so a fixed crash stays fixed and the corpora keep passing.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

fn inputs(folder: &Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    files.sort();
    files
}

fn replay(target: &str) {
    let harness = texaug_fuzz::harness(target).expect("a known target");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let corpus = inputs(&root.join("corpus").join(target));
    assert!(
        corpus.len() >= 5,
        "fuzz/corpus/{target} holds {} inputs; it is seeded by `make fuzz-seed`",
        corpus.len()
    );
    let crashes = inputs(&root.join("crashes").join(target));
    let mut failed = Vec::new();
    for file in corpus.iter().chain(&crashes) {
        let data = std::fs::read(file).expect("read a fuzz input");
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| harness(&data))) {
            let message = texaug_pipeline::panic_message(panic.as_ref());
            failed.push(format!(
                "{}: {message}",
                file.strip_prefix(root).unwrap_or(file).display()
            ));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} inputs of target `{target}` fail:\n{}",
        failed.len(),
        corpus.len() + crashes.len(),
        failed.join("\n")
    );
}

#[test]
fn every_target_has_a_corpus_folder() {
    for target in texaug_fuzz::TARGETS {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("corpus")
            .join(target);
        assert!(dir.is_dir(), "no {}", dir.display());
    }
}

#[test]
fn mesh_inputs_replay() {
    replay("mesh")
}

#[test]
fn image_inputs_replay() {
    replay("image")
}

#[test]
fn depth_image_inputs_replay() {
    replay("depth_image")
}

#[test]
fn manifest_csv_inputs_replay() {
    replay("manifest_csv")
}

#[test]
fn manifest_jsonl_inputs_replay() {
    replay("manifest_jsonl")
}

#[test]
fn manifest_parquet_inputs_replay() {
    replay("manifest_parquet")
}

#[test]
fn recipe_inputs_replay() {
    replay("recipe")
}

#[test]
fn checkpoint_inputs_replay() {
    replay("checkpoint")
}
