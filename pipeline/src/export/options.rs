//! What `texaug export` is asked for: the layout to write, where, and how samples without a split are divided.

use std::path::PathBuf;

use clap::ValueEnum;

use crate::engine::progress::ProgressMode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// Hugging Face ImageFolder: `<split>/<label>/<file>` and a `metadata.jsonl` per split.
    Imagefolder,
    /// COCO instances: `annotations/instances_<split>.json` and `images/<split>/`, masks as uncompressed RLE.
    Coco,
    /// Ultralytics YOLO: `images/<split>/`, `labels/<split>/*.txt` (class cx cy w h) and `data.yaml`.
    Yolo,
    /// WebDataset tar shards `<split>-NNNNNN.tar`: `<id>.png|jpg`, `<id>.json`, `<id>.mask.png`.
    Webdataset,
    /// Hugging Face Parquet shards `data/<split>-NNNNN-of-NNNNN.parquet` with `image` as the Image feature.
    HfParquet,
}

impl ExportFormat {
    /// The folder name under `OUT/export/` and in messages.
    pub fn name(self) -> &'static str {
        match self {
            ExportFormat::Imagefolder => "imagefolder",
            ExportFormat::Coco => "coco",
            ExportFormat::Yolo => "yolo",
            ExportFormat::Webdataset => "webdataset",
            ExportFormat::HfParquet => "hf-parquet",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ExportOptions {
    pub format: ExportFormat,
    /// The export folder; `None` is `OUT/export/<format>`.
    pub out: Option<PathBuf>,
    /// The share of sources (not samples) that goes to validation when the manifest gives no split.
    pub val_ratio: f64,
    pub seed: u64,
    /// Samples per WebDataset shard, rows per Parquet shard.
    pub shard_size: usize,
    pub progress: ProgressMode,
}
