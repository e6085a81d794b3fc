//! `texaug merge`: the shards of a cluster run into one folder, deduplicated by sample_id.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;

use crate::output::merge::merge as merge_outputs;

pub fn merge(inputs: &[PathBuf], out: &Path, copy: bool) -> Result<ExitCode> {
    let summary = merge_outputs(inputs, out, copy)?;
    eprintln!(
        "texaug: merged {} input(s) into {}: {} samples ({} ok, {} failed)",
        inputs.len(),
        out.display(),
        summary.samples,
        summary.ok,
        summary.samples - summary.ok
    );
    Ok(ExitCode::SUCCESS)
}
