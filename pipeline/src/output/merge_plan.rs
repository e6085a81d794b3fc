//! What makes a merge exactly-once: every sample of the recipe's plan is in the merged output, nothing from
//! another plan is, and every row was made by the same recipe and model. A merge reports, per shard of the run,
//! what was planned, present, missing and found in more than one input.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{bail, Result};

use super::record::SampleRecord;

/// The samples a run planned, each with the shard (of `shards`) that makes it, and the recipe's hash.
#[derive(Debug, Clone)]
pub struct MergePlan {
    pub planned: BTreeMap<String, usize>,
    pub shards: usize,
    pub recipe_hash: String,
    /// Merge even when planned samples are missing (they are reported).
    pub allow_missing: bool,
}

/// How the merged samples cover a plan.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Coverage {
    /// Missing sample ids by the shard that plans them.
    pub missing: BTreeMap<usize, Vec<String>>,
    /// Present, but planned by no shard of this recipe.
    pub unplanned: Vec<String>,
    /// Sample ids found in more than one input, by shard (kept once).
    pub duplicated: BTreeMap<usize, usize>,
}

impl Coverage {
    pub fn missing_count(&self) -> usize {
        self.missing.values().map(Vec::len).sum()
    }
}

/// Every input's rows come from one recipe and one model (and, with a plan, from its recipe): a shard run with an
/// edited recipe or another model would mix samples of two datasets.
pub fn check_hashes(
    parts: &[(usize, Vec<SampleRecord>)],
    inputs: &[PathBuf],
    plan: Option<&MergePlan>,
) -> Result<()> {
    for (what, get) in [
        (
            "recipe",
            (|r: &SampleRecord| r.recipe_hash.as_str()) as fn(&SampleRecord) -> &str,
        ),
        ("model", |r: &SampleRecord| r.model_hash.as_str()),
    ] {
        let mut seen: BTreeMap<&str, (usize, &str)> = BTreeMap::new();
        for (i, records) in parts {
            for r in records {
                seen.entry(get(r)).or_insert((*i, r.sample_id.as_str()));
            }
        }
        if seen.len() > 1 {
            let list: Vec<String> = seen
                .iter()
                .map(|(h, (i, id))| {
                    format!("{} in {} (sample {id})", short(h), inputs[*i].display())
                })
                .collect();
            bail!(
                "the inputs were made by {} different {what}s: {}; merge the outputs of one recipe and model only \
                 (a shard run with an edited recipe or another model, or with --force-resume, mixes them): rerun \
                 those shards into a fresh output",
                seen.len(),
                list.join("; ")
            );
        }
        if let (Some(plan), "recipe", Some((h, (i, _)))) = (plan, what, seen.iter().next()) {
            if *h != plan.recipe_hash {
                bail!(
                    "{} was made by recipe {}, but the recipe to merge against is {}: pass the recipe the shards \
                     ran (--recipe), or rerun them with this one",
                    inputs[*i].display(),
                    short(h),
                    short(&plan.recipe_hash)
                );
            }
        }
    }
    Ok(())
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

/// How the kept samples (ids, and how many inputs held each) cover `plan`.
pub fn coverage(
    plan: &MergePlan,
    kept: &BTreeSet<&str>,
    seen_in: &BTreeMap<&str, usize>,
) -> Coverage {
    let mut c = Coverage::default();
    for (id, &shard) in &plan.planned {
        if !kept.contains(id.as_str()) {
            c.missing.entry(shard).or_default().push(id.clone());
        }
        if seen_in.get(id.as_str()).is_some_and(|&n| n > 1) {
            *c.duplicated.entry(shard).or_default() += 1;
        }
    }
    c.unplanned = kept
        .iter()
        .filter(|id| !plan.planned.contains_key(**id))
        .map(|id| id.to_string())
        .collect();
    c
}

/// One line per shard: planned, present, missing (the first ids), duplicated.
pub fn report(plan: &MergePlan, c: &Coverage) -> String {
    let mut planned: BTreeMap<usize, usize> = BTreeMap::new();
    for &s in plan.planned.values() {
        *planned.entry(s).or_default() += 1;
    }
    let mut out = String::new();
    for (shard, n) in planned {
        let missing = c.missing.get(&shard).map_or(&[][..], Vec::as_slice);
        let _ = write!(
            out,
            "  shard {shard}/{}: {n} planned, {} present, {} missing, {} in more than one input",
            plan.shards,
            n - missing.len(),
            missing.len(),
            c.duplicated.get(&shard).copied().unwrap_or(0)
        );
        if !missing.is_empty() {
            let first: Vec<&str> = missing.iter().take(5).map(String::as_str).collect();
            let more = if missing.len() > 5 { ", …" } else { "" };
            let _ = write!(out, " ({}{more})", first.join(", "));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::record::tests::record;

    fn plan(ids: &[(&str, usize)]) -> MergePlan {
        MergePlan {
            planned: ids.iter().map(|(i, s)| (i.to_string(), *s)).collect(),
            shards: 2,
            recipe_hash: record("a", "ok").recipe_hash,
            allow_missing: false,
        }
    }

    #[test]
    fn coverage_names_missing_unplanned_and_duplicated_per_shard() {
        let p = plan(&[("a", 0), ("b", 1), ("c", 1)]);
        let kept: BTreeSet<&str> = ["a", "c", "z"].into_iter().collect();
        let seen: BTreeMap<&str, usize> = [("a", 2), ("c", 1), ("z", 1)].into_iter().collect();
        let c = coverage(&p, &kept, &seen);
        assert_eq!(c.missing, BTreeMap::from([(1, vec!["b".to_string()])]));
        assert_eq!(c.unplanned, vec!["z".to_string()]);
        assert_eq!(c.duplicated, BTreeMap::from([(0, 1)]));
        let r = report(&p, &c);
        assert!(
            r.contains("shard 1/2: 2 planned, 1 present, 1 missing, 0 in more than one input (b)"),
            "{r}"
        );
        assert!(
            r.contains("shard 0/2: 1 planned, 1 present, 0 missing, 1 in more than one input"),
            "{r}"
        );
    }

    #[test]
    fn rows_of_two_models_or_another_recipe_are_refused() {
        let inputs = vec![PathBuf::from("in0"), PathBuf::from("in1")];
        let a = record("a", "ok");
        let mut b = record("b", "ok");
        b.model_hash = "f".repeat(64);
        let e = check_hashes(&[(0, vec![a.clone()]), (1, vec![b])], &inputs, None).unwrap_err();
        assert!(
            e.to_string().contains("2 different models") && e.to_string().contains("in1"),
            "{e}"
        );
        let mut other = plan(&[("a", 0)]);
        other.recipe_hash = "0".repeat(64);
        let e = check_hashes(&[(0, vec![a.clone()])], &inputs, Some(&other)).unwrap_err();
        assert!(e.to_string().contains("--recipe"), "{e}");
        assert!(check_hashes(&[(0, vec![a])], &inputs, Some(&plan(&[("a", 0)]))).is_ok());
    }
}
