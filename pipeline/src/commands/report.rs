//! `texaug report`: the HTML contact sheet of an output folder; prints where it is.

use std::process::ExitCode;

use anyhow::Result;
use serde_json::json;

use crate::cli::ReportArgs;
use crate::report::build::{build_report, ReportOptions};
use crate::report::model::Limits;
use crate::report::thumbs::ThumbProgress;

pub fn report(args: &ReportArgs) -> Result<ExitCode> {
    let summary = build_report(&ReportOptions {
        output: args.output.clone(),
        progress: args.progress,
        limits: Limits {
            per_cell: args.max_per_cell,
            strips: args.max_strips,
            failures: args.max_failures,
        },
    })?;
    if args.progress == ThumbProgress::Json {
        println!(
            "{}",
            json!({
                "event": "finish", "index": summary.index.display().to_string(),
                "samples": summary.samples, "ok": summary.ok, "failed": summary.failed,
                "thumbs": summary.thumbs, "thumbs_failed": summary.thumbs_failed,
                "failures": summary.failures,
            })
        );
    } else {
        println!(
            "{}: {} samples ({} ok, {} failed), {} thumbnails{}; {} failures listed",
            summary.index.display(),
            summary.samples,
            summary.ok,
            summary.failed,
            summary.thumbs,
            if summary.thumbs_failed > 0 {
                format!(" ({} could not be made)", summary.thumbs_failed)
            } else {
                String::new()
            },
            summary.failures
        );
    }
    Ok(ExitCode::SUCCESS)
}
