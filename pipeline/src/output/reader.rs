//! Reading an output folder back: every shard's records, the journal where there is one (it is ahead of its
//! Parquet part while a run is going or after a kill).

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{bail, Result};

use super::layout::{journal_name, manifest_dir, parquet_name, part_tag};
use super::ledger::{latest_by_id, read_journal};
use super::parquet::read_parquet;
use super::record::SampleRecord;

/// Every sample of an output folder (all shards), the latest record per sample_id, sorted by id. A shard's journal
/// is read where it exists (it is ahead of its Parquet part while a run is going or after a kill).
pub fn read_output(output: &Path) -> Result<Vec<SampleRecord>> {
    let dir = manifest_dir(output);
    let mut tags = BTreeSet::new();
    let entries = std::fs::read_dir(&dir).map_err(|e| {
        anyhow::anyhow!(
            "{}: no manifest folder ({e}); pass an output folder such as output/<name>",
            output.display()
        )
    })?;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(tag) = part_tag(&name) {
            tags.insert(tag.to_string());
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
        let journal = dir.join(journal_name(&tag));
        if journal.is_file() {
            all.extend(read_journal(&journal)?.0);
        } else {
            all.extend(read_parquet(&dir.join(parquet_name(&tag)))?);
        }
    }
    Ok(latest_by_id(all).into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::ledger::Ledger;
    use crate::output::record::tests::record;
    use crate::plan::Shard;

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
