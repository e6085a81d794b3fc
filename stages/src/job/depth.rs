//! The depth stage (DESIGN §6).
//!
//! Meshes: cameras framed to the bounding box (an azimuth ring plus top and bottom); per view the rasterizer gives
//! depth (the condition) and the source texture as that view sees it (the init image); the prompt names the view.
//! All views of a job go to the device as one batch, each with its own seed. Every base-color atlas is also
//! re-made in UV space: its texels fill what no view saw. The views are baked back with (normal·view)^k weights,
//! a gutter dilated, and only the base-color images of the asset are replaced.
//!
//! Images: depth from the source's depth file or the estimator; one depth-conditioned request.

use std::sync::{Arc, Mutex};

use image::{RgbImage, RgbaImage};

use crate::depth::{
    load_depth_image, rasterize, view_schedule, DepthEstimator, MeshView, View, ViewRaster,
};
use crate::diffusion::request::{Condition, Img2ImgRequest};
use crate::diffusion::view_sync::SyncedView;
use crate::source::{load_image, MeshAsset, SourceKind, WorldTriangles};
use crate::texture::TextureBaker;

use super::condition::{condition, flat_depth, from_u16, DepthMode};
use super::consistency::view_consistency_db;
use super::error::JobError;
use super::frame::Frame;
use super::memory;
use super::request::request;
use super::retextured::{Retextured, RetexturedMesh};
use super::settings::{AssetRef, DepthSettings, DepthSource, JobSettings, ModelSize};
use super::sync_map::sync_map;

/// The depth stage's settings and the estimator that gives image sources without a depth file their depth.
#[derive(Clone, Copy, Default)]
pub struct DepthStage<'a> {
    pub settings: DepthSettings,
    pub estimator: Option<&'a Mutex<DepthEstimator>>,
}

/// What the depth stage keeps between prepare and complete.
pub enum DepthState {
    Image {
        original: RgbaImage,
        frame: Frame,
        depth_source: DepthSource,
    },
    Mesh(Box<MeshViews>),
}

/// A mesh's views and what baking them back needs.
pub struct MeshViews {
    asset: MeshAsset,
    triangles: WorldTriangles,
    views: Vec<(View, ViewRaster)>,
    /// Every base-color texture, indexed by slot (the baker's and the rasterizer's index).
    originals: Vec<RgbaImage>,
    settings: DepthSettings,
}

fn mesh_view(t: &WorldTriangles) -> Result<MeshView<'_>, JobError> {
    Ok(MeshView::new(
        &t.positions,
        &t.normals,
        &t.uvs,
        &t.indices,
        &t.slot_of_triangle,
    )?)
}

impl DepthState {
    /// The memory it holds (see [`super::memory`]).
    pub fn memory_bytes(&self) -> u64 {
        match self {
            DepthState::Image { original, .. } => memory::rgba_bytes(original),
            DepthState::Mesh(m) => {
                memory::asset_bytes(&m.asset)
                    + memory::triangle_bytes(&m.triangles)
                    + m.views
                        .iter()
                        .map(|(_, r)| memory::raster_bytes(r))
                        .sum::<u64>()
                    + m.originals.iter().map(memory::rgba_bytes).sum::<u64>()
            }
        }
    }
}

/// The view's name in the prompt: "front-right view of a mug carved from oak".
pub fn view_prompt(view: &str, prompt: &str) -> String {
    if prompt.is_empty() {
        format!("{view} view")
    } else {
        format!("{view} view of {prompt}")
    }
}

fn model_side(asset: &AssetRef<'_>, size: ModelSize) -> Result<u32, JobError> {
    match size {
        ModelSize::Sized { side, .. } => Ok(side),
        ModelSize::Native => Err(JobError::MeshNeedsSize {
            path: asset.path.to_path_buf(),
        }),
    }
}

pub fn prepare(
    asset: &AssetRef<'_>,
    stage: &DepthStage<'_>,
    settings: &JobSettings,
) -> Result<(Vec<Img2ImgRequest>, DepthState), JobError> {
    match asset.kind {
        SourceKind::Image => prepare_image(asset, stage, settings),
        SourceKind::Mesh => prepare_mesh(asset, stage, settings),
    }
}

fn prepare_image(
    asset: &AssetRef<'_>,
    stage: &DepthStage<'_>,
    settings: &JobSettings,
) -> Result<(Vec<Img2ImgRequest>, DepthState), JobError> {
    let original = load_image(asset.path)?;
    let frame = Frame::new(original.dimensions(), settings.size);
    let (depth, depth_source) = match (asset.depth, stage.estimator) {
        (Some(path), _) => (
            frame.depth(&load_depth_image(path)?, path)?,
            DepthSource::File,
        ),
        (None, Some(est)) => {
            let rgb = image::DynamicImage::ImageRgba8(original.clone()).to_rgb8();
            let est = est.lock().map_err(|_| JobError::EstimatorPoisoned)?;
            (
                frame.depth(&est.estimate(&rgb)?, asset.path)?,
                DepthSource::Estimator,
            )
        }
        (None, None) => {
            return Err(JobError::NoDepth {
                id: asset.id.to_string(),
                path: asset.path.to_path_buf(),
            })
        }
    };
    let input = frame.input(&original);
    let c = condition(&depth, stage.settings.mode, input.dimensions());
    let requests = vec![request(settings, input, settings.prompt.clone(), 0, c)];
    Ok((
        requests,
        DepthState::Image {
            original,
            frame,
            depth_source,
        },
    ))
}

