//! The depth stage's CPU work (DESIGN §6).
//!
//! Meshes: cameras framed to the bounding box (an azimuth ring plus top and bottom); per view the rasterizer gives
//! depth (the condition) and the source texture as that view sees it (the init image); the prompt names the view.
//! All views of a job go to the device as one batch, each with its own seed. Every base-color atlas is also
//! re-made in UV space: its texels fill what no view saw. The views are baked back with (normal·view)^k weights,
//! a gutter dilated, and the GLB written with only its base-color images replaced.
//!
//! Images: depth from the manifest's `depth` file or the recipe's estimator; one depth-conditioned request.

use crate::depth_cond::{self, DepthMode};
use crate::plan::Job;
use crate::pool::{Condition, Finished, ModelRequest, Prepared, StageWork};
use crate::recipe::{DepthSpec, StageKind, DEFAULT_SHARPNESS};
use crate::recipe::{StageSpec, DEFAULT_AZIMUTHS, DEFAULT_CONDITIONING_SCALE, DEFAULT_GUTTER};
use crate::source_manifest::SourceKind;
use crate::stage_style::{back_to_source, sample_rel_dir, to_model_input};
use anyhow::Context;
use image::{RgbImage, RgbaImage};
use std::any::Any;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use texaug_stages::depth::{
    load_depth_image, rasterize, view_schedule, DepthEstimator, MeshView, View, ViewRaster,
};
use texaug_stages::source::{write_png_atomic, write_retextured_glb, MeshAsset, WorldTriangles};
use texaug_stages::texture::TextureBaker;

/// What the manifest's `depth_source` column says.
pub const FROM_MESH: &str = "mesh";
pub const FROM_FILE: &str = "file";
pub const FROM_ESTIMATOR: &str = "estimator";

pub struct DepthWork {
    output: PathBuf,
    stages: Vec<StageSpec>,
    estimator: Option<Mutex<DepthEstimator>>,
    /// Print where each job's CPU time went (TEXAUG_PROFILE=1), for the benchmark in bench/RESULTS.md.
    profile: bool,
}

enum State {
    Image {
        original: RgbaImage,
        depth_source: &'static str,
    },
    Mesh(Box<MeshState>),
}

struct MeshState {
    asset: MeshAsset,
    triangles: WorldTriangles,
    views: Vec<(View, ViewRaster)>,
    /// Every base-color texture, indexed by slot (the baker's and the rasterizer's index).
    originals: Vec<RgbaImage>,
    prepare_ms: f64,
}

fn mesh_view(t: &WorldTriangles) -> Result<MeshView<'_>, String> {
    MeshView::new(
        &t.positions,
        &t.normals,
        &t.uvs,
        &t.indices,
        &t.slot_of_triangle,
    )
    .map_err(|e| e.to_string())
}

/// The view's name in the prompt: "front-right view of a mug carved from oak".
fn view_prompt(view: &str, prompt: &str) -> String {
    if prompt.is_empty() {
        format!("{view} view")
    } else {
        format!("{view} view of {prompt}")
    }
}

impl DepthWork {
    /// `stages`: the recipe's stages (jobs name theirs by index); the estimator loads on the CPU when named.
    pub fn new(
        output: PathBuf,
        stages: Vec<StageSpec>,
        depth: Option<&DepthSpec>,
    ) -> anyhow::Result<DepthWork> {
        let estimator = match depth.and_then(|d| d.estimator.as_ref()) {
            Some(path) => Some(Mutex::new(
                DepthEstimator::load(path, tch::Device::Cpu)
                    .with_context(|| format!("[depth] estimator = {}", path.display()))?,
            )),
            None => None,
        };
        Ok(DepthWork {
            output,
            stages,
            estimator,
            profile: std::env::var_os("TEXAUG_PROFILE").is_some_and(|v| v == "1"),
        })
    }

