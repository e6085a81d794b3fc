//! `texaug inspect`: what an output folder holds, per label, stage and status, and every failure with its error.

use crate::ledger::{self, latest_by_id};
use crate::sample_manifest::{self, SampleRecord};
use anyhow::{bail, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::ExitCode;

/// Every sample of an output folder (all shards), the latest record per sample_id, sorted by id. A shard's journal
/// is read where it exists (it is ahead of its Parquet part while a run is going or after a kill).
pub fn read_output(output: &Path) -> Result<Vec<SampleRecord>> {
    let dir = ledger::manifest_dir(output);
    let mut tags = BTreeSet::new();
    let entries = std::fs::read_dir(&dir).map_err(|e| {
        anyhow::anyhow!(
            "{}: no manifest folder ({e}); pass an output folder such as output/<name>",
            output.display()
        )
    })?;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(tag) = name.strip_prefix("part-") {
            if let Some(t) = tag.strip_suffix(".journal.jsonl") {
                tags.insert(t.to_string());
            } else if let Some(t) = tag.strip_suffix(".parquet") {
                tags.insert(t.to_string());
            }
        }
    }
    if tags.is_empty() {
        bail!(
            "{}: no manifest parts (part-*.parquet); has a run written here yet?",
            dir.display()
        );
    }
    let mut all = Vec::new();
    for tag in tags {
        let journal = dir.join(format!("part-{tag}.journal.jsonl"));
        if journal.is_file() {
            all.extend(ledger::read_journal(&journal)?.0);
        } else {
            all.extend(sample_manifest::read_parquet(
                &dir.join(format!("part-{tag}.parquet")),
            )?);
        }
    }
    Ok(latest_by_id(all).into_values().collect())
}

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
            if r.is_ok() {
                c.ok += 1;
            } else {
                c.failed += 1;
            }
        }
    }
    let failed: Vec<&SampleRecord> = records.iter().filter(|r| !r.is_ok()).collect();
    println!(
        "{}: {} samples, {} ok, {} failed\n",
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::Ledger;
    use crate::plan::Shard;
    use crate::sample_manifest::tests::record;

    #[test]
    fn all_shards_are_read_and_journals_win_over_stale_parts() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path();
        let mut a = Ledger::open(out, Shard { index: 0, count: 2 }, false).unwrap();
        a.append(record("a", "failed")).unwrap();
        a.save_parquet().unwrap();
        // Appended after the part was written, as a killed run leaves it.
        a.append(record("a", "ok")).unwrap();
        drop(a);
        let mut b = Ledger::open(out, Shard { index: 1, count: 2 }, false).unwrap();
        b.append(record("b", "failed")).unwrap();
        b.finish().unwrap();
        let rows = read_output(out).unwrap();
        let view: Vec<(&str, &str)> = rows
            .iter()
            .map(|r| (r.sample_id.as_str(), r.status.as_str()))
            .collect();
        assert_eq!(view, vec![("a", "ok"), ("b", "failed")]);
        assert!(read_output(&out.join("nowhere")).is_err());
    }
}
