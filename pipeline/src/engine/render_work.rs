//! The recipe's render stages as `texaug_stages::render` settings: the camera ranges, light, file format, and
//! the background images of a `background = "images"` stage read once (each checked like a source image and
//! cropped to the view's size), so every view draws from memory.

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context};
use image::RgbImage;
use texaug_stages::job::ViewFormat;
use texaug_stages::render::settings::{
    DEFAULT_AMBIENT, DEFAULT_AZIMUTH_DEG, DEFAULT_BACKGROUND, DEFAULT_ELEVATION_DEG, DEFAULT_FILL,
    DEFAULT_FOV_DEG, DEFAULT_RENDER_VIEWS, DEFAULT_SUPERSAMPLE,
};
use texaug_stages::render::{cover_crop, Background, RenderSettings};
use texaug_stages::source::{load_image, IMAGE_EXTS};

use crate::config::recipe::{Span, StageKind, StageSpec};

/// The JPEG quality of `format = "jpeg"` without `quality`.
pub const DEFAULT_JPEG_QUALITY: u8 = 90;

/// A render stage, ready to render.
#[derive(Debug, Clone)]
pub struct RenderStage {
    pub settings: RenderSettings,
    pub format: ViewFormat,
}

fn degrees(span: Option<Span>, default: [f32; 2]) -> [f32; 2] {
    span.map_or(default, |s| s.bounds().map(|v| v as f32))
}

/// Every image of `dir` (sorted by name, so the draw is the same on every machine), cropped to `size`.
pub fn load_backgrounds(dir: &Path, size: u32) -> anyhow::Result<Vec<RgbImage>> {
    let mut files: Vec<_> = walkdir::WalkDir::new(dir)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("listing the backgrounds folder {}", dir.display()))?
        .into_iter()
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| IMAGE_EXTS.contains(&e.to_ascii_lowercase().as_str()))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        bail!(
            "the backgrounds folder {} holds no images ({}); put background photos there or use \
             background = \"random\"",
            dir.display(),
            IMAGE_EXTS.join(", ")
        );
    }
    files
        .iter()
        .map(|f| {
            load_image(f)
                .map(|img| cover_crop(&img, size))
                .with_context(|| format!("reading the background image {}", f.display()))
        })
        .collect()
}

/// The render settings of `stage`, a render stage.
pub fn render_stage(stage: &StageSpec) -> anyhow::Result<RenderStage> {
    let size = stage.size;
    let background = match stage.background.as_deref().unwrap_or("solid") {
        "random" => Background::RandomColor,
        "images" => {
            let dir = stage
                .backgrounds
                .as_deref()
                .context("background = \"images\" needs backgrounds = \"folder\"")?;
            Background::Images(Arc::new(load_backgrounds(dir, size)?))
        }
        _ => Background::Solid(stage.background_color.unwrap_or(DEFAULT_BACKGROUND)),
    };
    let settings = RenderSettings {
        views: stage.views.unwrap_or(DEFAULT_RENDER_VIEWS),
        azimuth_deg: degrees(stage.azimuth, DEFAULT_AZIMUTH_DEG),
        elevation_deg: degrees(stage.elevation, DEFAULT_ELEVATION_DEG),
        fov_deg: degrees(stage.fov, DEFAULT_FOV_DEG),
        jitter_deg: stage.jitter.unwrap_or(0.0) as f32,
        fill: stage.fill.map_or(DEFAULT_FILL, |f| f as f32),
        size,
        supersample: stage.supersample.unwrap_or(DEFAULT_SUPERSAMPLE),
        ambient: stage.ambient.map_or(DEFAULT_AMBIENT, |a| a as f32),
        background,
    };
    let format = match stage.format.as_deref() {
        Some("jpeg") => ViewFormat::Jpeg {
            quality: stage.quality.unwrap_or(DEFAULT_JPEG_QUALITY),
        },
        _ => ViewFormat::Png,
    };
    Ok(RenderStage { settings, format })
}

/// The render settings of every stage (`None` for the stages that are not renders), by stage index.
pub fn render_stages(stages: &[StageSpec]) -> anyhow::Result<Vec<Option<RenderStage>>> {
    stages
        .iter()
        .map(|s| {
            (s.kind == StageKind::Render)
                .then(|| {
                    render_stage(s).with_context(|| format!("render stage `{}`", s.stage_name()))
                })
                .transpose()
        })
        .collect()
}
