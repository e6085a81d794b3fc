//! `texaug`: re-texture meshes and images with Stable Diffusion, as a reproducible batch pipeline.
//!
//! The flow of one run (docs/ARCHITECTURE.md): [`config`] (recipe × source manifest) → [`plan`] (jobs, ids,
//! seeds, fixed batches, shards) → [`engine`] (prepare in rayon, device workers running the [`model`], finish in rayon, through
//! `texaug_stages::job`) → [`output`] (journal + Parquet part per shard, sample folders). [`commands`] print.
//!
//! The crate is the `texaug` binary; as a library it offers [`cli_main`] (the whole command line) and [`inputs`]
//! (the readers of the files a user writes, which the fuzz targets in `fuzz/` drive).

mod cli;
mod commands;
mod config;
mod engine;
mod export;
pub mod inputs;
mod model;
mod output;
mod parquet_decode;
mod plan;
mod report;

/// What a caught panic says (the engine's failed rows; the fuzz replay's report).
pub use engine::pool::panic_message;

use clap::Parser;
use std::process::ExitCode;

/// Parses the process's arguments and runs the command; the `texaug` binary's `main`.
pub fn cli_main() -> ExitCode {
    restore_default_sigpipe();
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

/// `texaug inspect out | head` must end quietly when `head` closes the pipe, as `ls | head` does. Rust ignores
/// SIGPIPE, which turns every later `println!` into a panic; the default action ends the process instead.
fn restore_default_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called first thing in `main`, before any thread exists; setting a signal's disposition to its
    // default has no other effect on the process.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