    fn stage(&self, job: &Job) -> Result<&StageSpec, String> {
        self.stages
            .get(job.stage_index)
            .ok_or_else(|| format!("internal: job {} names no stage", job.sample_id))
    }

    fn mode(stage: &StageSpec) -> DepthMode {
        match &stage.controlnet {
            Some(_) => DepthMode::ControlNet(
                stage
                    .conditioning_scale
                    .unwrap_or(DEFAULT_CONDITIONING_SCALE),
            ),
            None => DepthMode::Unet,
        }
    }

    fn request(
        job: &Job,
        image: RgbImage,
        prompt: String,
        index: u64,
        c: Condition,
    ) -> ModelRequest {
        ModelRequest {
            image,
            prompt,
            negative_prompt: job.negative_prompt.clone(),
            strength: job.strength,
            guidance: job.guidance,
            steps: job.steps,
            // Each view (and each UV-space fill) gets its own noise; the first uses the job's seed.
            seed: job.seed.wrapping_add(index) & (u64::MAX >> 1),
            scheduler: job.scheduler.clone(),
            condition: c,
        }
    }

    fn prepare_image(&self, job: &Job, stage: &StageSpec) -> Result<Prepared, String> {
        let source = &job.source;
        let original =
            texaug_stages::source::load_image(&source.path).map_err(|e| e.to_string())?;
        let (depth, depth_source) = match (&source.depth, &self.estimator) {
            (Some(path), _) => (load_depth_image(path).map_err(|e| e.to_string())?, FROM_FILE),
            (None, Some(est)) => {
                let rgb = image::DynamicImage::ImageRgba8(original.clone()).to_rgb8();
                let est = est.lock().map_err(|_| "the depth estimator failed earlier")?;
                (est.estimate(&rgb).map_err(|e| e.to_string())?, FROM_ESTIMATOR)
            }
            (None, None) => {
                return Err(format!(
                    "image source `{}` ({}) has no depth: add a `depth` column to the manifest naming a depth \
                     image for it (8/16-bit PNG or float TIFF, larger = nearer), or set [depth] estimator = \
                     \"midas.pt\" (a TorchScript depth model) in the recipe",
                    source.id,
                    source.path.display()
                ))
            }
        };
        let c = depth_cond::condition(&depth, Self::mode(stage), (job.size, job.size));
        let input = to_model_input(&original, job.size);
        Ok(Prepared {
            requests: vec![Self::request(job, input, job.prompt.clone(), 0, c)],
            state: Box::new(State::Image {
                original,
                depth_source,
            }),
            one_batch: false,
        })
    }

    fn prepare_mesh(&self, job: &Job, stage: &StageSpec) -> Result<Prepared, String> {
        let t0 = Instant::now();
        let path = &job.source.path;
        let asset = MeshAsset::load(path).map_err(|e| e.to_string())?;
        let slots = asset.base_color_slots();
        if slots.is_empty() {
            return Err(format!(
                "{}: the mesh has no base-color texture slot to re-texture",
                path.display()
            ));
        }
        let mut originals =
            vec![RgbaImage::new(1, 1); slots.iter().map(|s| s.slot + 1).max().unwrap_or(0)];
        for s in slots {
            originals[s.slot] = s.image;
        }
        let triangles = asset.triangles().map_err(|e| e.to_string())?;
        let mesh = mesh_view(&triangles)?;
        let (lo, hi) = mesh.bounds().ok_or_else(|| {
            format!(
                "{}: the default scene has no triangles to render; export the mesh with its geometry",
                path.display()
            )
        })?;
        let azimuths = stage.views.unwrap_or(DEFAULT_AZIMUTHS) as usize;
        let mode = Self::mode(stage);
        let textures: Vec<&RgbaImage> = originals.iter().collect();
        let mut requests = Vec::new();
        let mut views = Vec::new();
        for (i, view) in view_schedule(lo, hi, azimuths, true, job.size)
            .into_iter()
            .enumerate()
        {
            let raster = rasterize(&mesh, &view.camera);
            let init = raster.render_texture(&textures);
            let depth = depth_cond::from_u16(&raster.depth_image());
            let c = depth_cond::condition(&depth, mode, (job.size, job.size));
            let prompt = view_prompt(&view.name, &job.prompt);
            requests.push(Self::request(job, init, prompt, i as u64, c));
            views.push((view, raster));
        }
        // UV space has no view: a ControlNet base model runs plain img2img, a depth UNet gets a neutral plane.
        let fill_condition = match mode {
            DepthMode::Unet => Condition::Depth(Arc::new(depth_cond::flat_depth(job.size))),
            DepthMode::ControlNet(_) => Condition::None,
        };
        for (slot, tex) in originals.iter().enumerate() {
            let index = (views.len() + slot) as u64;
            let input = to_model_input(tex, job.size);
            requests.push(Self::request(
                job,
                input,
                job.prompt.clone(),
                index,
                fill_condition.clone(),
            ));
        }
        drop(textures);
        Ok(Prepared {
            requests,
            state: Box::new(State::Mesh(Box::new(MeshState {
                asset,
                triangles,
                views,
                originals,
                prepare_ms: t0.elapsed().as_secs_f64() * 1e3,
            }))),
            one_batch: true,
        })
    }

