//! End to end: a run killed with SIGKILL again and again, at moments drawn from a seeded PRNG (right after `start`,
//! right after `device_ready`, or after the k-th `sample_done`), and resumed each time, ends with exactly the plan:
//! every planned sample once, byte-identical to an uninterrupted run, and no temp file anywhere. Synchronization is
//! by the run's own JSON events on stdout, never by sleeping.

mod common;

use common::*;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;

/// SplitMix64: a fixed seed gives the same kill schedule on every run.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The moment a run is killed at.
#[derive(Debug, Clone, Copy)]
enum KillAt {
    Start,
    DeviceReady,
    SampleDone(u32),
}

/// Runs once with JSON progress and kills it with SIGKILL at `at`. Returns whether it was killed (false: the run
/// ended, successfully, before the moment came).
fn run_and_kill(recipe: &Path, out: &Path, resume: bool, at: KillAt) -> bool {
    let mut args = vec![
        "run",
        recipe.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "--progress",
        "json",
    ];
    if resume {
        args.push("--resume");
    }
    let mut child = texaug()
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut done = 0u32;
    let mut reached = false;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        let event: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("stdout line is not a JSON event ({e}): {line}"));
        let name = event["event"].as_str().unwrap_or_default();
        if name == "sample_done" {
            done += 1;
        }
        reached = match at {
            KillAt::Start => name == "start",
            KillAt::DeviceReady => name == "device_ready",
            KillAt::SampleDone(k) => name == "sample_done" && done == k,
        };
        if reached {
            break;
        }
    }
    if reached {
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    } else {
        let status = child.wait().unwrap();
        assert!(
            status.success(),
            "a run ended with {status} before it was killed at {at:?}"
        );
    }
    reached
}

/// sha256 of every file under `dir`, by relative path.
fn digests(dir: &Path) -> BTreeMap<PathBuf, String> {
    tree(dir)
        .into_iter()
        .map(|(p, bytes)| (p, hex::encode(Sha256::digest(&bytes))))
        .collect()
}

#[test]
fn a_run_killed_at_random_moments_resumes_to_exactly_the_plan() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write_sources(dir.path(), 6, false);
    let recipe = write_recipe(dir.path(), &manifest, 4, 2);
    let mut planned = planned_ids(&recipe, None);
    assert_eq!(planned.len(), 24);
    planned.sort();

    let out = dir.path().join("killed");
    let mut rng = SplitMix64(0x7E8A_0C0F_FEE5_EED5);
    let mut kills = Vec::new();
    let mut finished = false;
    for attempt in 0..16 {
        let at = match rng.below(4) {
            0 => KillAt::Start,
            1 => KillAt::DeviceReady,
            _ => KillAt::SampleDone(1 + rng.below(3) as u32),
        };
        if run_and_kill(&recipe, &out, attempt > 0, at) {
            let journal = out.join("manifest/part-0000-of-0001.journal.jsonl");
            let lines = std::fs::read_to_string(journal)
                .map(|t| t.lines().count())
                .unwrap_or(0);
            eprintln!("kill {} at {at:?}: {lines} journal lines", kills.len() + 1);
            kills.push(at);
        } else {
            finished = true;
            break;
        }
        if kills.len() >= 12 {
            break;
        }
    }
    assert!(
        kills.len() >= 10,
        "only {} kills before the run finished: {kills:?}",
        kills.len()
    );
    if !finished {
        let o = run(&[
            "run",
            recipe.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
            "--progress",
            "none",
            "--resume",
        ]);
        assert!(o.status.success(), "{}", text(&o));
    }

    // The journal's latest record of every planned sample, each ok, and nothing else.
    let journal = out.join("manifest/part-0000-of-0001.journal.jsonl");
    let mut latest: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    for line in std::fs::read_to_string(&journal).unwrap().lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("journal line ({e}): {line}"));
        latest.insert(v["sample_id"].as_str().unwrap().to_string(), v);
    }
    assert_eq!(latest.keys().cloned().collect::<Vec<_>>(), planned);
    for (id, v) in &latest {
        assert_eq!(v["status"], "ok", "sample {id}: {v}");
    }

    // The Parquet part: every planned sample exactly once.
    let mut rows: BTreeMap<String, usize> = BTreeMap::new();
    for (_, status, error, id) in records(&out.join("manifest/part-0000-of-0001.parquet")) {
        assert_eq!(status, "ok", "sample {id}: {error}");
        *rows.entry(id).or_default() += 1;
    }
    assert_eq!(rows.keys().cloned().collect::<Vec<_>>(), planned);
    assert!(
        rows.values().all(|n| *n == 1),
        "a sample has several rows: {rows:?}"
    );

    // No temp file anywhere (the shard's `part-*.lock` is expected and is not one).
    for path in tree(&out).into_keys() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            !name.starts_with(".texaug-tmp-"),
            "leftover temp file {}",
            path.display()
        );
    }

    // Every sample file byte for byte what an uninterrupted run of the same recipe writes.
    let reference = dir.path().join("reference");
    let o = run(&[
        "run",
        recipe.to_str().unwrap(),
        "--output",
        reference.to_str().unwrap(),
        "--progress",
        "none",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let killed = digests(&out.join("samples"));
    let uninterrupted = digests(&reference.join("samples"));
    assert!(!uninterrupted.is_empty());
    assert_eq!(
        killed.keys().collect::<Vec<_>>(),
        uninterrupted.keys().collect::<Vec<_>>(),
        "the killed run's sample files differ from the uninterrupted run's"
    );
    for (path, sha) in &uninterrupted {
        assert_eq!(
            &killed[path],
            sha,
            "{} differs from the uninterrupted run's",
            path.display()
        );
    }
    let sample_dirs = sample_dir_count(&out);
    assert_eq!(sample_dirs, planned.len());
}
