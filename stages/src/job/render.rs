//! The render stage's work on one mesh: its views rendered with the textures it has now (a re-textured sample's
//! new ones, or the source's own), each written as a labeled view sample — the image, its mask and its depth.

use std::io::Cursor;
use std::path::Path;
use std::time::Instant;

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ExtendedColorType, ImageEncoder, RgbaImage};
use rayon::prelude::*;

use crate::depth::MeshView;
use crate::files;
use crate::render::{
    mask_box, render_cameras, render_view, view_background, view_seed, RenderSettings, RenderedView,
};
use crate::source::MeshAsset;

use super::error::JobError;

/// How a view's image is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewFormat {
    Png,
    Jpeg { quality: u8 },
}

impl ViewFormat {
    pub fn file_name(self) -> &'static str {
        match self {
            ViewFormat::Png => "image.png",
            ViewFormat::Jpeg { .. } => "image.jpg",
        }
    }
}

pub const MASK_FILE: &str = "mask.png";
pub const DEPTH_FILE: &str = "depth.png";

/// One rendered view and the background it was drawn over.
pub struct RenderedFrame {
    pub view: RenderedView,
    pub background: String,
    pub render_ms: f64,
}

/// A view written into its own sample folder. File names are relative to that folder.
#[derive(Debug, Clone, PartialEq)]
pub struct WrittenView {
    pub index: u32,
    pub width: u32,
    pub height: u32,
    /// The files; `None` for a view filtered out by its score and not kept.
    pub image: Option<String>,
    pub mask: Option<String>,
    pub depth: Option<String>,
    /// sha256 of the image file (empty for a view not kept).
    pub sha256: String,
    /// Metres per unit of the 16-bit depth image (0 = background); `None` when the object is out of view.
    pub depth_scale_m: Option<f64>,
    /// `[x, y, width, height]` of the mask, in pixels; `None` when the object is out of view.
    pub bbox: Option<[u32; 4]>,
    /// The camera as JSON (see `RenderCamera::pose_json`).
    pub camera: String,
    pub background: String,
    pub render_ms: f64,
    /// The view's quality score, when the run scores (see the pipeline's `[score]`).
    pub clip_score: Option<f64>,
    /// Below its stage's `min_clip_score`.
    pub filtered: bool,
}

/// Every base-color texture of `asset` by slot, `replaced` (slot, texels) taking the place of the asset's own.
fn slot_textures(asset: &MeshAsset, replaced: &[(usize, RgbaImage)]) -> Vec<RgbaImage> {
    let slots = asset.base_color_slots();
    let n = slots
        .iter()
        .map(|s| s.slot + 1)
        .chain(replaced.iter().map(|(s, _)| s + 1))
        .max()
        .unwrap_or(0);
    let mut textures = vec![RgbaImage::from_pixel(1, 1, image::Rgba([204, 204, 204, 255])); n];
    for s in slots {
        textures[s.slot] = s.image;
    }
    for (slot, texels) in replaced {
        textures[*slot] = texels.clone();
    }
    textures
}

/// Renders the views of `asset` with `replaced` textures (none: the asset's own), from `seed`.
pub fn render_mesh(
    asset: &MeshAsset,
    replaced: &[(usize, RgbaImage)],
    settings: &RenderSettings,
    seed: u64,
) -> Result<Vec<RenderedFrame>, JobError> {
    let triangles = asset.triangles()?;
    let mesh = MeshView::new(
        &triangles.positions,
        &triangles.normals,
        &triangles.uvs,
        &triangles.indices,
        &triangles.slot_of_triangle,
    )?;
    let (lo, hi) = mesh.bounds().ok_or_else(|| JobError::NoTriangles {
        path: asset.path().to_path_buf(),
    })?;
    let owned = slot_textures(asset, replaced);
    let textures: Vec<&RgbaImage> = owned.iter().collect();
    let size = settings.size.max(1);
    Ok(render_cameras(lo, hi, settings, seed, size, size)
        .into_iter()
        .enumerate()
        .map(|(i, camera)| {
            let t = Instant::now();
            let (background, named) =
                view_background(&settings.background, view_seed(seed, i as u32));
            let view = render_view(&mesh, &textures, &camera, settings, background);
            RenderedFrame {
                view,
                background: named,
                render_ms: t.elapsed().as_secs_f64() * 1e3,
            }
        })
        .collect())
}

