//! `texaug plan`: the jobs a run would make, without making them.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;

use crate::cli::{PlanArgs, PlanFormat};
use crate::plan::{plan_recipe, Job, Shard};

pub fn plan(args: PlanArgs) -> Result<ExitCode> {
    let shard = match args.shard {
        Some(s) => s.resolve_env(args.shards).map_err(anyhow::Error::msg)?,
        None => Shard::ALL,
    };
    let (_, units) = plan_recipe(&args.recipe, shard)?;
    let jobs: Vec<&Job> = units.iter().flatten().collect();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match args.format {
        PlanFormat::Jsonl => {
            for j in &jobs {
                writeln!(out, "{}", serde_json::to_string(j)?)?;
            }
        }
        PlanFormat::Table => {
            let id_w = jobs
                .iter()
                .map(|j| j.source_id.len())
                .max()
                .unwrap_or(6)
                .max(6);
            let st_w = jobs.iter().map(|j| j.stage.len()).max().unwrap_or(5).max(5);
            writeln!(
                out,
                "{:<16}  {:>5}  {:<id_w$}  {:<st_w$}  {:>7}  {:>19}  {:>8}  prompt",
                "sample_id", "batch", "source", "stage", "variant", "seed", "strength"
            )?;
            for j in &jobs {
                writeln!(
                    out,
                    "{:<16}  {:>5}  {:<id_w$}  {:<st_w$}  {:>7}  {:>19}  {:>8.4}  {}",
                    j.sample_id,
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
                jobs.len(),
                units.len()
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
