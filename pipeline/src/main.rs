//! `texaug`: re-texture meshes and images with Stable Diffusion, as a reproducible batch pipeline.
//!
//! The flow of one run (see DESIGN.md §1): recipe × source manifest → [`plan`] → [`pool`] (prepare in rayon, device
//! workers, finish in rayon) → [`ledger`] (journal + Parquet part per shard).

mod cli;
mod commands;
mod depth_cond;
mod devices;
mod diagnostic;
mod inspect;
mod ledger;
mod merge;
mod model_info;
mod plan;
mod pool;
mod progress;
mod recipe;
mod recipe_schema;
mod sample_manifest;
mod sd_model;
mod sinks;
mod source_manifest;
mod stage_depth;
mod stage_style;
mod validate;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Usage errors exit with 1 like every other input error (clap's own default is 2, which texaug reserves for
    // "some samples failed").
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(commands::EXIT_INVALID)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match commands::dispatch(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(1)
        }
    }
}
