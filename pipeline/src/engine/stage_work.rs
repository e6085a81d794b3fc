//! The recipe's stages as the engine's [`StageWork`]: each job becomes a call into `texaug_stages::job` (prepare
//! before the device, complete and write after it), into `samples/<sample_id>/` of the output folder. A write that
//! fails because the output takes no more files (disk full, read-only) is kept aside ([`RecipeStages::take_unwritable`])
//! so the run stops on it instead of recording a failed row.

use std::collections::HashMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Instant;

use anyhow::Context;
use image::RgbImage;
use image::RgbaImage;
use texaug_stages::depth::{DepthEstimator, DepthNormalization};
use texaug_stages::diffusion::request::XlConds;
use texaug_stages::diffusion::schedulers::SchedulerKind;
use texaug_stages::job::{
    memory, prepare, render_mesh, AssetRef, DepthMode, DepthSettings, DepthStage, JobError,
    JobSettings, ModelSize, PreparedJob, Retextured, Stage, WrittenSample, WrittenView,
};
use texaug_stages::source::MeshAsset;

use rayon::prelude::*;

use super::render_work::{render_stages, RenderStage};
use super::scoring::Scoring;

use super::work::{Prepared, StageWork};
use crate::config::recipe::{
    estimator_hub_id_refusal, DepthSpec, ScoreSpec, StageKind, StageSpec, DEFAULT_AZIMUTHS,
    DEFAULT_CONDITIONING_SCALE, DEFAULT_GUTTER, DEFAULT_SHARPNESS,
};
use crate::output::disk::{fault_before_write, OutputUnwritable};
use crate::output::layout::sample_dir;
use crate::plan::Job;

/// Every stage of a recipe, and the depth estimator its depth stages share.
pub struct RecipeStages {
    output: PathBuf,
    stages: Vec<StageSpec>,
    estimator: Option<Mutex<DepthEstimator>>,
    /// Print where each job's CPU time went (TEXAUG_PROFILE=1), for the benchmark in bench/RESULTS.md.
    profile: bool,
    /// Samples whose files could not be written because the output takes no more (by sample_id).
    unwritable: Mutex<HashMap<String, OutputUnwritable>>,
    /// The render settings of the render stages, by stage index.
    renders: Vec<Option<RenderStage>>,
    /// `[score]`: the model every written image is scored with.
    scoring: Option<Scoring>,
}

/// What a prepared job carries to its finish, and how long its preparation took.
pub struct JobState {
    work: JobWork,
    prepare_ms: f64,
}

enum JobWork {
    /// A style or depth job: its model requests went to the device.
    Retexture(PreparedJob),
    /// A render of a source mesh: no model, the mesh as read.
    RenderSource(MeshAsset),
}

/// The depth settings of a recipe stage.
pub fn depth_settings(stage: &StageSpec) -> DepthSettings {
    DepthSettings {
        azimuths: stage.views.unwrap_or(DEFAULT_AZIMUTHS),
        sharpness: stage.sharpness.unwrap_or(DEFAULT_SHARPNESS),
        gutter: stage.gutter.unwrap_or(DEFAULT_GUTTER),
        sync: stage.sync.unwrap_or(true),
        mode: match &stage.controlnet {
            Some(_) => DepthMode::ControlNet(
                stage
                    .conditioning_scale
                    .unwrap_or(DEFAULT_CONDITIONING_SCALE),
            ),
            None => DepthMode::Unet,
        },
    }
}

/// The img2img settings of a planned job.
pub fn job_settings(job: &Job) -> Result<JobSettings, String> {
    let scheduler = job
        .scheduler
        .as_deref()
        .map(SchedulerKind::from_str)
        .transpose()
        .map_err(|e| e.to_string())?;
    Ok(JobSettings {
        prompt: job.prompt.clone(),
        negative_prompt: job.negative_prompt.clone(),
        strength: job.strength,
        guidance: job.guidance,
        steps: job.steps,
        seed: job.seed,
        scheduler,
        size: ModelSize::Sized {
            side: job.size,
            fit: job.fit,
        },
        adapters: job.lora_set,
        xl: XlConds::default(),
        denoising_start: None,
    })
}

