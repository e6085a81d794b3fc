//! The readers of the files a user writes — the recipe and the source manifests — behind a small public API, so
//! that the fuzz targets (`fuzz/`) drive exactly the code `texaug run` and `texaug validate` use. Each returns the
//! problems as the command line prints them (`file:line:col: message` and a fix).

use std::path::Path;

use crate::config::recipe_load;
use crate::config::sources::load::load_manifest;

/// What reading a user's file gave: how many items it declared (stages of a recipe, rows of a manifest), or the
/// problems found, one printed diagnostic each.
pub type InputCheck = Result<usize, Vec<String>>;

/// Parses and checks a recipe as `texaug validate` does before it looks at the files the recipe names.
pub fn check_recipe(path: &Path) -> InputCheck {
    let (loaded, diags) = recipe_load::check(path);
    match loaded {
        Some(l) if diags.is_empty() => Ok(l.recipe.stages.len()),
        _ => Err(diags.iter().map(ToString::to_string).collect()),
    }
}

/// Reads a source manifest (CSV, JSONL or Parquet, by extension) into sources, with every row checked.
pub fn read_manifest(path: &Path) -> InputCheck {
    load_manifest(path)
        .map(|sources| sources.len())
        .map_err(|d| d.0.iter().map(ToString::to_string).collect())
}
