//! The output folder: where each file lies ([`layout`]), the sample record and its Parquet form ([`record`],
//! [`cell`], [`parquet`], [`row`]), the per-shard journal ([`ledger`]) and its lock ([`lock`]), a full or
//! read-only disk ([`disk`]), reading an output back ([`reader`]), merging shards ([`merge`]), `run.toml`
//! ([`run_toml`]) and folder copies ([`tree`]).

pub mod cell;
pub mod disk;
pub mod layout;
pub mod ledger;
pub mod lock;
pub mod merge;
pub mod merge_plan;
pub mod parquet;
pub mod reader;
pub mod record;
pub mod row;
pub mod run_toml;
pub mod tree;
