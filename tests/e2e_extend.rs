//! End to end: sources added to a sharded run move only the new work. Four shards run a recipe; 5% more rows
//! are appended to its manifest; each shard resumes into its own folder. Almost nothing already made is made
//! again, what was made keeps its bytes (a fresh run of the grown manifest makes the same bytes), and the
//! shards merge against the grown plan.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const SHARDS: usize = 4;

fn run_ok(args: &[&str]) -> String {
    let o = run(args);
    assert!(o.status.success(), "texaug {args:?}\n{}", text(&o));
    text(&o)
}

/// N of the run summary's "N sample(s) made this run".
fn made(summary: &str) -> usize {
    let at = summary
        .find(" sample(s) made this run")
        .unwrap_or_else(|| panic!("no run summary in\n{summary}"));
    let digits: String = summary[..at]
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.chars().rev().collect::<String>().parse().unwrap()
}

/// sample id → the bytes of its files, over the `samples/` of every folder.
fn samples(dirs: &[PathBuf]) -> BTreeMap<String, Vec<(PathBuf, Vec<u8>)>> {
    let mut out: BTreeMap<String, Vec<(PathBuf, Vec<u8>)>> = BTreeMap::new();
    for d in dirs {
        for (path, bytes) in tree(&d.join("samples")) {
            // samples/<prefix>/<id>/<file>
            let id = path.iter().nth(1).unwrap().to_string_lossy().into_owned();
            out.entry(id).or_default().push((path, bytes));
        }
    }
    out
}

fn run_shards(recipe: &Path, shards: &[PathBuf], resume: bool) -> usize {
    let mut total = 0;
    for (i, dir) in shards.iter().enumerate() {
        let shard = format!("{i}/{SHARDS}");
        let mut extra = vec!["--shard", shard.as_str()];
        if resume {
            extra.push("--resume");
        }
        total += made(&run_recipe(recipe, dir, &extra));
    }
    total
}

#[test]
fn appended_sources_move_only_the_new_work() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let manifest = write_sources(d, 40, false);
    let recipe = write_recipe(d, &manifest, 2, 2);
    let shards: Vec<PathBuf> = (0..SHARDS).map(|i| d.join(format!("shard{i}"))).collect();
    assert_eq!(run_shards(&recipe, &shards, false), 80);
    let before = samples(&shards);
    assert_eq!(before.len(), 80);

    // Two more rows (5%) at the end of the manifest, as a second download would add them.
    let mut rows = std::fs::read_to_string(&manifest).unwrap();
    for i in 40..42 {
        let rel = format!("img/new/s{i}.png");
        write_png(&d.join(&rel), 48, 40, (i * 5) as u8);
        rows += &format!("img{i},{rel},mug,train\n");
    }
    std::fs::write(&manifest, rows).unwrap();
    let o = run_ok(&["plan", recipe.to_str().unwrap(), "--shards", "4"]);
    assert!(o.contains("84 jobs"), "{o}");
    // The shard each job of `plan --shards 4` names is the shard whose `plan --shard I/4` lists it.
    let o = run(&[
        "plan",
        recipe.to_str().unwrap(),
        "--shards",
        "4",
        "--format",
        "jsonl",
    ]);
    let named: BTreeMap<String, u64> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["sample_id"].as_str().unwrap().to_string(),
                v["shard"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(named.len(), 84);
    for i in 0..SHARDS {
        for id in planned_ids(&recipe, Some(&format!("{i}/{SHARDS}"))) {
            assert_eq!(named[&id], i as u64, "{id}");
        }
    }

    let again = run_shards(&recipe, &shards, true);
    let new_jobs = 4;
    assert!(
        again >= new_jobs && again - new_jobs <= 80 / 10,
        "the resumed shards made {again} samples for {new_jobs} new jobs: more than 10% of the 80 made before \
         moved to another shard"
    );
    let after = samples(&shards);
    for (id, files) in &before {
        assert_eq!(
            after[id].iter().find(|f| f.0 == files[0].0),
            Some(&files[0]),
            "sample {id} was rewritten"
        );
    }

    // What the shards hold is what a fresh run of the grown manifest makes, for at least 90% of the old samples.
    let fresh = d.join("fresh");
    run_recipe(&recipe, &fresh, &[]);
    let fresh = samples(std::slice::from_ref(&fresh));
    assert_eq!(fresh.len(), 84);
    let same = before
        .iter()
        .filter(|(id, files)| fresh[*id] == **files)
        .count();
    assert!(
        same * 10 >= before.len() * 9,
        "{same} of {} samples have the bytes a fresh run of the grown manifest makes",
        before.len()
    );

    eprintln!(
        "resumed shards made {again} samples for {new_jobs} new jobs; {same}/{} old samples equal a fresh run",
        before.len()
    );
    let merged = d.join("merged");
    let mut args = vec!["merge"];
    args.extend(shards.iter().map(|s| s.to_str().unwrap()));
    args.extend([
        "--recipe",
        recipe.to_str().unwrap(),
        "--out",
        merged.to_str().unwrap(),
    ]);
    let o = run_ok(&args);
    assert!(o.contains("0 missing"), "{o}");
    assert_eq!(samples(&[merged]).len(), 84);
}
