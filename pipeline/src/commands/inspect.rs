//! `texaug inspect`: what an output folder holds, per label, stage and status, and every failure with its error.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use crate::output::reader::read_output;
use crate::output::record::SampleRecord;

#[derive(Default)]
struct Counts {
    ok: u64,
    failed: u64,
}

fn table(title: &str, rows: &BTreeMap<String, Counts>) {
    let w = rows
        .keys()
        .map(String::len)
        .max()
        .unwrap_or(0)
        .max(title.len());
    println!("{title:<w$}  {:>8}  {:>8}", "ok", "failed");
    for (k, c) in rows {
        println!("{k:<w$}  {:>8}  {:>8}", c.ok, c.failed);
    }
    println!();
}

pub fn inspect(output: &Path, max_failures: usize) -> Result<ExitCode> {
    let records = read_output(output)?;
    let mut by_label: BTreeMap<String, Counts> = BTreeMap::new();
    let mut by_stage: BTreeMap<String, Counts> = BTreeMap::new();
    let mut by_kind: BTreeMap<String, Counts> = BTreeMap::new();
    for r in &records {
        for (map, key) in [
            (&mut by_label, &r.label),
            (&mut by_stage, &r.stage),
            (&mut by_kind, &r.source_kind),
        ] {
            let c = map.entry(key.clone()).or_default();
            if r.is_done() {
                c.ok += 1;
            } else {
                c.failed += 1;
            }
        }
    }
    let failed: Vec<&SampleRecord> = records.iter().filter(|r| !r.is_done()).collect();
    let filtered = records.iter().filter(|r| r.is_filtered()).count();
    let filtered = if filtered > 0 {
        format!(" ({filtered} of them filtered by min_clip_score)")
    } else {
        String::new()
    };
    println!(
        "{}: {} samples, {} ok{filtered}, {} failed\n",
        output.display(),
        records.len(),
        records.len() - failed.len(),
        failed.len()
    );
    table("label", &by_label);
    table("stage", &by_stage);
    table("kind", &by_kind);
    if !failed.is_empty() {
        println!("failures:");
        for r in failed.iter().take(max_failures) {
            println!(
                "  {} {} ({}): {}",
                r.sample_id,
                r.source_id,
                r.source_path,
                r.error.as_deref().unwrap_or("no error recorded")
            );
        }
        if failed.len() > max_failures {
            println!(
                "  … and {} more (--max-failures)",
                failed.len() - max_failures
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
