//! A sample's row from its planned job, the run it belongs to, and what the job wrote (or why it failed).

use std::time::Instant;

use texaug_stages::job::WrittenSample;

use super::layout::sample_rel_file;
use super::record::SampleRecord;
use crate::plan::Job;

/// Fields of every record that come from the run rather than the job.
#[derive(Debug, Clone)]
pub struct RunMeta {
    pub run_id: String,
    pub recipe_hash: String,
    pub model_id: String,
    pub model_hash: String,
    /// What the scheduler column says for jobs that use the model's own scheduler.
    pub default_scheduler: String,
}

impl SampleRecord {
    /// The row of `job` before its outputs are known: status ok, no files.
    pub fn planned(job: &Job, meta: &RunMeta, device: &str, started: Instant) -> SampleRecord {
        SampleRecord {
            sample_id: job.sample_id.clone(),
            run_id: meta.run_id.clone(),
            recipe_hash: meta.recipe_hash.clone(),
            source_id: job.source_id.clone(),
            source_path: job.source.path.display().to_string(),
            source_kind: job.source.kind.as_str().into(),
            label: job.source.label.clone(),
            split: job.source.split.clone(),
            stage: job.stage.clone(),
            variant: i64::from(job.variant),
            prompt: job.prompt.clone(),
            negative_prompt: job.negative_prompt.clone(),
            seed: i64::try_from(job.seed).unwrap_or(i64::MAX),
            strength: job.strength,
            guidance: job.guidance,
            steps: i64::from(job.steps),
            scheduler: job
                .scheduler
                .clone()
                .unwrap_or_else(|| meta.default_scheduler.clone()),
            model_id: meta.model_id.clone(),
            model_hash: meta.model_hash.clone(),
            depth_source: None,
            width: None,
            height: None,
            image_path: None,
            texture_path: None,
            asset_path: None,
            output_sha256: None,
            device: device.to_string(),
            duration_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
            status: "ok".into(),
            error: None,
            texaug_version: env!("CARGO_PKG_VERSION").into(),
            views: job.views.map(i64::from),
            coverage: None,
        }
    }

    /// The row of a job that failed, with its error.
    pub fn failed(
        job: &Job,
        meta: &RunMeta,
        device: &str,
        started: Instant,
        error: String,
    ) -> SampleRecord {
        SampleRecord {
            status: "failed".into(),
            error: Some(error),
            ..SampleRecord::planned(job, meta, device, started)
        }
    }

    /// The row of a job whose files `written` are in its sample folder.
    pub fn finished(
        job: &Job,
        meta: &RunMeta,
        device: &str,
        started: Instant,
        written: &WrittenSample,
    ) -> SampleRecord {
        let rel = |file: &String| sample_rel_file(&job.sample_id, file);
        let textures: Vec<String> = written.textures.iter().map(rel).collect();
        SampleRecord {
            width: Some(i64::from(written.width)),
            height: Some(i64::from(written.height)),
            image_path: written.image.as_ref().map(rel),
            texture_path: (!textures.is_empty()).then(|| textures.join(";")),
            asset_path: written.asset.as_ref().map(rel),
            output_sha256: Some(written.sha256.clone()),
            depth_source: written.depth_source.map(|d| d.as_str().to_string()),
            views: written.views.map(|v| v as i64),
            coverage: written.coverage,
            ..SampleRecord::planned(job, meta, device, started)
        }
    }
}
