//! One function per subcommand. Each returns the process exit code: 0 ok, 1 usage or validation error, 2 some
//! samples failed.

mod dev;
mod generate;
mod model;
mod plan;
mod run;

use crate::cli::{Cli, Command, DevCommand, ModelCommand};
use std::process::ExitCode;

/// Some samples failed; their rows carry the errors.
pub const EXIT_SAMPLES_FAILED: u8 = 2;
/// The input was wrong (recipe, manifest, arguments); the message says how.
pub const EXIT_INVALID: u8 = 1;

pub fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run(args) => run::run(args),
        Command::Plan(args) => plan::plan(args),
        Command::Validate(args) => crate::validate::validate(&args.recipe),
        Command::Inspect(args) => crate::inspect::inspect(&args.output, args.max_failures),
        Command::Merge(args) => crate::merge::merge(&args.inputs, &args.out, args.copy),
        Command::Generate(args) => generate::generate(args),
        Command::Model(ModelCommand::InitTiny(args)) => model::init_tiny(args),
        Command::Dev(DevCommand::DemoData { dir }) => dev::demo_data(&dir),
    }
}
