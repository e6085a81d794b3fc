//! Merging several output folders (the shards of a cluster run) into one, deduplicated by sample_id, checked
//! against the recipe's plan ([`super::merge_plan`]: every planned sample once, one recipe and model). The result is
//! built in a temp folder next to the destination and renamed into place, so it is complete or absent; a previous
//! merge in the destination is replaced the same way (merge again when late shards arrive). Inputs are not
//! trusted: every sample id they hold must be one texaug makes ([`is_sample_id`]) before it names a folder.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use texaug_stages::files::TEMP_PREFIX;

use super::layout::{
    is_sample_id, journal_name, legacy_sample_dir, manifest_dir, parquet_name, part_tag,
    sample_dir, sample_rel_dir, MERGED_PART, RUN_TOML,
};
use super::ledger::{read_journal, PARQUET_CHUNK};
use super::merge_plan::{check_hashes, coverage, report, Coverage, MergePlan};
use super::parquet::{read_parquet, write_parquet_chunked};
use super::reader::read_output;
use super::record::SampleRecord;
use super::tree::{files_under, link_or_copy};

/// What a merge made.
#[derive(Debug)]
pub struct MergeSummary {
    pub samples: usize,
    pub ok: usize,
    /// Against the plan, when there was one; with its per-shard report.
    pub coverage: Option<(Coverage, String)>,
}

/// The table a merged `run.toml` ends with: what went into it.
const MERGE_TABLE: &str = "[merge]";

/// Whether `out` holds an earlier merge (its run.toml has the merge table), which a new merge may replace.
fn is_previous_merge(out: &Path) -> bool {
    std::fs::read_to_string(out.join(RUN_TOML))
        .is_ok_and(|t| t.lines().any(|l| l.trim() == MERGE_TABLE))
        && manifest_dir(out).join(MERGED_PART).is_file()
}

/// One record per sample_id, with the input it comes from.
pub type Kept = BTreeMap<String, (usize, SampleRecord)>;

/// Keeps one record per sample_id: an ok record beats a failed one; otherwise the earlier input wins. Also gives,
/// for the ids found in more than one input, how many held them (each input holds an id at most once).
pub fn dedupe(inputs: Vec<(usize, Vec<SampleRecord>)>) -> (Kept, BTreeMap<String, usize>) {
    let mut out: Kept = BTreeMap::new();
    let mut repeated: BTreeMap<String, usize> = BTreeMap::new();
    for (i, records) in inputs {
        for r in records {
            match out.get(&r.sample_id) {
                Some((_, kept)) => {
                    *repeated.entry(r.sample_id.clone()).or_insert(1) += 1;
                    if kept.is_done() || !r.is_done() {
                        continue;
                    }
                    out.insert(r.sample_id.clone(), (i, r));
                }
                None => {
                    out.insert(r.sample_id.clone(), (i, r));
                }
            }
        }
    }
    (out, repeated)
}

/// Checks every sample id of an input's manifest files (each journal, or the Parquet part of a shard without
/// one — what [`read_output`] reads) before any becomes a path: an id that is not 16 lowercase hex characters is
/// an error naming the input, the file and the journal line or Parquet row (1-based).
pub fn check_sample_ids(input: &Path) -> Result<()> {
    let dir = manifest_dir(input);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(()); // read_output says what is missing
    };
    let mut tags: Vec<String> = entries
        .flatten()
        .filter_map(|e| part_tag(&e.file_name().to_string_lossy()).map(str::to_string))
        .collect();
    tags.sort();
    tags.dedup();
    for tag in tags {
        let journal = dir.join(journal_name(&tag));
        let (file, records, unit) = if journal.is_file() {
            (journal.clone(), read_journal(&journal)?.0, "line")
        } else {
            let part = dir.join(parquet_name(&tag));
            let records = read_parquet(&part)?;
            (part, records, "row")
        };
        if let Some((i, r)) = records
            .iter()
            .enumerate()
            .find(|(_, r)| !is_sample_id(&r.sample_id))
        {
            bail!(
                "{}: {} {unit} {}: sample_id {:?} is not a texaug sample id (16 lowercase hex characters); the \
                 manifest was edited or is not texaug's: fix or remove that {unit}, or merge without this input",
                input.display(),
                file.display(),
                i + 1,
                r.sample_id
            );
        }
    }
    Ok(())
}