    fn write(&self, job: &Job, state: State, outputs: Vec<RgbImage>) -> Result<Finished, String> {
        let rel = sample_rel_dir(&job.sample_id);
        let dir = self.output.join(&rel);
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        match state {
            State::Image {
                original,
                depth_source,
            } => {
                let out = outputs
                    .first()
                    .ok_or("the model returned no image for this sample")?;
                let img = back_to_source(out, &original);
                let sha =
                    write_png_atomic(&img, &dir.join("image.png")).map_err(|e| e.to_string())?;
                Ok(Finished {
                    width: Some(i64::from(img.width())),
                    height: Some(i64::from(img.height())),
                    image_path: Some(format!("{rel}/image.png")),
                    output_sha256: Some(sha),
                    depth_source: Some(depth_source.into()),
                    ..Finished::default()
                })
            }
            State::Mesh(m) => self.write_mesh(job, &rel, &dir, *m, outputs),
        }
    }

    fn write_mesh(
        &self,
        job: &Job,
        rel: &str,
        dir: &std::path::Path,
        m: MeshState,
        outputs: Vec<RgbImage>,
    ) -> Result<Finished, String> {
        let t0 = Instant::now();
        let stage = self.stage(job)?;
        let n_views = m.views.len();
        if outputs.len() != n_views + m.originals.len() {
            return Err(format!(
                "the model returned {} images for {n_views} views and {} textures",
                outputs.len(),
                m.originals.len()
            ));
        }
        let mesh = mesh_view(&m.triangles)?;
        let sizes: Vec<(u32, u32)> = m.originals.iter().map(RgbaImage::dimensions).collect();
        let mut baker = TextureBaker::new(&sizes);
        let k = stage.sharpness.unwrap_or(DEFAULT_SHARPNESS) as f32;
        for ((view, raster), generated) in m.views.iter().zip(&outputs) {
            baker.add_view(&mesh, &view.camera, raster, generated, k);
        }
        // The UV-space results at the atlases' own sizes, with their alpha.
        let fallback: Vec<RgbaImage> = outputs[n_views..]
            .iter()
            .zip(&m.originals)
            .map(|(out, original)| back_to_source(out, original))
            .collect();
        let baked = baker.finish(&fallback, stage.gutter.unwrap_or(DEFAULT_GUTTER));
        let slots: Vec<usize> = m.asset.base_color_slots().iter().map(|s| s.slot).collect();
        let mut textures = Vec::new();
        let mut paths = Vec::new();
        let mut coverage = Vec::new();
        for slot in slots {
            let b = baked.get(slot).ok_or("internal: the baker lost a slot")?;
            let name = format!("texture_{slot}.png");
            write_png_atomic(&b.image, &dir.join(&name)).map_err(|e| e.to_string())?;
            paths.push(format!("{rel}/{name}"));
            textures.push((slot, b.image.clone()));
            // A slot no triangle maps (used by no primitive of the scene) has nothing to cover.
            if b.used_mask.pixels().any(|p| p.0[0] > 0) {
                coverage.push(b.coverage);
            }
        }
        let sha = write_retextured_glb(&m.asset, &textures, &dir.join("asset.glb"))
            .map_err(|e| e.to_string())?;
        let names: Vec<&str> = m.views.iter().map(|(v, _)| v.name.as_str()).collect();
        crate::sinks::write_atomic(
            &dir.join("views.txt"),
            format!("{}\n", names.join(",")).as_bytes(),
        )
        .map_err(|e| e.to_string())?;
        if self.profile {
            eprintln!(
                "texaug: profile {} prepare_ms={:.1} finish_ms={:.1} views={n_views} slots={}",
                job.sample_id,
                m.prepare_ms,
                t0.elapsed().as_secs_f64() * 1e3,
                m.originals.len()
            );
        }
        let (w, h) = textures.first().map_or((0, 0), |(_, t)| t.dimensions());
        let mean = if coverage.is_empty() {
            0.0
        } else {
            coverage.iter().sum::<f64>() / coverage.len() as f64
        };
        Ok(Finished {
            width: Some(i64::from(w)),
            height: Some(i64::from(h)),
            texture_path: Some(paths.join(";")),
            asset_path: Some(format!("{rel}/asset.glb")),
            output_sha256: Some(sha),
            depth_source: Some(FROM_MESH.into()),
            views: Some(n_views as i64),
            coverage: Some(mean),
            ..Finished::default()
        })
    }
}

