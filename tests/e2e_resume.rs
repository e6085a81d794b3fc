//! End to end: a run killed with SIGKILL mid-way, then resumed, makes every planned sample exactly once and leaves
//! no temp or partial files. Synchronization is by the run's own JSON events, not by sleeping.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::Stdio;

#[test]
fn a_killed_run_resumes_to_exactly_the_plan() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write_sources(dir.path(), 8, false);
    let recipe = write_recipe(dir.path(), &manifest, 5, 4);
    let planned = planned_ids(&recipe, None);
    assert_eq!(planned.len(), 40);

    let mut child = texaug()
        .args(["run", recipe.to_str().unwrap(), "--progress", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut done_events = 0;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        let event: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("stdout line is not a JSON event ({e}): {line}"));
        if event["event"] == "sample_done" {
            done_events += 1;
            if done_events == 3 {
                break;
            }
        }
    }
    assert_eq!(done_events, 3, "the run ended before 3 samples were done");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let out = dir.path().join("out");
    let journal = out.join("manifest/part-0000-of-0001.journal.jsonl");
    let after_kill = std::fs::read_to_string(&journal).unwrap();
    let complete = after_kill.lines().filter(|l| l.ends_with('}')).count();
    assert!(
        complete >= 3,
        "the journal holds {complete} records, the events said 3"
    );
    assert!(
        complete < planned.len(),
        "the run finished before it was killed; the test proves nothing"
    );

    // Without --resume the output is refused, untouched.
    let o = run(&["run", recipe.to_str().unwrap(), "--progress", "none"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--resume"),
        "{}",
        text(&o)
    );

    let o = run(&[
        "run",
        recipe.to_str().unwrap(),
        "--progress",
        "none",
        "--resume",
    ]);
    assert!(o.status.success(), "{}", text(&o));

    // Every planned sample exactly once, in the journal and in the Parquet part.
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for line in std::fs::read_to_string(&journal).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["status"], "ok", "{line}");
        *seen
            .entry(v["sample_id"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    let mut planned_sorted = planned.clone();
    planned_sorted.sort();
    assert_eq!(seen.keys().cloned().collect::<Vec<_>>(), planned_sorted);
    assert!(
        seen.values().all(|n| *n == 1),
        "a sample was made twice: {seen:?}"
    );
    let rows = records(&out.join("manifest/part-0000-of-0001.parquet"));
    assert_eq!(rows.len(), planned.len());

    // Each sample folder holds its one image, and nothing else lies around.
    for (path, _) in tree(&out) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            !name.starts_with('.'),
            "leftover temp file {}",
            path.display()
        );
    }
    let sample_dirs = sample_dir_count(&out);
    assert_eq!(sample_dirs, planned.len());
    for id in &planned {
        let files = tree(&sample_dir(&out, id));
        assert_eq!(
            files.len(),
            1,
            "sample {id}: {:?}",
            files.keys().collect::<Vec<_>>()
        );
    }
}