fn prepare_mesh(
    asset: &AssetRef<'_>,
    stage: &DepthStage<'_>,
    settings: &JobSettings,
) -> Result<(Vec<Img2ImgRequest>, DepthState), JobError> {
    let size = model_side(asset, settings.size)?;
    let path = asset.path;
    let mesh_asset = MeshAsset::load(path)?;
    let slots = mesh_asset.base_color_slots();
    if slots.is_empty() {
        return Err(JobError::NoBaseColorSlot {
            path: path.to_path_buf(),
        });
    }
    let mut originals =
        vec![RgbaImage::new(1, 1); slots.iter().map(|s| s.slot + 1).max().unwrap_or(0)];
    for s in slots {
        originals[s.slot] = s.image;
    }
    let triangles = mesh_asset.triangles()?;
    let mesh = mesh_view(&triangles)?;
    let (lo, hi) = mesh.bounds().ok_or_else(|| JobError::NoTriangles {
        path: path.to_path_buf(),
    })?;
    let mode = stage.settings.mode;
    let textures: Vec<&RgbaImage> = originals.iter().collect();
    let mut requests = Vec::new();
    let mut views = Vec::new();
    for (i, view) in view_schedule(lo, hi, stage.settings.azimuths as usize, true, size)
        .into_iter()
        .enumerate()
    {
        let raster = rasterize(&mesh, &view.camera);
        let init = raster.render_texture(&textures);
        let depth = from_u16(&raster.depth_image());
        let c = condition(&depth, mode, (size, size));
        let prompt = view_prompt(&view.name, &settings.prompt);
        requests.push(request(settings, init, prompt, i as u64, c));
        views.push((view, raster));
    }
    if stage.settings.sync && views.len() > 1 {
        let cameras: Vec<_> = views.iter().map(|(v, _)| v.camera).collect();
        let group = Arc::new(sync_map(
            &mesh,
            &cameras,
            originals.len(),
            stage.settings.sharpness,
        )?);
        for (view, r) in requests.iter_mut().enumerate() {
            r.sync = Some(SyncedView {
                group: group.clone(),
                view,
            });
        }
    }
    // UV space has no view: a ControlNet base model runs plain img2img, a depth UNet gets a neutral plane.
    let fill_condition = match mode {
        DepthMode::Unet => Condition::Depth(Arc::new(flat_depth(size))),
        DepthMode::ControlNet(_) => Condition::None,
    };
    for (slot, tex) in originals.iter().enumerate() {
        let index = (views.len() + slot) as u64;
        // Square, as the views are: the baker maps UV space onto the atlas as it is.
        let input = Frame::new(tex.dimensions(), ModelSize::square(size)).input(tex);
        requests.push(request(
            settings,
            input,
            settings.prompt.clone(),
            index,
            fill_condition.clone(),
        ));
    }
    drop(textures);

    let state = DepthState::Mesh(Box::new(MeshViews {
        asset: mesh_asset,
        triangles,
        views,
        originals,
        settings: stage.settings,
    }));
    Ok((requests, state))
}

pub fn complete(state: DepthState, outputs: Vec<RgbImage>) -> Result<Retextured, JobError> {
    match state {
        DepthState::Image {
            original,
            frame,
            depth_source,
        } => Ok(Retextured::Image {
            image: frame.image_back(&outputs, &original)?,
            depth_source: Some(depth_source),
        }),
        DepthState::Mesh(m) => bake(*m, outputs),
    }
}

fn bake(m: MeshViews, outputs: Vec<RgbImage>) -> Result<Retextured, JobError> {
    let n_views = m.views.len();
    if outputs.len() != n_views + m.originals.len() {
        return Err(JobError::OutputCount {
            got: outputs.len(),
            expected: n_views + m.originals.len(),
            what: format!("{n_views} views and {} textures", m.originals.len()),
        });
    }
    let mesh = mesh_view(&m.triangles)?;
    let sizes: Vec<(u32, u32)> = m.originals.iter().map(RgbaImage::dimensions).collect();
    let mut baker = TextureBaker::new(&sizes);
    let k = m.settings.sharpness as f32;
    for ((view, raster), generated) in m.views.iter().zip(&outputs) {
        baker.add_view(&mesh, &view.camera, raster, generated, k);
    }
    // The UV-space results at the atlases' own sizes, with their alpha.
    let fallback: Vec<RgbaImage> = outputs[n_views..]
        .iter()
        .zip(&m.originals)
        .map(|(out, original)| {
            Frame::new(original.dimensions(), ModelSize::square(out.width())).back(out, original)
        })
        .collect();
    let baked = baker.finish(&fallback, m.settings.gutter);
    let rasters: Vec<&ViewRaster> = m.views.iter().map(|(_, r)| r).collect();
    let baked_images: Vec<&RgbaImage> = baked.iter().map(|b| &b.image).collect();
    let consistency = view_consistency_db(&rasters, &outputs[..n_views], &baked_images);
    let mut textures = Vec::new();
    let mut coverage = Vec::new();
    for slot in m.asset.base_color_slots().iter().map(|s| s.slot) {
        let Some(b) = baked.get(slot) else {
            return Err(JobError::OutputCount {
                got: baked.len(),
                expected: slot + 1,
                what: "baked texture slots".into(),
            });
        };
        // A slot no triangle maps (used by no primitive of the scene) has nothing to cover.
        if b.used_mask.pixels().any(|p| p.0[0] > 0) {
            coverage.push(b.coverage);
        }
        textures.push((slot, b.image.clone()));
    }
    let mean = if coverage.is_empty() {
        0.0
    } else {
        coverage.iter().sum::<f64>() / coverage.len() as f64
    };

    Ok(Retextured::Mesh(Box::new(RetexturedMesh {
        asset: m.asset,
        textures,
        views: Some(m.views.iter().map(|(v, _)| v.name.clone()).collect()),
        coverage: Some(mean),
        view_consistency_db: consistency,
        depth_source: Some(DepthSource::Mesh),
    })))
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
