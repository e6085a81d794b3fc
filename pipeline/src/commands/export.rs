//! `texaug export`: an output folder as a training set in one of the layouts of `crate::export`.

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::ExportArgs;
use crate::export::{export as export_output, ExportOptions};

pub fn export(args: &ExportArgs) -> Result<ExitCode> {
    let options = ExportOptions {
        format: args.format,
        out: args.out.clone(),
        val_ratio: args.val_ratio,
        seed: args.seed,
        shard_size: usize::try_from(args.shard_size).unwrap_or(usize::MAX),
        progress: args.progress,
    };
    let s = export_output(&args.output, &options)?;
    let splits: Vec<String> = s
        .splits
        .iter()
        .map(|(split, n)| format!("{n} {}", split.name()))
        .collect();
    println!(
        "texaug: exported {} samples of {} as {} into {} (selected: {}; {} labels, {} annotations)",
        s.written.samples,
        args.output.display(),
        s.format.name(),
        s.folder.display(),
        if splits.is_empty() {
            "none".to_string()
        } else {
            splits.join(", ")
        },
        s.labels,
        s.written.annotations,
    );
    if s.written.left_out > 0 {
        println!(
            "texaug: left out {} image(s) without a mask: {} holds boxes, and they have none",
            s.written.left_out,
            s.format.name()
        );
    }
    if s.skipped.failed + s.skipped.filtered + s.skipped.without_image > 0 {
        println!(
            "texaug: skipped {} failed sample(s), {} filtered by min_clip_score and {} without an image (meshes: \
             their rendered views are the images)",
            s.skipped.failed, s.skipped.filtered, s.skipped.without_image
        );
    }
    Ok(ExitCode::SUCCESS)
}
