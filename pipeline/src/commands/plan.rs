//! `texaug plan`: the jobs a run would make, without making them.

use crate::cli::{PlanArgs, PlanFormat};
use crate::plan::{self, Job, Shard};
use crate::recipe::{self, LoadedRecipe};
use crate::source_manifest::{self, Source};
use anyhow::Result;
use std::io::Write;
use std::process::ExitCode;

/// The recipe's sources: its manifest, or a walk of its folder.
pub fn load_sources(loaded: &LoadedRecipe) -> Result<Vec<Source>> {
    let s = &loaded.recipe.sources;
    let sources = match (&s.manifest, &s.dir) {
        (Some(m), _) => source_manifest::load_manifest(m)?,
        (None, Some(d)) => source_manifest::walk_dir(d, s.label.as_deref())?,
        (None, None) => anyhow::bail!(
            "{}: [sources] needs `manifest` or `dir`",
            loaded.path.display()
        ),
    };
    Ok(sources)
}

/// Recipe → sources → the (sharded) plan.
pub fn planned_jobs(
    args_recipe: &std::path::Path,
    shard: Shard,
) -> Result<(LoadedRecipe, Vec<Job>)> {
    let loaded = recipe::load(args_recipe)?;
    let sources = load_sources(&loaded)?;
    let jobs = plan::shard(plan::plan(&loaded.recipe, &sources), shard);
    Ok((loaded, jobs))
}

pub fn plan(args: PlanArgs) -> Result<ExitCode> {
    let (_, jobs) = planned_jobs(&args.recipe, args.shard.unwrap_or(Shard::ALL))?;
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
                "{:<16}  {:<id_w$}  {:<st_w$}  {:>7}  {:>19}  {:>8}  prompt",
                "sample_id", "source", "stage", "variant", "seed", "strength"
            )?;
            for j in &jobs {
                writeln!(
                    out,
                    "{:<16}  {:<id_w$}  {:<st_w$}  {:>7}  {:>19}  {:>8.4}  {}",
                    j.sample_id, j.source_id, j.stage, j.variant, j.seed, j.strength, j.prompt
                )?;
            }
            writeln!(out, "{} jobs", jobs.len())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
