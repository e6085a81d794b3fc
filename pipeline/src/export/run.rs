//! One export: the output folder's rows selected and split, the chosen layout built in a staging folder, a marker
//! file written, and the folder moved into place.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::json;

use super::options::{ExportFormat, ExportOptions};
use super::progress::ExportProgress;
use super::selection::{labels, select, Skipped, Split};
use super::staging::{Staging, MARKER};
use super::written::Written;
use super::{coco, hf_parquet, imagefolder, webdataset, yolo};
use crate::output::reader::read_output;

#[derive(Debug)]
pub struct ExportSummary {
    /// The export folder, absolute.
    pub folder: PathBuf,
    pub format: ExportFormat,
    /// Samples selected per split (before a layout leaves any out).
    pub splits: BTreeMap<Split, usize>,
    pub labels: usize,
    pub skipped: Skipped,
    pub written: Written,
}

/// The default export folder of an output: `OUT/export/<format>`.
pub fn default_folder(output: &Path, format: ExportFormat) -> PathBuf {
    output.join("export").join(format.name())
}

pub fn export(output: &Path, options: &ExportOptions) -> Result<ExportSummary> {
    let records = read_output(output)?;
    let (items, skipped) = select(output, records, options.val_ratio, options.seed)?;
    let target = options
        .out
        .clone()
        .unwrap_or_else(|| default_folder(output, options.format));
    let staging = Staging::begin(&target, output)?;
    let dir = staging.dir().to_path_buf();
    let mut progress = ExportProgress::new(options.progress, options.format.name(), items.len());
    let shard_size = options.shard_size;
    let written = match options.format {
        ExportFormat::Imagefolder => imagefolder::write(&dir, &items, &mut progress),
        ExportFormat::Coco => coco::write(&dir, &items, &mut progress),
        ExportFormat::Yolo => yolo::write(&dir, staging.target(), &items, &mut progress),
        ExportFormat::Webdataset => webdataset::write(&dir, &items, shard_size, &mut progress),
        ExportFormat::HfParquet => hf_parquet::write(&dir, &items, shard_size, &mut progress),
    }
    .with_context(|| {
        format!(
            "exporting {} as {}",
            output.display(),
            options.format.name()
        )
    })?;
    progress.finish();

    let mut splits = BTreeMap::new();
    for item in &items {
        *splits.entry(item.split).or_insert(0usize) += 1;
    }
    let names = labels(&items);
    // No time and no absolute path: two exports of one output are the same bytes wherever they are written.
    let marker = json!({
        "format": options.format.name(),
        "texaug_version": env!("CARGO_PKG_VERSION"),
        "samples": written.samples,
        "annotations": written.annotations,
        "left_out": written.left_out,
        "splits": splits.iter().map(|(s, n)| (s.name().to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
        "labels": names,
        "split_seed": options.seed,
        "val_ratio": options.val_ratio,
        "shard_size": shard_size,
        "skipped_failed": skipped.failed,
        "skipped_filtered": skipped.filtered,
        "skipped_without_image": skipped.without_image,
    });
    let marker_path = dir.join(MARKER);
    std::fs::write(&marker_path, format!("{marker:#}\n"))
        .with_context(|| format!("writing {}", marker_path.display()))?;
    let folder = staging.commit()?;
    Ok(ExportSummary {
        folder,
        format: options.format,
        splits,
        labels: names.len(),
        skipped,
        written,
    })
}
