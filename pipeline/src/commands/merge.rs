//! `texaug merge`: the shards of a cluster run into one folder, deduplicated by sample_id and checked against the
//! recipe's plan: every planned sample exactly once, every row from that recipe and one model.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};

use crate::cli::MergeArgs;
use crate::output::layout::{manifest_dir, part_tag, RUN_TOML};
use crate::output::merge::merge as merge_outputs;
use crate::output::merge_plan::MergePlan;
use crate::plan::batching::unit_shards;
use crate::plan::plan_recipe_units;

pub fn merge(args: &MergeArgs) -> Result<ExitCode> {
    let plan = match recipe_to_check(args)? {
        Some(recipe) => Some(merge_plan(&recipe, &args.inputs, args.allow_missing)?),
        None => None,
    };
    let summary = merge_outputs(&args.inputs, &args.out, args.copy, plan.as_ref())?;
    if let Some((c, report)) = &summary.coverage {
        eprint!("{report}");
        if c.missing_count() > 0 {
            eprintln!(
                "texaug: {} planned sample(s) missing, merged anyway (--allow-missing); merge again when their \
                 shards are done",
                c.missing_count()
            );
        }
    }
    eprintln!(
        "texaug: merged {} input(s) into {}: {} samples ({} ok, {} failed)",
        args.inputs.len(),
        args.out.display(),
        summary.samples,
        summary.ok,
        summary.samples - summary.ok
    );
    Ok(ExitCode::SUCCESS)
}

/// `--recipe`, else the recipe the first input's run.toml names (as the run saw it).
fn recipe_to_check(args: &MergeArgs) -> Result<Option<PathBuf>> {
    if let Some(r) = &args.recipe {
        return Ok(Some(r.clone()));
    }
    let named = args.inputs.iter().find_map(|i| {
        let text = std::fs::read_to_string(i.join(RUN_TOML)).ok()?;
        let v: toml::Value = toml::from_str(&text).ok()?;
        Some(PathBuf::from(v.get("recipe_file")?.as_str()?))
    });
    match named {
        Some(r) if r.is_file() => Ok(Some(r)),
        _ if args.allow_missing => Ok(None),
        Some(r) => bail!(
            "the inputs' run.toml names the recipe {}, which is not there from here: pass --recipe R (the recipe \
             the shards ran) so every planned sample can be checked, or --allow-missing to merge without the check",
            r.display()
        ),
        None => bail!(
            "the inputs have no run.toml naming their recipe: pass --recipe R (the recipe the shards ran), or \
             --allow-missing to merge without checking that every planned sample is there"
        ),
    }
}

/// The plan of `recipe` with each sample's shard, for the shard count the inputs' manifest parts were written with.
fn merge_plan(recipe: &Path, inputs: &[PathBuf], allow_missing: bool) -> Result<MergePlan> {
    let shards = shard_count(inputs)?;
    let (loaded, units) = plan_recipe_units(recipe)
        .with_context(|| format!("planning {} to check the merge", recipe.display()))?;
    let mut planned = BTreeMap::new();
    let unit_shard = unit_shards(&units, loaded.recipe.devices.batch, shards);
    for (unit, &shard) in units.iter().zip(&unit_shard) {
        // Every row a job records: its rendered views' and its own.
        for id in unit.iter().flat_map(|job| job.row_ids()) {
            planned.insert(id.to_string(), shard);
        }
    }
    Ok(MergePlan {
        planned,
        shards,
        recipe_hash: loaded.hash,
        allow_missing,
    })
}

/// N of the inputs' `part-IIII-of-NNNN` files (1 when they hold only merged parts); two different N are refused.
fn shard_count(inputs: &[PathBuf]) -> Result<usize> {
    let mut counts = std::collections::BTreeSet::new();
    for input in inputs {
        let Ok(rd) = std::fs::read_dir(manifest_dir(input)) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(n) = part_tag(&name)
                .and_then(|t| t.split_once("-of-"))
                .and_then(|(_, n)| n.parse::<usize>().ok())
            {
                counts.insert(n);
            }
        }
    }
    match counts.len() {
        0 => Ok(1),
        1 => Ok(counts.into_iter().next().unwrap_or(1)),
        _ => bail!(
            "the inputs hold manifest parts of runs with different shard counts ({:?}); merge the shards of one \
             --shard I/N split",
            counts
        ),
    }
}
