//! A recipe file → its sources → the plan → fixed batches → the units of one shard: what `texaug run` and
//! `texaug plan` start from.

use std::path::Path;

use crate::config::recipe::LoadedRecipe;
use crate::config::recipe_load;
use crate::config::sources::load_recipe_sources;

use super::batching::{shard_units, units};
use super::jobs::{plan, Job};
use super::shard::Shard;

/// The recipe, and every unit of its full plan (each a fixed batch, in plan order).
pub fn plan_recipe_units(recipe: &Path) -> anyhow::Result<(LoadedRecipe, Vec<Vec<Job>>)> {
    let loaded = recipe_load::load(recipe)?;
    let sources = load_recipe_sources(&loaded)?;
    let units = units(plan(&loaded.recipe, &sources), loaded.recipe.devices.batch);
    Ok((loaded, units))
}

/// The recipe, and the units of `shard` (each a fixed batch of the full plan, in plan order).
pub fn plan_recipe(recipe: &Path, shard: Shard) -> anyhow::Result<(LoadedRecipe, Vec<Vec<Job>>)> {
    let (loaded, all) = plan_recipe_units(recipe)?;
    let units = shard_units(all, loaded.recipe.devices.batch, shard);
    Ok((loaded, units))
}
