//! A sample's row from its planned job, the run it belongs to, and what the job wrote (or why it failed).

use texaug_stages::job::{WrittenSample, WrittenView};

use super::layout::sample_rel_file;
use super::record::SampleRecord;
use crate::plan::Job;

/// Where a sample's time went. `work_ms` is its own: its prepare, its share of each device call it was in (the
/// call's time over the requests in it, times its own requests) and its finish. `queue_ms` is the rest of its wall
/// time, spent waiting for a device, for its batch, or for a finish thread.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SampleTiming {
    pub work_ms: f64,
    pub queue_ms: f64,
}

impl SampleTiming {
    /// Splits `wall_ms` (first prepare to end of finish) into the sample's own work and its wait.
    pub fn of(work_ms: f64, wall_ms: f64) -> SampleTiming {
        SampleTiming {
            work_ms,
            queue_ms: (wall_ms - work_ms).max(0.0),
        }
    }
}

fn whole_ms(ms: f64) -> i64 {
    ms.round().clamp(0.0, i64::MAX as f64) as i64
}

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
    pub fn planned(job: &Job, meta: &RunMeta, device: &str, timing: SampleTiming) -> SampleRecord {
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
            duration_ms: whole_ms(timing.work_ms),
            queue_ms: Some(whole_ms(timing.queue_ms)),
            status: "ok".into(),
            error: None,
            texaug_version: env!("CARGO_PKG_VERSION").into(),
            views: job.views.map(i64::from),
            coverage: None,
            view_consistency_db: None,
            parent_sample_id: None,
            mask_path: None,
            depth_path: None,
            depth_scale_m: None,
            bbox_x: None,
            bbox_y: None,
            bbox_w: None,
            bbox_h: None,
            camera: None,
            background: None,
            clip_score: None,
        }
    }

    /// The row of a job that failed, with its error.
    pub fn failed(
        job: &Job,
        meta: &RunMeta,
        device: &str,
        timing: SampleTiming,
        error: String,
    ) -> SampleRecord {
        SampleRecord {
            status: "failed".into(),
            error: Some(error),
            ..SampleRecord::planned(job, meta, device, timing)
        }
    }

    /// The row of a job whose files `written` are in its sample folder.
    pub fn finished(
        job: &Job,
        meta: &RunMeta,
        device: &str,
        timing: SampleTiming,
        written: &WrittenSample,
    ) -> SampleRecord {
        let rel = |file: &String| sample_rel_file(&job.sample_id, file);
        let textures: Vec<String> = written.textures.iter().map(rel).collect();
        SampleRecord {
            status: if written.filtered { "filtered" } else { "ok" }.into(),
            clip_score: written.clip_score,
            width: Some(i64::from(written.width)),
            height: Some(i64::from(written.height)),
            image_path: written.image.as_ref().map(rel),
            texture_path: (!textures.is_empty()).then(|| textures.join(";")),
            asset_path: written.asset.as_ref().map(rel),
            output_sha256: (!written.sha256.is_empty()).then(|| written.sha256.clone()),
            depth_source: written.depth_source.map(|d| d.as_str().to_string()),
            views: written.views.map(|v| v as i64),
            coverage: written.coverage,
            view_consistency_db: written.view_consistency_db,
            ..SampleRecord::planned(job, meta, device, timing)
        }
    }
}

/// The rows of a job: one per rendered view (failed with the reason when the render did not happen), then its
/// own when it has one.
pub fn job_rows(
    job: &Job,
    meta: &RunMeta,
    device: &str,
    timing: SampleTiming,
    result: Result<WrittenSample, String>,
) -> Vec<SampleRecord> {
    let mut rows = Vec::new();
    if let Some(render) = &job.render {
        for (i, id) in render.view_ids.iter().enumerate() {
            let view = match &result {
                Ok(w) => match (&w.render_error, w.rendered.get(i)) {
                    (None, Some(v)) => Ok(v),
                    (Some(e), _) => Err(format!("the view was not rendered: {e}")),
                    (None, None) => {
                        Err("internal: the render made fewer views than planned".to_string())
                    }
                },
                Err(e) => Err(format!("the view was not rendered: {e}")),
            };
            rows.push(view_row(
                job,
                id,
                i,
                meta,
                device,
                view,
                result.as_ref().ok(),
            ));
        }
    }
    if job.own_row {
        rows.push(match result {
            Ok(w) => SampleRecord::finished(job, meta, device, timing, &w),
            Err(e) => SampleRecord::failed(job, meta, device, timing, e),
        });
    }
    rows
}

/// The row of view `index` (sample `id`) of `job`'s render.
fn view_row(
    job: &Job,
    id: &str,
    index: usize,
    meta: &RunMeta,
    device: &str,
    view: Result<&WrittenView, String>,
    parent: Option<&WrittenSample>,
) -> SampleRecord {
    let render = job.render.as_ref();
    let own = SampleRecord::planned(job, meta, device, SampleTiming::default());
    // A render of a source mesh ran no model: its generation columns say so.
    let (strength, guidance, steps) = if job.own_row {
        (own.strength, own.guidance, own.steps)
    } else {
        (0.0, 0.0, 0)
    };
    let base = SampleRecord {
        sample_id: id.to_string(),
        stage: render.map_or(String::new(), |r| r.stage.clone()),
        variant: index as i64,
        seed: render.map_or(0, |r| i64::try_from(r.seed).unwrap_or(i64::MAX)),
        strength,
        guidance,
        steps,
        views: None,
        queue_ms: None,
        parent_sample_id: job.own_row.then(|| job.sample_id.clone()),
        asset_path: parent
            .filter(|_| job.own_row)
            .and_then(|p| p.asset.as_ref())
            .map(|a| sample_rel_file(&job.sample_id, a)),
        ..own
    };
    match view {
        Err(e) => SampleRecord {
            status: "failed".into(),
            error: Some(e),
            ..base
        },
        Ok(v) => {
            let rel = |file: &Option<String>| file.as_ref().map(|f| sample_rel_file(id, f));
            let bbox = |k: usize| v.bbox.map(|b| i64::from(b[k]));
            SampleRecord {
                status: if v.filtered { "filtered" } else { "ok" }.into(),
                clip_score: v.clip_score,
                width: Some(i64::from(v.width)),
                height: Some(i64::from(v.height)),
                image_path: rel(&v.image),
                mask_path: rel(&v.mask),
                depth_path: rel(&v.depth),
                depth_scale_m: v.depth_scale_m,
                bbox_x: bbox(0),
                bbox_y: bbox(1),
                bbox_w: bbox(2),
                bbox_h: bbox(3),
                camera: Some(v.camera.clone()),
                background: Some(v.background.clone()),
                output_sha256: (!v.sha256.is_empty()).then(|| v.sha256.clone()),
                duration_ms: whole_ms(v.render_ms),
                ..base
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_is_the_wall_time_the_sample_did_not_work() {
        assert_eq!(
            SampleTiming::of(30.0, 100.0),
            SampleTiming {
                work_ms: 30.0,
                queue_ms: 70.0
            }
        );
        // Shares of a batch call are estimates: they never make the wait negative.
        assert_eq!(SampleTiming::of(100.4, 100.0).queue_ms, 0.0);
        assert_eq!(whole_ms(2.6), 3);
        assert_eq!(whole_ms(-1.0), 0);
    }
}
