//! `texaug validate`: every problem of a recipe and what it names, as `file:line:col: message` with a fix.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use super::exit::EXIT_INVALID;
use crate::config::check_inputs::collect;

pub fn validate(recipe_path: &Path) -> Result<ExitCode> {
    let (diags, summary) = collect(recipe_path);
    for d in &diags {
        println!("{d}");
    }
    if diags.is_empty() {
        println!("{}: ok ({summary})", recipe_path.display());
        Ok(ExitCode::SUCCESS)
    } else {
        println!("{} problem(s) found", diags.len());
        Ok(ExitCode::from(EXIT_INVALID))
    }
}