/// The estimator with the recipe's input size and normalization (DPT's 384 and 0.5 / 0.5 unless `[depth]` says).
fn configured_estimator(
    spec: &DepthSpec,
    path: &std::path::Path,
) -> anyhow::Result<DepthEstimator> {
    let estimator = DepthEstimator::load(path, tch::Device::Cpu)
        .with_context(|| format!("[depth] estimator = {}", path.display()))?;
    let (dpt_mean, dpt_std) = DepthNormalization::Dpt.mean_std();
    let size = spec.size.unwrap_or(384);
    Ok(estimator
        .with_input_size(size, size)
        .with_normalization(DepthNormalization::MeanStd {
            mean: spec.mean.unwrap_or(dpt_mean),
            std: spec.std.unwrap_or(dpt_std),
        }))
}

impl RecipeStages {
    /// `stages`: the recipe's stages (jobs name theirs by index); the estimator loads on the CPU when named.
    pub fn new(
        output: PathBuf,
        stages: Vec<StageSpec>,
        depth: Option<&DepthSpec>,
        score: Option<&ScoreSpec>,
    ) -> anyhow::Result<RecipeStages> {
        if let Some(id) = depth.and_then(DepthSpec::estimator_hub_id) {
            anyhow::bail!(estimator_hub_id_refusal(id));
        }
        let estimator = match depth.and_then(|d| d.estimator.as_ref().map(|p| (d, p))) {
            Some((spec, path)) => Some(Mutex::new(configured_estimator(spec, path)?)),
            None => None,
        };
        Ok(RecipeStages {
            output,
            estimator,
            profile: std::env::var_os("TEXAUG_PROFILE").is_some_and(|v| v == "1"),
            unwritable: Mutex::new(HashMap::new()),
            renders: render_stages(&stages)?,
            scoring: score.map(Scoring::load).transpose()?,
            stages,
        })
    }

    /// Why the files of `sample_id` could not be written, when the reason is the output itself (a full disk, a
    /// read-only file system): the run must stop rather than record the sample as failed.
    pub fn take_unwritable(&self, sample_id: &str) -> Option<OutputUnwritable> {
        self.unwritable
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(sample_id)
    }

    fn stage(&self, job: &Job) -> Result<Stage<'_>, String> {
        let spec = self
            .stages
            .get(job.stage_index)
            .ok_or_else(|| format!("internal: job {} names no stage", job.sample_id))?;
        Ok(match spec.kind {
            StageKind::Style => Stage::Style,
            StageKind::Depth => Stage::Depth(DepthStage {
                settings: depth_settings(spec),
                estimator: self.estimator.as_ref(),
            }),
            StageKind::Render => {
                return Err(format!(
                    "internal: job {} of render stage `{}` has no model work",
                    job.sample_id, job.stage
                ))
            }
        })
    }

    /// Renders `asset` (with `replaced` textures) as `job`'s render stage says, scores each view when the run
    /// scores, and writes each into its sample folder (a view filtered out is written only when its stage keeps
    /// filtered samples).
    fn render(
        &self,
        job: &Job,
        asset: &MeshAsset,
        replaced: &[(usize, RgbaImage)],
    ) -> Result<Vec<WrittenView>, String> {
        let Some(render) = &job.render else {
            return Ok(Vec::new());
        };
        let (Some(Some(stage)), Some(spec)) = (
            self.renders.get(render.stage_index),
            self.stages.get(render.stage_index),
        ) else {
            return Ok(Vec::new());
        };
        let Some(first) = render.view_ids.first() else {
            return Ok(Vec::new());
        };
        let first_dir = sample_dir(&self.output, first);
        let mut settings = stage.settings.clone();
        settings.views = render.view_ids.len() as u32;
        let frames =
            render_mesh(asset, replaced, &settings, render.seed).map_err(|e| e.to_string())?;
        let scores = match &self.scoring {
            Some(scoring) => {
                let images: Vec<RgbImage> = frames.iter().map(|f| f.view.rgb.clone()).collect();
                Some(scoring.score(&images, &job.source)?)
            }
            None => None,
        };
        let written: Result<Vec<WrittenView>, JobError> = fault_before_write(&first_dir)
            .map_err(|source| JobError::Write {
                path: first_dir.clone(),
                source,
            })
            .and_then(|_| {
                frames
                    .par_iter()
                    .enumerate()
                    .map(|(i, frame)| {
                        let score = scores.as_ref().map(|s| s[i]);
                        let filtered = is_filtered(spec, score);
                        let index = i as u32;
                        let mut view = if filtered && !spec.keep_filtered {
                            frame.unwritten(index)
                        } else {
                            let dir = sample_dir(&self.output, &render.view_ids[i]);
                            frame.write(&dir, index, stage.format)?
                        };
                        view.clip_score = score;
                        view.filtered = filtered;
                        Ok(view)
                    })
                    .collect()
            });
        if let Err(e) = &written {
            let what = format!("the views of sample {}", job.sample_id);
            if let Some(stop) = OutputUnwritable::classify(e, what, &first_dir) {
                self.unwritable
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(first.clone(), stop);
            }
        }
        written.map_err(|e| e.to_string())
    }
}