fn staging_dir(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "merged".into());
    out.with_file_name(format!("{}{name}-{}", TEMP_PREFIX, std::process::id()))
}

pub fn merge(
    inputs: &[PathBuf],
    out: &Path,
    copy: bool,
    plan: Option<&MergePlan>,
) -> Result<MergeSummary> {
    let replace = is_previous_merge(out);
    if let Ok(mut rd) = std::fs::read_dir(out) {
        if rd.next().is_some() && !replace {
            bail!(
                "{} exists and is not empty (and is no earlier merge); merge into a new folder (or remove it first)",
                out.display()
            );
        }
    }
    let mut parts = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        if replace && input.canonicalize().ok() == out.canonicalize().ok() {
            bail!(
                "{} is the destination; merge into another folder",
                input.display()
            );
        }
        let records = read_output(input).with_context(|| format!("reading {}", input.display()))?;
        if records.iter().any(|r| !is_sample_id(&r.sample_id)) {
            // Located (file and line) before any id names a folder; read again only in this case.
            check_sample_ids(input)?;
            bail!("{}: a sample id is not a texaug sample id", input.display());
        }
        parts.push((i, records));
    }
    check_hashes(&parts, inputs, plan)?;
    let (kept, repeated) = dedupe(parts);
    let checked = match plan {
        Some(p) => {
            let ids: BTreeSet<&str> = kept.keys().map(String::as_str).collect();
            let counts = repeated.iter().map(|(k, &n)| (k.as_str(), n)).collect();
            let c = coverage(p, &ids, &counts);
            let lines = report(p, &c);
            if !c.unplanned.is_empty() {
                bail!(
                    "{} sample(s) are in no shard of the recipe's plan (e.g. {}): the inputs hold samples of \
                     another recipe or seed; merge the outputs of one run only\n{lines}",
                    c.unplanned.len(),
                    c.unplanned[0]
                );
            }
            if c.missing_count() > 0 && !p.allow_missing {
                bail!(
                    "{} planned sample(s) are missing; rerun their shards (texaug run RECIPE --shard I/N --resume), \
                     or pass --allow-missing to merge what is there:\n{lines}",
                    c.missing_count()
                );
            }
            Some((c, lines))
        }
        None => None,
    };
    let stage = staging_dir(out);
    if stage.exists() {
        std::fs::remove_dir_all(&stage)?;
    }
    let missing = checked.as_ref().map_or(0, |(c, _)| c.missing_count());
    let samples = kept.len();
    let ok = kept.values().filter(|(_, r)| r.is_done()).count();
    let result = build(inputs, kept, &stage, copy, missing);
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&stage);
        return Err(e);
    }
    if replace {
        // The earlier merge goes aside, the new one takes its place, then the old one is removed.
        let old = staging_dir(out).with_extension("old");
        std::fs::rename(out, &old)
            .with_context(|| format!("moving the earlier merge {} aside", out.display()))?;
        std::fs::rename(&stage, out)
            .with_context(|| format!("moving the merged folder into place at {}", out.display()))?;
        std::fs::remove_dir_all(&old)
            .with_context(|| format!("removing the earlier merge at {}", old.display()))?;
    } else {
        if out.exists() {
            std::fs::remove_dir(out)
                .with_context(|| format!("replacing the empty {}", out.display()))?;
        }
        std::fs::rename(&stage, out)
            .with_context(|| format!("moving the merged folder into place at {}", out.display()))?;
    }
    Ok(MergeSummary {
        samples,
        ok,
        coverage: checked,
    })
}

