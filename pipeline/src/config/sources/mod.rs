//! Source manifests: CSV, JSONL or Parquet with columns `id, path, label` and optional `kind, depth, mask, prompt, split`,
//! or a directory walk. Relative paths resolve against the manifest's folder; every problem is located by line.

pub mod csv;
pub mod jsonl;
pub mod load;
pub mod parquet;
pub mod rows;
pub mod source;
pub mod walk;

pub use load::{load_manifest, load_recipe_sources};
pub use source::{Source, SourceKind};
pub use walk::walk_dir;
