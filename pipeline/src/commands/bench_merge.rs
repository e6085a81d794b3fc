//! `texaug dev bench-merge`: the cluster's two bookkeeping rates, measured on this machine with synthetic rows —
//! a shard's durable journal append (write + fsync per sample) and a merge of N rows from S shard folders
//! against their plan (read, dedupe, coverage, one hard link per sample file, the merged Parquet part).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::output::layout::{journal_path, sample_dir, sample_rel_file};
use crate::output::ledger::Ledger;
use crate::output::merge::merge;
use crate::output::merge_plan::MergePlan;
use crate::output::record::SampleRecord;
use crate::plan::jobs::sample_id;
use crate::plan::Shard;

pub struct BenchMergeArgs {
    pub dir: PathBuf,
    pub rows: usize,
    pub shards: usize,
    pub appends: usize,
}

fn synthetic(i: usize) -> SampleRecord {
    let source = format!("obj{:07}", i / 8);
    let id = sample_id(&source, "style", (i % 8) as u32);
    SampleRecord {
        image_path: Some(sample_rel_file(&id, "image.png")),
        sample_id: id,
        run_id: "bench".into(),
        recipe_hash: "b".repeat(64),
        source_path: format!("/data/objects/{source}.png"),
        source_id: source,
        source_kind: "image".into(),
        label: ["mug", "chair", "bottle", "lamp"][i % 4].into(),
        split: Some("train".into()),
        stage: "style".into(),
        variant: (i % 8) as i64,
        prompt: "a mug carved from oak, studio photo".into(),
        negative_prompt: "blurry, low quality".into(),
        seed: (i as i64) << 20,
        strength: 0.6,
        guidance: 7.5,
        steps: 30,
        scheduler: "ddim".into(),
        model_id: "stable-diffusion-v1-5/stable-diffusion-v1-5".into(),
        model_hash: "m".repeat(64),
        depth_source: None,
        width: Some(512),
        height: Some(512),
        texture_path: None,
        asset_path: None,
        output_sha256: Some("0".repeat(64)),
        device: "cuda:0".into(),
        duration_ms: 412,
        queue_ms: Some(3),
        status: "ok".into(),
        error: None,
        texaug_version: env!("CARGO_PKG_VERSION").into(),
        views: None,
        coverage: None,
        ..SampleRecord::default()
    }
}

/// Peak resident memory since the last reset, in MiB (Linux `VmHWM`).
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

pub fn bench_merge(args: &BenchMergeArgs) -> Result<ExitCode> {
    if args.dir.exists() && std::fs::read_dir(&args.dir)?.next().is_some() {
        bail!(
            "{} is not empty; pass a new folder (the benchmark writes {} sample folders)",
            args.dir.display(),
            args.rows
        );
    }
    let shards = args.shards.max(1);

    // 1. The durable append a shard makes per sample.
    let ledger_dir = args.dir.join("append");
    let mut ledger = Ledger::open(&ledger_dir, Shard::ALL, false)?;
    let t = Instant::now();
    for i in 0..args.appends {
        ledger.append(synthetic(i))?;
    }
    let append_s = t.elapsed().as_secs_f64();
    ledger.finish()?;
    println!(
        "journal append (write + fsync, Parquet part refreshed as a run does): {} records in {append_s:.2} s = {:.0} records/s",
        args.appends,
        args.appends as f64 / append_s.max(1e-9)
    );

    // 2. S shard folders with N rows: each shard's journal in one write, and one small file per sample.
    let t = Instant::now();
    let inputs: Vec<PathBuf> = (0..shards)
        .map(|s| args.dir.join(format!("shard{s:04}")))
        .collect();
    let mut writers = Vec::with_capacity(shards);
    for (s, dir) in inputs.iter().enumerate() {
        let shard = Shard {
            index: s,
            count: shards,
        };
        let path = journal_path(dir, shard);
        std::fs::create_dir_all(path.parent().context("journal folder")?)?;
        std::fs::write(crate::output::layout::parquet_path(dir, shard), b"")?;
        writers.push(std::io::BufWriter::new(std::fs::File::create(&path)?));
    }
    let mut planned = BTreeMap::new();
    for i in 0..args.rows {
        let r = synthetic(i);
        let s = i % shards;
        let folder = sample_dir(&inputs[s], &r.sample_id);
        std::fs::create_dir_all(&folder)?;
        std::fs::write(folder.join("image.png"), b"\x89PNG synthetic")?;
        serde_json::to_writer(&mut writers[s], &r)?;
        writers[s].write_all(b"\n")?;
        planned.insert(r.sample_id, s);
    }
    for w in writers {
        w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    }
    println!(
        "wrote {} rows and sample folders in {shards} shards in {:.1} s",
        args.rows,
        t.elapsed().as_secs_f64()
    );

    // 3. The merge against the plan.
    let plan = MergePlan {
        planned,
        shards,
        recipe_hash: "b".repeat(64),
        allow_missing: false,
    };
    let out = args.dir.join("merged");
    reset_peak_rss();
    let t = Instant::now();
    let summary = merge(&inputs, &out, false, Some(&plan))?;
    let merge_s = t.elapsed().as_secs_f64();
    if summary.samples != args.rows {
        bail!("the merge kept {} of {} rows", summary.samples, args.rows);
    }
    println!(
        "merge: {} rows from {shards} shards in {merge_s:.1} s = {:.0} rows/s, peak RSS {} (hard links, plan check, Parquet)",
        args.rows,
        args.rows as f64 / merge_s.max(1e-9),
        peak_rss_mib().map_or("unknown".into(), |m| format!("{m:.0} MiB"))
    );
    let part = out
        .join("manifest")
        .join(crate::output::layout::MERGED_PART);
    let bytes = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
    println!(
        "merged manifest: {} ({:.1} MiB)",
        part.display(),
        bytes as f64 / (1 << 20) as f64
    );
    Ok(ExitCode::SUCCESS)
}
