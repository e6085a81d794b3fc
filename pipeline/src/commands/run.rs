//! `texaug run`: plan, skip what the ledger holds, run the rest through the pool, record every sample.

use std::collections::HashSet;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use super::exit::EXIT_SAMPLES_FAILED;
use crate::cli::RunArgs;
use crate::config::devices::{self, DeviceList, DeviceSpec};
use crate::config::recipe::{estimator_hub_id_refusal, DepthSpec};
use crate::engine::pool::{self, PoolConfig};
use crate::engine::progress::Progress;
use crate::engine::stage_work::RecipeStages;
use crate::model::info::{self, Extras};
use crate::model::loading::{self, SdLoader};
use crate::output::disk::OutputUnwritable;
use crate::output::layout::{journal_path, sample_dir};
use crate::output::ledger::{check_resumable, read_journal, Ledger};
use crate::output::lock::ShardLock;
use crate::output::row::RunMeta;
use crate::output::run_toml::write_run_toml;
use crate::plan::{plan_recipe, Job, Shard};

/// `run_id` = hex(sha256(recipe file hash ‖ shard))[..16]: stable across re-runs and resumes of the same shard, so
/// two runs of one recipe give identical manifests apart from timing columns.
pub fn run_id(recipe_hash: &str, shard: Shard) -> String {
    let mut h = Sha256::new();
    h.update(recipe_hash.as_bytes());
    h.update(b"\0");
    h.update(shard.to_string().as_bytes());
    hex::encode(&h.finalize()[..8])
}

/// Removes the sample folders of `ids` that are not in `keep`: files of samples that were never recorded.
fn remove_unrecorded<'a>(
    output: &std::path::Path,
    ids: impl Iterator<Item = &'a str>,
    keep: &HashSet<String>,
) -> Result<()> {
    for id in ids.filter(|id| !keep.contains(*id)) {
        let dir = sample_dir(output, id);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .with_context(|| format!("removing the unfinished sample {}", dir.display()))?;
        }
    }
    Ok(())
}

/// Whether every row of `job` (its views' and its own) is recorded ok.
fn job_done(job: &Job, done: &HashSet<String>) -> bool {
    job.row_ids().all(|id| done.contains(id))
}

/// The units a (resumed) run makes: those with a job not yet recorded as done, whole, the done jobs in them marked
/// [`Job::rerun_only`] so every batch is the one an uninterrupted run makes.
fn units_to_run(units: Vec<Vec<Job>>, done: &HashSet<String>) -> Vec<Vec<Job>> {
    units
        .into_iter()
        .filter(|u| u.iter().any(|j| !job_done(j, done)))
        .map(|mut u| {
            for j in &mut u {
                j.rerun_only = job_done(j, done);
            }
            u
        })
        .collect()
}

