//! A recipe file → its sources → the plan → fixed batches → the units of one shard: what `texaug run` and
//! `texaug plan` start from.

use std::path::Path;

use crate::config::recipe::LoadedRecipe;
use crate::config::recipe_load;
use crate::config::sources::load_recipe_sources;

use super::batching::{shard_units, units};
use super::jobs::{plan, plan_refs, Job, JobBuilder};
use super::shard::Shard;

/// The recipe, and every unit of its full plan (each a fixed batch, in plan order).
pub fn plan_recipe_units(recipe: &Path) -> anyhow::Result<(LoadedRecipe, Vec<Vec<Job>>)> {
    let loaded = recipe_load::load(recipe)?;
    let sources = load_recipe_sources(&loaded)?;
    let units = units(plan(&loaded.recipe, &sources), loaded.recipe.devices.batch);
    Ok((loaded, units))
}

/// The recipe, and the units of `shard` (each a fixed batch of the full plan, in plan order). The whole plan is
/// batched and cut in its compact form; only the shard's own jobs are built in full (docs/SCALE.md: a task of a
/// 10^7-job run holds 10^7 × ~70 bytes, not 10^7 full jobs).
pub fn plan_recipe(recipe: &Path, shard: Shard) -> anyhow::Result<(LoadedRecipe, Vec<Vec<Job>>)> {
    let loaded = recipe_load::load(recipe)?;
    let sources = load_recipe_sources(&loaded)?;
    let batch = loaded.recipe.devices.batch;
    let mine = shard_units(
        units(plan_refs(&loaded.recipe, &sources), batch),
        batch,
        shard,
    );
    let mut builder = JobBuilder::new(&loaded.recipe, &sources);
    let units = mine
        .iter()
        .map(|u| u.iter().map(|r| builder.build(r)).collect())
        .collect();
    drop(builder);
    Ok((loaded, units))
}
