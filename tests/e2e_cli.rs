//! End to end: validate's located diagnostics, plan's shards, merge of shards, and the manifest in other readers.

mod common;

use common::*;
use std::collections::BTreeSet;
use std::path::Path;

fn recipe_without_model(dir: &Path, manifest: &str, extra_stage_lines: &str) -> std::path::PathBuf {
    let text = format!(
        "name = \"cli\"\nseed = 3\n\n[sources]\nmanifest = \"{manifest}\"\n\n[model]\npath = \"no-such-model\"\n\n\
         [[stage]]\nkind = \"style\"\nprompts = [\"a {{label}}\"]\nvariants = 3\n{extra_stage_lines}"
    );
    let p = dir.join("recipe.toml");
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn validate_lists_every_problem_at_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_png(&d.join("a.png"), 8, 8, 0);
    std::fs::write(
        d.join("m.csv"),
        "id,path,label\na,a.png,mug\nb,missing.png,mug\n",
    )
    .unwrap();
    let recipe = recipe_without_model(d, "m.csv", "steps = 0\nsize = 60\n");
    let o = run(&["validate", recipe.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    let r = recipe.display().to_string();
    let m = d.join("m.csv").display().to_string();
    for expected in [
        format!("{r}:14:9: steps must be in 1..=1000"),
        format!("{r}:15:8: size must be a multiple of 8"),
        format!("{r}:8:8: model folder not found"),
        format!("{m}:3:1: source `b`: file not found"),
    ] {
        assert!(
            stdout.contains(&expected),
            "missing `{expected}` in\n{stdout}"
        );
    }
    assert!(stdout.contains("fix:"), "{stdout}");

    // Unknown keys are errors too, each at its line, naming the valid keys.
    let recipe = recipe_without_model(d, "m.csv", "stepz = 4\nsized = 64\n");
    let o = run(&["validate", recipe.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        stdout.contains(&format!("{r}:14:1: unknown key `stepz`")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("{r}:15:1: unknown key `sized`")),
        "{stdout}"
    );
    assert!(stdout.contains("did you mean `steps`"), "{stdout}");
}

#[test]
fn a_valid_recipe_validates() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write_sources(dir.path(), 2, true);
    let recipe = write_recipe(dir.path(), &manifest, 1, 1);
    let o = run(&["validate", recipe.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn plan_shards_partition_the_jobs_into_whole_batches() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut rows = String::from("id,path,label\n");
    for i in 0..7 {
        rows.push_str(&format!("s{i},s{i}.png,mug\n"));
    }
    std::fs::write(d.join("m.csv"), rows).unwrap();
    let recipe = recipe_without_model(d, "m.csv", "\n[devices]\nbatch = 3\n");
    let all = planned_units(&recipe, None);
    assert_eq!(all.len(), 21);
    let unit_of: std::collections::BTreeMap<&str, u64> =
        all.iter().map(|(id, u)| (id.as_str(), *u)).collect();
    let mut union = Vec::new();
    for i in 0..4 {
        let part = planned_units(&recipe, Some(&format!("{i}/4")));
        // A shard takes whole batches of the full plan: every job of a batch it holds, with the same batch.
        let units: BTreeSet<u64> = part.iter().map(|(_, u)| *u).collect();
        for (id, u) in &part {
            assert_eq!(
                unit_of[id.as_str()],
                *u,
                "{id} is in another batch in the full plan"
            );
        }
        let whole: usize = all.iter().filter(|(_, u)| units.contains(u)).count();
        assert_eq!(part.len(), whole, "shard {i} splits a batch");
        union.extend(part.into_iter().map(|(id, _)| id));
    }
    union.sort();
    let mut sorted: Vec<String> = all.into_iter().map(|(id, _)| id).collect();
    sorted.sort();
    assert_eq!(union, sorted, "the shards partition the plan");
    let o = run(&["plan", recipe.to_str().unwrap(), "--shards", "0"]);
    assert!(
        !o.status.success() && text(&o).contains("--shards N with N ≥ 1"),
        "{}",
        text(&o)
    );
    let o = run(&["plan", recipe.to_str().unwrap(), "--shard", "4/4"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "a bad shard is a usage error\n{}",
        text(&o)
    );
}

#[test]
fn merged_shards_equal_the_unsharded_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let manifest = write_sources(d, 3, true);
    let recipe = write_recipe(d, &manifest, 2, 2);
    let whole = d.join("whole");
    run_recipe(&recipe, &whole, &[]);
    let shards: Vec<_> = (0..2).map(|i| d.join(format!("shard{i}"))).collect();
    for (i, s) in shards.iter().enumerate() {
        run_recipe(&recipe, s, &["--shard", &format!("{i}/2")]);
    }
    let merged = d.join("merged");
    let o = run(&[
        "merge",
        shards[0].to_str().unwrap(),
        shards[1].to_str().unwrap(),
        "--out",
        merged.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));

    let whole_rows = records(&whole.join("manifest/part-0000-of-0001.parquet"));
    let merged_rows = records(&merged.join("manifest/part-merged.parquet"));
    let ids = |rows: &[(String, String, String, String)]| {
        rows.iter().map(|r| r.3.clone()).collect::<BTreeSet<_>>()
    };
    assert_eq!(ids(&whole_rows), ids(&merged_rows));
    assert_eq!(merged_rows.len(), whole_rows.len());
    assert_eq!(tree(&whole.join("samples")), tree(&merged.join("samples")));

    // One shard alone lacks planned samples: refused, naming the other shard, and the earlier merge stays.
    let o = run(&[
        "merge",
        shards[0].to_str().unwrap(),
        "--out",
        merged.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("missing") && text(&o).contains("shard 1/2"),
        "{}",
        text(&o)
    );
    assert_eq!(tree(&whole.join("samples")), tree(&merged.join("samples")));
    // A folder that is no earlier merge is never replaced.
    let other = d.join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("notes.txt"), b"mine").unwrap();
    let o = run(&[
        "merge",
        shards[0].to_str().unwrap(),
        shards[1].to_str().unwrap(),
        "--out",
        other.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("not empty"), "{}", text(&o));

    let o = run(&["inspect", merged.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains(&format!(
            "{} samples, {} ok, 0 failed",
            whole_rows.len(),
            whole_rows.len()
        )),
        "{stdout}"
    );
}

#[test]
fn the_manifest_opens_in_pyarrow_and_duckdb() {
    if std::env::var("TEXAUG_PYTHON_CHECK").as_deref() != Ok("1") {
        eprintln!("skipped: set TEXAUG_PYTHON_CHECK=1 (with pyarrow and duckdb installed) to run this check");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let manifest = write_sources(dir.path(), 2, true);
    let recipe = write_recipe(dir.path(), &manifest, 1, 1);
    let o = run(&["run", recipe.to_str().unwrap(), "--progress", "none"]);
    assert!(o.status.success(), "{}", text(&o));
    let part = dir.path().join("out/manifest/part-0000-of-0001.parquet");
    let script = r#"
import sys, pyarrow.parquet as pq, duckdb
p = sys.argv[1]
t = pq.read_table(p)
assert t.num_rows == 3, t.num_rows
meta = pq.read_metadata(p).metadata
assert meta[b"schema_version"] == b"4", meta
cols = t.column_names
assert cols[0] == "sample_id" and cols[31:34] == ["texaug_version", "views", "coverage"], cols
assert cols[-1] == "clip_score", cols
import pyarrow as pa
texts = [f for f in t.schema if f.name in ("sample_id", "prompt", "status", "split", "error")]
for f in texts:
    # Plain UTF-8, which every reader opens; string views are not (older pyarrow, DuckDB, Daft).
    assert f.type in (pa.string(), pa.large_string()), (f.name, f.type)
con = duckdb.connect()
n, ok = con.execute(f"select count(*), count(*) filter (where status = 'ok') from read_parquet('{p}')").fetchall()[0]
assert (n, ok) == (3, 3), (n, ok)
seeds = con.execute(f"select min(seed) from read_parquet('{p}')").fetchall()[0][0]
assert seeds >= 0
types = dict(con.execute(f"select column_name, column_type from (describe select * from read_parquet('{p}'))").fetchall())
assert types["prompt"] == "VARCHAR" and types["seed"] == "BIGINT", types
try:
    import pandas  # optional: CI installs pyarrow and DuckDB only
except ImportError:
    pandas = None
if pandas is not None:
    assert list(t.to_pandas()["status"]) == ["ok"] * 3
print("ok")
"#;
    let python = std::env::var("TEXAUG_PYTHON").unwrap_or_else(|_| "python3".into());
    let o = std::process::Command::new(&python)
        .args(["-c", script, part.to_str().unwrap()])
        .output()
        .unwrap_or_else(|e| panic!("cannot start {python}: {e}"));
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn a_missing_gpu_is_a_usage_error_that_touches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("m.csv"), "id,path,label\na,a.png,mug\n").unwrap();
    let recipe = recipe_without_model(d, "m.csv", "");
    let out = d.join("out");
    let o = run(&[
        "run",
        recipe.to_str().unwrap(),
        "--devices",
        "cuda:99",
        "--output",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("cuda:99"),
        "{}",
        text(&o)
    );
    assert!(
        !out.exists(),
        "a run that could not start wrote {}",
        out.display()
    );
}

#[test]
fn a_reader_that_closes_the_pipe_ends_texaug_quietly() {
    // `texaug plan … | head -1`: the plan (6,000 lines, far over a pipe's buffer) meets a closed pipe. texaug must
    // end as `ls | head` does (SIGPIPE or success), not panic on the failed print.
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let mut rows = String::from("id,path,label\n");
    for i in 0..2000 {
        rows.push_str(&format!("source-{i:05},s{i}.png,mug\n"));
    }
    std::fs::write(dir.path().join("m.csv"), rows).unwrap();
    let recipe = recipe_without_model(dir.path(), "m.csv", "");
    let mut child = texaug()
        .args(["plan", recipe.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 16];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    // The read end is closed here (dropped above); the rest of the plan hits a closed pipe.
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert!(
            out.status.success() || out.status.signal() == Some(13),
            "{:?}: {stderr}",
            out.status
        );
    }
}
