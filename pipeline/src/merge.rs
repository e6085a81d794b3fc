//! `texaug merge`: several output folders (the shards of a cluster run) into one, deduplicated by sample_id. The
//! result is built in a temp folder next to `--out` and renamed into place, so it is complete or absent.

use crate::inspect::read_output;
use crate::ledger::manifest_dir;
use crate::sample_manifest::{self, SampleRecord};
use crate::sinks;
use crate::stage_style::sample_rel_dir;
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub const MERGED_PART: &str = "part-merged.parquet";

/// Keeps one record per sample_id: an ok record beats a failed one; otherwise the earlier input wins.
pub fn dedupe(inputs: Vec<(usize, Vec<SampleRecord>)>) -> BTreeMap<String, (usize, SampleRecord)> {
    let mut out: BTreeMap<String, (usize, SampleRecord)> = BTreeMap::new();
    for (i, records) in inputs {
        for r in records {
            match out.get(&r.sample_id) {
                Some((_, kept)) if kept.is_ok() || !r.is_ok() => {}
                _ => {
                    out.insert(r.sample_id.clone(), (i, r));
                }
            }
        }
    }
    out
}

fn staging_dir(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "merged".into());
    out.with_file_name(format!(
        "{}{name}-{}",
        sinks::TEMP_PREFIX,
        std::process::id()
    ))
}

pub fn merge(inputs: &[PathBuf], out: &Path, copy: bool) -> Result<ExitCode> {
    if let Ok(mut rd) = std::fs::read_dir(out) {
        if rd.next().is_some() {
            bail!(
                "{} exists and is not empty; merge into a new folder (or remove it first)",
                out.display()
            );
        }
    }
    let mut parts = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        let records = read_output(input).with_context(|| format!("reading {}", input.display()))?;
        parts.push((i, records));
    }
    let kept = dedupe(parts);
    let stage = staging_dir(out);
    if stage.exists() {
        std::fs::remove_dir_all(&stage)?;
    }
    let result = build(inputs, &kept, &stage, copy);
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&stage);
        return Err(e);
    }
    if out.exists() {
        std::fs::remove_dir(out)
            .with_context(|| format!("replacing the empty {}", out.display()))?;
    }
    std::fs::rename(&stage, out)
        .with_context(|| format!("moving the merged folder into place at {}", out.display()))?;
    let ok = kept.values().filter(|(_, r)| r.is_ok()).count();
    eprintln!(
        "texaug: merged {} input(s) into {}: {} samples ({} ok, {} failed)",
        inputs.len(),
        out.display(),
        kept.len(),
        ok,
        kept.len() - ok
    );
    Ok(ExitCode::SUCCESS)
}

fn build(
    inputs: &[PathBuf],
    kept: &BTreeMap<String, (usize, SampleRecord)>,
    stage: &Path,
    copy: bool,
) -> Result<()> {
    std::fs::create_dir_all(manifest_dir(stage))?;
    for (id, (i, r)) in kept {
        if !r.is_ok() {
            continue;
        }
        let from = inputs[*i].join(sample_rel_dir(id));
        let files = sinks::files_under(&from);
        if files.is_empty() {
            bail!(
                "{}: sample {id} is recorded as ok but its folder {} is empty or missing; \
                 run that shard again with --resume after removing its row, or merge without that input",
                inputs[*i].display(),
                from.display()
            );
        }
        let to = stage.join(sample_rel_dir(id));
        for f in files {
            sinks::link_or_copy(&from.join(&f), &to.join(&f), copy)
                .with_context(|| format!("copying {}", from.join(&f).display()))?;
        }
    }
    if let Some(run_toml) = inputs
        .iter()
        .map(|p| p.join("run.toml"))
        .find(|p| p.is_file())
    {
        std::fs::copy(&run_toml, stage.join("run.toml"))?;
    }
    let rows: Vec<SampleRecord> = kept.values().map(|(_, r)| r.clone()).collect();
    sample_manifest::write_parquet(&rows, &manifest_dir(stage).join(MERGED_PART))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample_manifest::tests::record;

    #[test]
    fn ok_records_win_over_failed_ones_whatever_the_order() {
        let a = vec![record("x", "failed"), record("y", "ok")];
        let b = vec![
            record("x", "ok"),
            record("y", "failed"),
            record("z", "failed"),
        ];
        let kept = dedupe(vec![(0, a), (1, b)]);
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
    fn merging_copies_samples_and_refuses_a_full_destination() {
        let dir = tempfile::tempdir().unwrap();
        let inputs: Vec<PathBuf> = (0..2).map(|i| dir.path().join(format!("in{i}"))).collect();
        for (i, input) in inputs.iter().enumerate() {
            let id = format!("s{i}");
            std::fs::create_dir_all(input.join(sample_rel_dir(&id))).unwrap();
            std::fs::write(input.join(sample_rel_dir(&id)).join("image.png"), b"png").unwrap();
            let mut l = crate::ledger::Ledger::open(
                input,
                crate::plan::Shard { index: i, count: 2 },
                false,
            )
            .unwrap();
            l.append(record(&id, "ok")).unwrap();
            l.finish().unwrap();
        }
        let out = dir.path().join("merged");
        merge(&inputs, &out, false).unwrap();
        let rows = sample_manifest::read_parquet(&manifest_dir(&out).join(MERGED_PART)).unwrap();
        assert_eq!(rows.len(), 2);
        assert!(out.join("samples/s1/image.png").is_file());
        assert!(merge(&inputs, &out, false).is_err());
        // Nothing is left beside the destination.
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            names.iter().all(|n| !n.starts_with(sinks::TEMP_PREFIX)),
            "{names:?}"
        );
    }
}
