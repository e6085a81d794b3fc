//! One file per subcommand; each parses nothing and decides nothing of its own beyond printing, and returns the
//! process exit code ([`exit`]).

pub mod bench_merge;
pub mod dev;
pub mod exit;
pub mod export;
pub mod generate;
pub mod inspect;
pub mod merge;
pub mod model;
pub mod model_fetch;
pub mod model_inspect;
pub mod plan;
pub mod report;
pub mod run;
pub mod validate;

use std::process::ExitCode;

use crate::cli::{Cli, Command, DevCommand, ModelCommand};

pub fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run(args) => run::run(args),
        Command::Plan(args) => plan::plan(args),
        Command::Validate(args) => validate::validate(&args.recipe),
        Command::Inspect(args) => inspect::inspect(&args.output, args.max_failures),
        Command::Report(args) => report::report(&args),
        Command::Merge(args) => merge::merge(&args),
        Command::Export(args) => export::export(&args),
        Command::Generate(args) => generate::generate(*args),
        Command::Model(ModelCommand::InitTiny(args)) => model::init_tiny(args),
        Command::Model(ModelCommand::Inspect(args)) => model_inspect::inspect(&args),
        Command::Model(ModelCommand::ToSingleFile(args)) => model::to_single_file(&args),
        Command::Model(ModelCommand::Fetch(args)) => model_fetch::fetch(&args),
        Command::Dev(DevCommand::DemoData { dir }) => dev::demo_data(&dir),
        Command::Dev(DevCommand::BenchMerge {
            dir,
            rows,
            shards,
            appends,
        }) => bench_merge::bench_merge(&bench_merge::BenchMergeArgs {
            dir,
            rows,
            shards,
            appends,
        }),
    }
}