fn build(inputs: &[PathBuf], kept: Kept, stage: &Path, copy: bool, missing: usize) -> Result<()> {
    std::fs::create_dir_all(manifest_dir(stage))?;
    // Linking is one metadata call per file: in parallel, as a shared file system serves many at once.
    let ok: Vec<(&String, usize)> = kept
        .iter()
        // A filtered sample has files only when its stage kept them.
        .filter(|(id, (i, r))| {
            r.is_ok() || (r.is_filtered() && sample_dir(&inputs[*i], id).is_dir())
        })
        .map(|(id, (i, _))| (id, *i))
        .collect();
    ok.par_iter().try_for_each(|&(id, i)| -> Result<()> {
        let mut from = sample_dir(&inputs[i], id);
        if !from.is_dir() && legacy_sample_dir(&inputs[i], id).is_dir() {
            from = legacy_sample_dir(&inputs[i], id);
        }
        let files = files_under(&from);
        if files.is_empty() {
            bail!(
                "{}: sample {id} is recorded as ok but its folder {} is empty or missing; \
                 run that shard again with --resume after removing its row, or merge without that input",
                inputs[i].display(),
                from.display()
            );
        }
        let to = sample_dir(stage, id);
        for f in files {
            link_or_copy(&from.join(&f), &to.join(&f), copy)
                .with_context(|| format!("copying {}", from.join(&f).display()))?;
        }
        Ok(())
    })?;
    drop(ok);
    // The first input's run.toml (the recipe as resolved, its files' hashes), then what went into the merge.
    let mut run_toml = inputs
        .iter()
        .map(|p| p.join(RUN_TOML))
        .find_map(|p| std::fs::read_to_string(p).ok())
        .map(|t| strip_merge_table(&t))
        .unwrap_or_default();
    let listed: Vec<String> = inputs
        .iter()
        .map(|p| format!("{:?}", p.display().to_string()))
        .collect();
    run_toml.push_str(&format!(
        "\n{MERGE_TABLE}\ninputs = [{}]\nsamples = {}\nmissing = {missing}\n",
        listed.join(", "),
        kept.len()
    ));
    std::fs::write(stage.join(RUN_TOML), run_toml)?;
    // Written a chunk at a time from the records themselves: a merge of 10^7 rows holds them once.
    let mut rows = kept.into_values().map(|(_, r)| relocated(r));
    write_parquet_chunked(&manifest_dir(stage).join(MERGED_PART), || {
        let chunk: Vec<SampleRecord> = rows.by_ref().take(PARQUET_CHUNK).collect();
        Ok((!chunk.is_empty()).then_some(chunk))
    })
}

/// A record of an output written before samples were split by prefix, with its paths where the merge puts them.
fn relocated(mut r: SampleRecord) -> SampleRecord {
    let legacy = format!("samples/{}/", r.sample_id);
    let current = format!("{}/", sample_rel_dir(&r.sample_id));
    for path in [&mut r.image_path, &mut r.texture_path, &mut r.asset_path]
        .into_iter()
        .flatten()
    {
        *path = path
            .split(';')
            .map(|p| match p.strip_prefix(&legacy) {
                Some(file) => format!("{current}{file}"),
                None => p.to_string(),
            })
            .collect::<Vec<_>>()
            .join(";");
    }
    r
}

