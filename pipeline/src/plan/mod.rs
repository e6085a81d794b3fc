//! The plan (pure but for reading the recipe and manifest): recipe × sources → jobs ([`jobs`]) → fixed batches on
//! the full plan ([`batching`]) → the units of one shard ([`shard`]); [`load`] does all of it for a recipe file.
//! Nothing else decides what a run makes, so `texaug plan` shows exactly what `texaug run` will do.

pub mod batching;
pub mod jobs;
pub mod load;
pub mod shard;

pub use jobs::Job;
pub use load::{plan_recipe, plan_recipe_units};
pub use shard::Shard;