fn encode(
    bytes: &[u8],
    (w, h): (u32, u32),
    color: ExtendedColorType,
    format: ViewFormat,
) -> Result<Vec<u8>, image::ImageError> {
    let mut out = Cursor::new(Vec::new());
    match format {
        // Fast deflate: a view is written once and read by a trainer; the default level costs 3× the time.
        ViewFormat::Png => {
            PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Adaptive)
                .write_image(bytes, w, h, color)?
        }
        ViewFormat::Jpeg { quality } => {
            JpegEncoder::new_with_quality(&mut out, quality.clamp(1, 100))
                .write_image(bytes, w, h, color)?
        }
    }
    Ok(out.into_inner())
}

fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), JobError> {
    let path = dir.join(name);
    files::write_atomic(&path, bytes)
        .map(|_| ())
        .map_err(|source| JobError::Write { path, source })
}

impl RenderedFrame {
    /// The view's record without its files: a view filtered out and not kept.
    pub fn unwritten(&self, index: u32) -> WrittenView {
        let v = &self.view;
        WrittenView {
            index,
            width: v.rgb.width(),
            height: v.rgb.height(),
            image: None,
            mask: None,
            depth: None,
            sha256: String::new(),
            depth_scale_m: v.depth_u16().1,
            bbox: mask_box(&v.mask),
            camera: v.camera.pose_json(),
            background: self.background.clone(),
            render_ms: self.render_ms,
            clip_score: None,
            filtered: false,
        }
    }

    /// Writes the view into `dir` (created): its image, mask and 16-bit depth. On any error `dir` is removed.
    pub fn write(
        &self,
        dir: &Path,
        index: u32,
        format: ViewFormat,
    ) -> Result<WrittenView, JobError> {
        let result = self.write_files(dir, index, format);
        if result.is_err() {
            let _ = std::fs::remove_dir_all(dir);
        }
        result
    }

    fn write_files(
        &self,
        dir: &Path,
        index: u32,
        format: ViewFormat,
    ) -> Result<WrittenView, JobError> {
        std::fs::create_dir_all(dir).map_err(|source| JobError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let v = &self.view;
        let size = v.rgb.dimensions();
        let encode_error = |what: &str, e: image::ImageError| JobError::Write {
            path: dir.join(what),
            source: std::io::Error::other(e),
        };
        let (depth, depth_scale_m) = v.depth_u16();
        let depth_bytes: Vec<u8> = depth
            .as_raw()
            .iter()
            .flat_map(|d| d.to_be_bytes())
            .collect();
        // The three encodings are independent; the writes that follow are in a fixed order.
        let ((image, mask), depth) = rayon::join(
            || {
                rayon::join(
                    || encode(v.rgb.as_raw(), size, ExtendedColorType::Rgb8, format),
                    || {
                        encode(
                            v.mask.as_raw(),
                            size,
                            ExtendedColorType::L8,
                            ViewFormat::Png,
                        )
                    },
                )
            },
            || encode(&depth_bytes, size, ExtendedColorType::L16, ViewFormat::Png),
        );
        let image_name = format.file_name();
        let image = image.map_err(|e| encode_error(image_name, e))?;
        let mask = mask.map_err(|e| encode_error(MASK_FILE, e))?;
        let depth = depth.map_err(|e| encode_error(DEPTH_FILE, e))?;
        write_file(dir, image_name, &image)?;
        write_file(dir, MASK_FILE, &mask)?;
        write_file(dir, DEPTH_FILE, &depth)?;
        Ok(WrittenView {
            index,
            width: size.0,
            height: size.1,
            image: Some(image_name.into()),
            mask: Some(MASK_FILE.into()),
            depth: Some(DEPTH_FILE.into()),
            sha256: files::sha256_hex(&image),
            depth_scale_m,
            bbox: mask_box(&v.mask),
            camera: v.camera.pose_json(),
            background: self.background.clone(),
            render_ms: self.render_ms,
            clip_score: None,
            filtered: false,
        })
    }
}

/// Renders and writes every view, `dir_of(i)` giving view `i`'s folder; the views are written in parallel.
pub fn render_and_write(
    asset: &MeshAsset,
    replaced: &[(usize, RgbaImage)],
    settings: &RenderSettings,
    seed: u64,
    format: ViewFormat,
    dir_of: &(dyn Fn(u32) -> std::path::PathBuf + Sync),
) -> Result<Vec<WrittenView>, JobError> {
    let frames = render_mesh(asset, replaced, settings, seed)?;
    frames
        .par_iter()
        .enumerate()
        .map(|(i, f)| f.write(&dir_of(i as u32), i as u32, format))
        .collect()
}
