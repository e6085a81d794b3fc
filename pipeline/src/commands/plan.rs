//! `texaug plan`: the jobs a run would make, without making them, and how they split into shards.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;

use crate::cli::{PlanArgs, PlanFormat};
use crate::plan::batching::unit_shards;
use crate::plan::{plan_recipe_units, Job};

pub fn plan(args: PlanArgs) -> Result<ExitCode> {
    if args.shards == Some(0) {
        anyhow::bail!("--shards 0: a run has at least one shard; pass --shards N with N ≥ 1");
    }
    let shard = match args.shard {
        Some(s) => Some(s.resolve_env(args.shards).map_err(anyhow::Error::msg)?),
        None => None,
    };
    // The shard count: that of --shard, else --shards (which alone shows every shard's share).
    let count = shard.map(|s| s.count).or(args.shards).unwrap_or(1).max(1);
    let (loaded, all) = plan_recipe_units(&args.recipe)?;
    let shard_of = unit_shards(&all, loaded.recipe.devices.batch, count);
    let shown_units: Vec<(&Vec<Job>, usize)> = all
        .iter()
        .zip(shard_of.iter().copied())
        .filter(|&(_, s)| shard.is_none_or(|sh| sh.index == s))
        .collect();
    let shown: Vec<(&Job, usize)> = shown_units
        .iter()
        .flat_map(|&(u, s)| u.iter().map(move |j| (j, s)))
        .collect();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match args.format {
        PlanFormat::Jsonl => {
            for (j, shard) in &shown {
                if count > 1 {
                    // With a shard count each line says its shard too (keys then sorted by name).
                    let mut v = serde_json::to_value(j)?;
                    v["shard"] = (*shard).into();
                    writeln!(out, "{v}")?;
                } else {
                    writeln!(out, "{}", serde_json::to_string(j)?)?;
                }
            }
        }
        PlanFormat::Table => {
            let id_w = shown
                .iter()
                .map(|(j, _)| j.source_id.len())
                .max()
                .unwrap_or(6)
                .max(6);
            let st_w = shown
                .iter()
                .map(|(j, _)| j.stage.len())
                .max()
                .unwrap_or(5)
                .max(5);
            writeln!(
                out,
                "{:<16}  {:>5}  {:>5}  {:<id_w$}  {:<st_w$}  {:>7}  {:>19}  {:>8}  prompt",
                "sample_id", "shard", "batch", "source", "stage", "variant", "seed", "strength"
            )?;
            for (j, s) in &shown {
                writeln!(
                    out,
                    "{:<16}  {:>5}  {:>5}  {:<id_w$}  {:<st_w$}  {:>7}  {:>19}  {:>8.4}  {}",
                    j.sample_id,
                    s,
                    j.unit,
                    j.source_id,
                    j.stage,
                    j.variant,
                    j.seed,
                    j.strength,
                    j.prompt
                )?;
            }
            writeln!(
                out,
                "{} jobs in {} batches (a batch runs its jobs' requests together; see `[devices] batch`)",
                shown.len(),
                shown_units.len()
            )?;
            let views: usize = shown
                .iter()
                .filter_map(|(j, _)| j.render.as_ref())
                .map(|r| r.view_ids.len())
                .sum();
            if views > 0 {
                writeln!(
                    out,
                    "{views} rendered views ride on them (one manifest row each, made on the CPU after the job)"
                )?;
            }
            if count > 1 {
                write!(out, "{}", shard_sizes(&all, &shard_of, count))?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Each shard's jobs and batches, and how far the largest and smallest stray from the mean.
fn shard_sizes(units: &[Vec<Job>], shard_of: &[usize], count: usize) -> String {
    let mut jobs = vec![0usize; count];
    let mut batches = vec![0usize; count];
    for (u, &s) in units.iter().zip(shard_of) {
        jobs[s] += u.len();
        batches[s] += 1;
    }
    let total: usize = jobs.iter().sum();
    let mean = total as f64 / count as f64;
    let mut text = String::new();
    for (i, (j, b)) in jobs.iter().zip(&batches).enumerate() {
        text += &format!("shard {i}/{count}: {j} jobs in {b} batches\n");
    }
    let (lo, hi) = (
        jobs.iter().copied().min().unwrap_or(0) as f64,
        jobs.iter().copied().max().unwrap_or(0) as f64,
    );
    if mean > 0.0 {
        text += &format!(
            "shards: {total} jobs, mean {mean:.1} per shard, smallest {:+.1}%, largest {:+.1}%\n",
            (lo - mean) / mean * 100.0,
            (hi - mean) / mean * 100.0
        );
    }
    text
}