/// A run.toml without the merge table an earlier merge appended (the table is last).
fn strip_merge_table(text: &str) -> String {
    match text.lines().position(|l| l.trim() == MERGE_TABLE) {
        Some(i) => {
            text.lines()
                .take(i)
                .map(|l| format!("{l}\n"))
                .collect::<String>()
                .trim_end()
                .to_string()
                + "\n"
        }
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::ledger::Ledger;
    use crate::output::parquet::read_parquet;
    use crate::output::record::tests::record;
    use crate::plan::Shard;

    #[test]
    fn ok_records_win_over_failed_ones_whatever_the_order() {
        let a = vec![record("x", "failed"), record("y", "ok")];
        let b = vec![
            record("x", "ok"),
            record("y", "failed"),
            record("z", "failed"),
        ];
        let (kept, repeated) = dedupe(vec![(0, a), (1, b)]);
        assert_eq!(
            repeated,
            BTreeMap::from([("x".to_string(), 2), ("y".to_string(), 2)])
        );
        let view: Vec<(&str, usize, &str)> = kept
            .iter()
            .map(|(k, (i, r))| (k.as_str(), *i, r.status.as_str()))
            .collect();
        assert_eq!(
            view,
            vec![("x", 1, "ok"), ("y", 0, "ok"), ("z", 1, "failed")]
        );
    }

    #[test]
    fn merging_copies_samples_replaces_an_earlier_merge_and_refuses_a_full_destination() {
        let dir = tempfile::tempdir().unwrap();
        let inputs: Vec<PathBuf> = (0..2).map(|i| dir.path().join(format!("in{i}"))).collect();
        for (i, input) in inputs.iter().enumerate() {
            let id = format!("{i:016x}");
            std::fs::create_dir_all(sample_dir(input, &id)).unwrap();
            std::fs::write(sample_dir(input, &id).join("image.png"), b"png").unwrap();
            let mut l = Ledger::open(input, Shard { index: i, count: 2 }, false).unwrap();
            l.append(record(&id, "ok")).unwrap();
            l.finish().unwrap();
        }
        let out = dir.path().join("merged");
        merge(&inputs, &out, false, None).unwrap();
        let rows = read_parquet(&manifest_dir(&out).join(MERGED_PART)).unwrap();
        assert_eq!(rows.len(), 2);
        assert!(out.join("samples/00/0000000000000001/image.png").is_file());
        // An earlier merge is replaced (late shards); any other full folder is refused.
        merge(&inputs[..1], &out, false, None).unwrap();
        let rows = read_parquet(&manifest_dir(&out).join(MERGED_PART)).unwrap();
        assert_eq!(rows.len(), 1);
        let run_toml = std::fs::read_to_string(out.join(RUN_TOML)).unwrap();
        assert_eq!(run_toml.matches(MERGE_TABLE).count(), 1, "{run_toml}");
        let full = dir.path().join("full");
        std::fs::create_dir_all(&full).unwrap();
        std::fs::write(full.join("notes.txt"), b"mine").unwrap();
        assert!(merge(&inputs, &full, false, None).is_err());
        // Nothing is left beside the destination.
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            names.iter().all(|n| !n.starts_with(TEMP_PREFIX)),
            "{names:?}"
        );
    }

    #[test]
    fn an_output_of_the_flat_layout_merges_into_prefix_folders() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("old");
        let id = "ab00000000000001";
        std::fs::create_dir_all(legacy_sample_dir(&input, id)).unwrap();
        std::fs::write(legacy_sample_dir(&input, id).join("image.png"), b"png").unwrap();
        let mut r = record(id, "ok");
        r.image_path = Some(format!("samples/{id}/image.png"));
        let mut l = Ledger::open(&input, Shard::ALL, false).unwrap();
        l.append(r).unwrap();
        l.finish().unwrap();
        let out = dir.path().join("merged");
        merge(&[input], &out, false, None).unwrap();
        let rows = read_parquet(&manifest_dir(&out).join(MERGED_PART)).unwrap();
        let rel = format!("samples/ab/{id}/image.png");
        assert_eq!(rows[0].image_path.as_deref(), Some(rel.as_str()));
        assert_eq!(std::fs::read(out.join(&rel)).unwrap(), b"png");
    }

    #[test]
    fn an_id_that_is_not_texaugs_never_reaches_a_path() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in");
        let victim = dir.path().join("victim");
        std::fs::create_dir_all(victim.join("samples/x")).unwrap();
        std::fs::write(victim.join("samples/x/image.png"), b"secret").unwrap();
        let mut l = Ledger::open(&input, Shard::ALL, false).unwrap();
        l.append(record("00000000000000aa", "ok")).unwrap();
        l.append(record("../../victim/samples/x", "ok")).unwrap();
        l.finish().unwrap();
        let out = dir.path().join("merged");
        let err = format!(
            "{:#}",
            merge(std::slice::from_ref(&input), &out, false, None).unwrap_err()
        );
        assert!(
            err.contains(&input.display().to_string())
                && err.contains("part-0000-of-0001.journal.jsonl line 2")
                && err.contains("../../victim"),
            "{err}"
        );
        assert!(!out.exists());
        // The Parquet part of a shard without a journal is checked too, by row.
        std::fs::remove_file(input.join("manifest/part-0000-of-0001.journal.jsonl")).unwrap();
        let err = format!("{:#}", merge(&[input], &out, false, None).unwrap_err());
        assert!(err.contains("part-0000-of-0001.parquet row 1"), "{err}");
        assert!(!out.exists());
    }
}