/// Whether a score falls below the stage's `min_clip_score`.
fn is_filtered(stage: &StageSpec, score: Option<f64>) -> bool {
    matches!((stage.min_clip_score, score), (Some(min), Some(s)) if s < min)
}

impl StageWork for RecipeStages {
    type State = JobState;

    fn prepare(&self, job: &Job) -> Result<Prepared<JobState>, String> {
        let t0 = Instant::now();
        let source = &job.source;
        let asset = AssetRef {
            id: &source.id,
            path: &source.path,
            kind: source.kind,
            depth: source.depth.as_deref(),
            mask: source.mask.as_deref(),
        };
        if job.stage_kind == StageKind::Render {
            let mesh = MeshAsset::load(&source.path).map_err(|e| e.to_string())?;
            return Ok(Prepared {
                bytes: memory::asset_bytes(&mesh),
                requests: Vec::new(),
                one_batch: false,
                state: JobState {
                    work: JobWork::RenderSource(mesh),
                    prepare_ms: t0.elapsed().as_secs_f64() * 1e3,
                },
            });
        }
        let mut prepared =
            prepare(&asset, &self.stage(job)?, &job_settings(job)?).map_err(|e| e.to_string())?;
        // The requests go to the device; what completing the job needs stays in the state.
        Ok(Prepared {
            bytes: prepared.memory_bytes(),
            requests: std::mem::take(&mut prepared.requests),
            one_batch: prepared.one_batch,
            state: JobState {
                work: JobWork::Retexture(prepared),
                prepare_ms: t0.elapsed().as_secs_f64() * 1e3,
            },
        })
    }

    fn finish(
        &self,
        job: &Job,
        state: JobState,
        outputs: Vec<RgbImage>,
    ) -> Result<WrittenSample, String> {
        let t0 = Instant::now();
        let requests = outputs.len();
        let prepared = match state.work {
            JobWork::Retexture(p) => p,
            JobWork::RenderSource(mesh) => {
                return self.render(job, &mesh, &[]).map(|rendered| WrittenSample {
                    rendered,
                    ..WrittenSample::default()
                });
            }
        };
        let dir = sample_dir(&self.output, &job.sample_id);
        let done = prepared.complete(outputs).map_err(|e| e.to_string())?;
        let score = match (&self.scoring, &done) {
            (Some(scoring), Retextured::Image { image, .. }) => {
                let rgb = image::DynamicImage::ImageRgba8(image.clone()).to_rgb8();
                scoring.score(&[rgb], &job.source)?.first().copied()
            }
            _ => None,
        };
        let spec = self.stages.get(job.stage_index);
        let filtered = spec.is_some_and(|s| is_filtered(s, score));
        if filtered && !spec.is_some_and(|s| s.keep_filtered) {
            let (width, height) = match &done {
                Retextured::Image { image, .. } => image.dimensions(),
                Retextured::Mesh(_) => (0, 0),
            };
            return Ok(WrittenSample {
                width,
                height,
                clip_score: score,
                filtered,
                ..WrittenSample::default()
            });
        }
        let written = fault_before_write(&dir)
            .map_err(|source| JobError::Write {
                path: dir.clone(),
                source,
            })
            .and_then(|_| done.write(&dir));
        if let Err(e) = &written {
            let what = format!("the files of sample {}", job.sample_id);
            if let Some(stop) = OutputUnwritable::classify(e, what, &dir) {
                self.unwritable
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(job.sample_id.clone(), stop);
            }
        }
        let mut written = written.map_err(|e| e.to_string())?;
        written.clip_score = score;
        written.filtered = filtered;
        // The sample stands on its own; a render that fails fails its views' rows, not the sample's.
        if let Retextured::Mesh(m) = &done {
            match self.render(job, &m.asset, &m.textures) {
                Ok(views) => written.rendered = views,
                Err(e) => written.render_error = Some(e),
            }
        }
        // A failed sample leaves no files (`Retextured::write` removes its folder; nothing before it writes one):
        // its row says why, and a resumed run starts it afresh.
        if self.profile {
            eprintln!(
                "texaug: profile {} prepare_ms={:.1} finish_ms={:.1} requests={requests}",
                job.sample_id,
                state.prepare_ms,
                t0.elapsed().as_secs_f64() * 1e3,
            );
        }
        Ok(written)
    }
}