impl StageWork for DepthWork {
    fn prepare(&self, job: &Job) -> Result<Prepared, String> {
        let stage = self.stage(job)?;
        if job.stage_kind != StageKind::Depth {
            return Err(format!(
                "internal: stage `{}` ({}) reached the depth stage",
                job.stage,
                job.stage_kind.as_str()
            ));
        }
        match job.source.kind {
            SourceKind::Image => self.prepare_image(job, stage),
            SourceKind::Mesh => self.prepare_mesh(job, stage),
        }
    }

    fn finish(
        &self,
        job: &Job,
        state: Box<dyn Any + Send>,
        outputs: Vec<RgbImage>,
    ) -> Result<Finished, String> {
        let state = *state
            .downcast::<State>()
            .map_err(|_| "internal: the depth stage got another stage's state".to_string())?;
        let result = self.write(job, state, outputs);
        if result.is_err() {
            // A failed sample leaves no files: its row says why, and a resumed run starts it afresh.
            let _ = std::fs::remove_dir_all(self.output.join(sample_rel_dir(&job.sample_id)));
        }
        result
    }
}

/// Routes each job to its stage's work (a recipe may mix style and depth stages).
pub struct AnyStage<'a> {
    pub style: &'a dyn StageWork,
    pub depth: &'a dyn StageWork,
}

impl StageWork for AnyStage<'_> {
    fn prepare(&self, job: &Job) -> Result<Prepared, String> {
        match job.stage_kind {
            StageKind::Style => self.style.prepare(job),
            StageKind::Depth => self.depth.prepare(job),
        }
    }

    fn finish(
        &self,
        job: &Job,
        state: Box<dyn Any + Send>,
        outputs: Vec<RgbImage>,
    ) -> Result<Finished, String> {
        match job.stage_kind {
            StageKind::Style => self.style.finish(job, state, outputs),
            StageKind::Depth => self.depth.finish(job, state, outputs),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_name_the_view() {
        assert_eq!(
            view_prompt("front-right", "a mug"),
            "front-right view of a mug"
        );
        assert_eq!(view_prompt("top", ""), "top view");
    }
}
