//! `texaug run`: plan, skip what the ledger holds, run the rest through the pool, record every sample.

use super::plan::planned_jobs;
use super::EXIT_SAMPLES_FAILED;
use crate::cli::RunArgs;
use crate::devices::{self, DeviceSpec};
use crate::ledger::Ledger;
use crate::model_info::{self, ModelInfo};
use crate::plan::Shard;
use crate::pool::{self, PoolConfig, RunMeta};
use crate::progress::Progress;
use crate::recipe::{DeviceList, LoadedRecipe, Recipe};
use crate::sd_model::{self, SdLoader};
use crate::stage_depth::{AnyStage, DepthWork};
use crate::stage_style::{sample_rel_dir, StyleWork};
use anyhow::{Context, Result};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

/// `run_id` = hex(sha256(recipe file hash ‖ shard))[..16]: stable across re-runs and resumes of the same shard, so
/// two runs of one recipe give identical manifests apart from timing columns.
pub fn run_id(recipe_hash: &str, shard: Shard) -> String {
    let mut h = Sha256::new();
    h.update(recipe_hash.as_bytes());
    h.update(b"\0");
    h.update(shard.to_string().as_bytes());
    hex::encode(&h.finalize()[..8])
}

#[derive(Serialize)]
struct RunToml<'a> {
    texaug_version: &'a str,
    recipe_file: String,
    recipe_hash: &'a str,
    recipe: &'a Recipe,
    model: &'a ModelInfo,
}

fn write_run_toml(output: &Path, loaded: &LoadedRecipe, model: &ModelInfo) -> Result<()> {
    let doc = RunToml {
        texaug_version: env!("CARGO_PKG_VERSION"),
        recipe_file: loaded.path.display().to_string(),
        recipe_hash: &loaded.hash,
        recipe: &loaded.recipe,
        model,
    };
    let text = toml::to_string_pretty(&doc).context("encoding run.toml")?;
    let path = output.join("run.toml");
    crate::sinks::write_atomic(&path, text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

pub fn run(args: RunArgs) -> Result<ExitCode> {
    let t0 = Instant::now();
    let shard = args.shard.unwrap_or(Shard::ALL);
    let (loaded, jobs) = planned_jobs(&args.recipe, shard)?;
    let recipe = &loaded.recipe;
    let output = args.output.clone().unwrap_or_else(|| loaded.output_dir());
    let controlnet = crate::validate::run_controlnet(recipe).map_err(anyhow::Error::msg)?;
    let device_names = match &args.devices {
        Some(list) => devices::names(&DeviceList::One(list.clone())),
        None => devices::names(&recipe.devices.use_),
    };
    let gpu_count = usize::try_from(tch::Cuda::device_count()).unwrap_or(0);
    let devices: Vec<DeviceSpec> = devices::resolve(&device_names, gpu_count)
        .map_err(anyhow::Error::msg)
        .context("choosing devices (--devices or [devices] use)")?;

    if let Some(v) = &recipe.model.variant {
        eprintln!(
            "texaug: warning: [model] variant = \"{v}\" is not used by this build; the weights without a variant \
             suffix load (then cast to the dtype)"
        );
    }
    // Resolving the model writes nothing, so a missing model leaves no output folder behind.
    let (model_source, model_dir) = sd_model::model_dir(&recipe.model)?;
    let mut ledger = Ledger::open(&output, shard, args.resume)?;
    let done: HashSet<String> = ledger
        .records()
        .values()
        .filter(|r| r.is_ok())
        .map(|r| r.sample_id.clone())
        .collect();
    let total_planned = jobs.len();
    let todo: Vec<_> = jobs
        .into_iter()
        .filter(|j| !done.contains(&j.sample_id))
        .collect();
    let skipped = total_planned - todo.len();
    // A killed run may have left some files of the samples it had in flight; they are made again from scratch.
    for j in &todo {
        let dir = output.join(sample_rel_dir(&j.sample_id));
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .with_context(|| format!("removing the unfinished sample {}", dir.display()))?;
        }
    }

    let model = model_info::describe(&model_source.id(), &model_dir)?;
    write_run_toml(&output, &loaded, &model)?;
    let meta = RunMeta {
        run_id: run_id(&loaded.hash, shard),
        recipe_hash: loaded.hash.clone(),
        model_id: model.id.clone(),
        model_hash: model.hash.clone(),
        default_scheduler: sd_model::default_scheduler_name(&model_dir),
    };

    let dev_labels: Vec<String> = devices.iter().map(ToString::to_string).collect();
    let progress = Progress::new(args.progress, todo.len(), &dev_labels);
    progress.start(&meta.run_id, &shard.to_string(), skipped, &dev_labels);

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let config = PoolConfig {
        devices,
        batch: recipe.devices.batch.max(1),
        fail_fast: args.fail_fast,
        // One CPU worker at most (devices are deduplicated), so it may use every core for its kernels.
        cpu_threads: cores,
    };
    let loader = SdLoader::new(&recipe.model, model_source, controlnet);
    let style = StyleWork {
        output: output.clone(),
    };
    let depth = DepthWork::new(output.clone(), recipe.stages.clone(), recipe.depth.as_ref())?;
    let stage = AnyStage {
        style: &style,
        depth: &depth,
    };
    let units = pool::units(todo, config.batch);
    let mut count = 0u64;
    let outcome = pool::run(
        &config,
        units,
        &stage,
        &loader,
        &meta,
        &progress,
        |record| {
            let (id, status, error) = (
                record.sample_id.clone(),
                record.status.clone(),
                record.error.clone(),
            );
            ledger.append(record)?;
            count += 1;
            progress.sample_done(&id, &status, error.as_deref(), count);
            Ok(())
        },
    );
    // Whatever happened, the Parquet part reflects the journal.
    let records = ledger.finish();
    let outcome = outcome?;
    let records = records?;
    let elapsed = t0.elapsed().as_secs_f64();
    progress.finish(outcome.done, outcome.failed, elapsed);

    let failed_total = records.values().filter(|r| !r.is_ok()).count();
    eprintln!(
        "texaug: {} sample(s) made this run ({} failed), {} skipped as already done; shard {shard} holds {} \
         ok / {} failed; {:.1} s; output {}",
        outcome.done,
        outcome.failed,
        skipped,
        records.len() - failed_total,
        failed_total,
        elapsed,
        output.display()
    );
    if outcome.stopped {
        eprintln!("texaug: stopped at the first failure (--fail-fast); fix it and run again with --resume");
    }
    if outcome.failed > 0 || outcome.stopped {
        eprintln!(
            "texaug: see the failures with `texaug inspect {}`",
            output.display()
        );
        return Ok(ExitCode::from(EXIT_SAMPLES_FAILED));
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_differ_per_shard_and_are_stable() {
        let a = run_id("h", Shard::ALL);
        assert_eq!(a, run_id("h", Shard::ALL));
        assert_ne!(a, run_id("h", Shard { index: 0, count: 2 }));
        assert_eq!(a.len(), 16);
    }
}