pub fn run(args: RunArgs) -> Result<ExitCode> {
    let t0 = Instant::now();
    let shard = match args.shard {
        Some(s) => s.resolve_env(args.shards).map_err(anyhow::Error::msg)?,
        None => Shard::ALL,
    };
    if args
        .shard
        .is_some_and(|s| s == crate::plan::shard::ShardArg::Auto)
    {
        eprintln!("texaug: --shard auto: shard {shard}");
    }
    let (loaded, units) = plan_recipe(&args.recipe, shard)?;
    let recipe = &loaded.recipe;
    let output = args.output.clone().unwrap_or_else(|| loaded.output_dir());
    let controlnet = recipe.controlnet().map_err(anyhow::Error::msg)?;
    // Before anything is resolved or written (RecipeStages::new refuses it too, for any other caller).
    if let Some(id) = recipe.depth.as_ref().and_then(DepthSpec::estimator_hub_id) {
        bail!(estimator_hub_id_refusal(id));
    }
    let device_names = match &args.devices {
        Some(list) => devices::names(&DeviceList::One(list.clone())),
        None => devices::names(&recipe.devices.use_),
    };
    let gpu_count = usize::try_from(tch::Cuda::device_count()).unwrap_or(0);
    let devices: Vec<DeviceSpec> = devices::resolve(&device_names, gpu_count)
        .map_err(anyhow::Error::msg)
        .context("choosing devices (--devices or [devices] use)")?;

    // Resolving the model writes nothing, so a missing model leaves no output folder behind.
    let (model_ref, model_src) = loading::resolve(&recipe.model)?;
    loading::warn_if_guessed(&model_src);
    // Before anything of this shard is removed or written: one run per output folder and shard.
    let _lock = ShardLock::acquire(&output, shard)?;
    let estimator = recipe.depth.as_ref().and_then(|d| d.estimator.as_deref());
    let stage_loras: Vec<(String, std::path::PathBuf)> = recipe
        .stages
        .iter()
        .flat_map(|s| {
            s.loras
                .iter()
                .enumerate()
                .map(|(j, l)| (format!("stage/{}/lora/{j}", s.stage_name()), l.path.clone()))
        })
        .collect();
    let extras = Extras {
        controlnet: controlnet.as_deref(),
        estimator,
        stage_loras: &stage_loras,
        ..Extras::default()
    };
    let model = info::describe_source(&model_src, extras)?;
    let resume = args.resume || args.force_resume;
    if resume {
        let journal = journal_path(&output, shard);
        let (records, _) = read_journal(&journal)?;
        if let Err(why) = check_resumable(&records, &loaded.hash, &model.hash, &journal) {
            if !args.force_resume {
                bail!("{why}");
            }
            eprintln!(
                "texaug: warning: --force-resume: {} holds samples of another recipe or model; they are kept and \
                 new ones are added beside them (each row's recipe_hash and model_hash say which made it)",
                journal.display()
            );
        }
    }
    let mut ledger = Ledger::open(&output, shard, resume)?;
    let done: HashSet<String> = ledger.ok_ids();
    let rows_of =
        |jobs: &mut dyn Iterator<Item = &Job>| -> usize { jobs.map(|j| j.row_ids().count()).sum() };
    let total_planned = rows_of(&mut units.iter().flatten());
    let units = units_to_run(units, &done);
    let todo: Vec<&Job> = units.iter().flatten().filter(|j| !j.rerun_only).collect();
    let todo_rows = rows_of(&mut todo.iter().copied());
    let skipped = total_planned - todo_rows;
    // A killed run may have left some files of the samples it had in flight (a job's own and its views'); they
    // are made again from scratch, the job's recorded rows replaced by the new ones.
    let todo_ids: Vec<String> = todo
        .iter()
        .flat_map(|j| j.row_ids().chain(std::iter::once(j.sample_id.as_str())))
        .map(str::to_string)
        .collect();
    remove_unrecorded(
        &output,
        todo_ids.iter().map(String::as_str),
        &HashSet::new(),
    )?;

    write_run_toml(&output, &loaded, &model)?;
    let meta = RunMeta {
        run_id: run_id(&loaded.hash, shard),
        recipe_hash: loaded.hash.clone(),
        model_id: model.id.clone(),
        model_hash: model.hash.clone(),
        default_scheduler: loading::default_scheduler_name(&model_src.configs),
    };

    let dev_labels: Vec<String> = devices.iter().map(ToString::to_string).collect();
    let progress = Progress::new(args.progress, todo_rows, &dev_labels);
    progress.start(&meta.run_id, &shard.to_string(), skipped, &dev_labels);

    let config = PoolConfig {
        devices,
        batch: recipe.devices.batch.max(1),
        fail_fast: args.fail_fast,
        // The recipe's, not the machine's: CPU kernels may round differently with another thread count.
        cpu_threads: recipe.devices.threads.max(1),
        queue_bytes: recipe.devices.queue_mib.saturating_mul(1 << 20),
    };
    let loader =
        SdLoader::new(&recipe.model, model_ref, controlnet).with_stage_loras(&recipe.stages);
    let stages = RecipeStages::new(
        output.clone(),
        recipe.stages.clone(),
        recipe.depth.as_ref(),
        recipe.score.as_ref(),
    )?;
    let mut count = 0u64;
    let mut recorded: HashSet<String> = HashSet::new();
    let outcome = pool::run(&config, units, &stages, &loader, &meta, &progress, |rows| {
        // A sample that failed because the output takes no more files stops the run; its job gets no row.
        for row in rows.iter().filter(|r| !r.is_ok()) {
            if let Some(stop) = stages.take_unwritable(&row.sample_id) {
                return Err(anyhow::Error::new(stop));
            }
        }
        let shown = rows.clone();
        ledger.append_all(rows)?;
        for row in &shown {
            recorded.insert(row.sample_id.clone());
            count += 1;
            progress.sample_done(row, count);
        }
        Ok(())
    });
    // Whatever happened, the Parquet part reflects the journal.
    let summary = ledger.finish();
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            if e.downcast_ref::<OutputUnwritable>().is_some() {
                // Samples written while the run was stopping but never recorded are removed now (freeing their
                // space), so the folder holds exactly what the journal says; --resume makes them again.
                let _ = remove_unrecorded(&output, todo_ids.iter().map(String::as_str), &recorded);
            }
            return Err(e);
        }
    };
    let summary = summary?;
    let elapsed = t0.elapsed().as_secs_f64();
    progress.finish(outcome.done, outcome.failed, elapsed);

    eprintln!(
        "texaug: {} sample(s) made this run ({} failed), {} skipped as already done; shard {shard} holds {} \
         ok / {} failed; {:.1} s; output {}",
        outcome.done,
        outcome.failed,
        skipped,
        summary.ok,
        summary.failed,
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
