//! `texaug report`'s work: read the output's records and `run.toml`, build the page, make its thumbnails, render
//! the HTML, and publish `OUT/report/` in one rename.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{Context, Result};

use super::html::render_page;
use super::model::{build_page, Limits};
use super::publish::{Staging, REPORT_DIR};
use super::run_info::read_run_info;
use super::thumbs::{make_thumbs, ThumbJob, ThumbProgress, THUMB_PX};
use crate::output::reader::read_output;
use crate::output::record::SampleRecord;

pub struct ReportOptions {
    pub output: PathBuf,
    pub progress: ThumbProgress,
    pub limits: Limits,
}

#[derive(Debug)]
pub struct ReportSummary {
    pub index: PathBuf,
    pub samples: usize,
    pub ok: u64,
    pub failed: u64,
    pub thumbs: usize,
    pub thumbs_failed: usize,
    /// Failed rows and the problems the report found, all listed on the page.
    pub failures: usize,
}

pub fn build_report(options: &ReportOptions) -> Result<ReportSummary> {
    let output = &options.output;
    let records = read_output(output)?;
    let run = read_run_info(output);
    let folder = output
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| output.display().to_string());
    let title = match &run.name {
        Some(name) if *name != folder => format!("{name} ({folder})"),
        _ => folder,
    };
    let mut page = build_page(&title, &records, &run.stages, run.recipe, options.limits);
    let staging = Staging::new(output)?;
    let jobs: Vec<ThumbJob> = page
        .tiles_mut()
        .filter_map(|t| {
            Some(ThumbJob {
                sample_id: t.sample_id.clone(),
                source: t.source.clone()?,
                dest: staging
                    .path()
                    .join("thumbs")
                    .join(format!("{}.png", t.sample_id)),
            })
        })
        .collect();
    let by_id: HashMap<&str, &SampleRecord> =
        records.iter().map(|r| (r.sample_id.as_str(), r)).collect();
    let mut thumbs_failed = 0;
    for (id, result) in make_thumbs(output, &jobs, options.progress) {
        match (result, by_id.get(id.as_str())) {
            (Ok(size), _) => page.thumb_made(&id, size, THUMB_PX),
            (Err(e), Some(row)) => {
                thumbs_failed += 1;
                page.thumb_failed(&id, &e, row);
            }
            (Err(_), None) => {}
        }
    }
    let html = render_page(&page)?;
    let index = staging.path().join("index.html");
    std::fs::write(&index, html).with_context(|| format!("writing {}", index.display()))?;
    let dest = output.join(REPORT_DIR);
    staging.publish(&dest)?;
    Ok(ReportSummary {
        index: dest.join("index.html"),
        samples: records.len(),
        ok: page.total.ok,
        failed: page.total.failed,
        thumbs: jobs.len() - thumbs_failed,
        thumbs_failed,
        failures: page.failures.len() + page.failures_left_out,
    })
}
