//! `texaug`: re-texture meshes and images with Stable Diffusion, as a reproducible batch pipeline.
//!
//! The flow of one run (docs/ARCHITECTURE.md): [`config`] (recipe × source manifest) → [`plan`] (jobs, ids,
//! seeds, shards) → [`engine`] (prepare in rayon, device workers running the [`model`], finish in rayon, through
//! `texaug_stages::job`) → [`output`] (journal + Parquet part per shard, sample folders). [`commands`] print.

mod cli;
mod commands;
mod config;
mod engine;
mod model;
mod output;
mod plan;

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
                ExitCode::from(commands::exit::EXIT_INVALID)
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
