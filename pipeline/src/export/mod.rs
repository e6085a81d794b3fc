//! `texaug export`: an output folder as a training set in a layout other tools read — Hugging Face ImageFolder
//! ([`imagefolder`]) and Parquet ([`hf_parquet`]), COCO ([`coco`]), Ultralytics YOLO ([`yolo`]), WebDataset
//! ([`webdataset`]). [`selection`] picks the rows and their splits (per source, so no object is in two splits),
//! [`paths`] keeps every file read inside the output folder, [`mask`] and [`rle`] turn masks into boxes and COCO
//! RLE, [`staging`] builds the export beside its folder and moves it into place, [`run`] ties them together.

pub mod coco;
pub mod hf_parquet;
pub mod imagefolder;
pub mod mask;
pub mod options;
pub mod paths;
pub mod progress;
pub mod rle;
pub mod run;
pub mod selection;
pub mod staging;
pub mod webdataset;
pub mod written;
pub mod yolo;

pub use options::{ExportFormat, ExportOptions};
pub use run::export;
