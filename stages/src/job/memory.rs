//! How much memory a prepared job holds while it waits for the device and for its finish: the pipeline bounds
//! its queues by these bytes, not only by counts, so a few huge meshes cannot fill a machine's memory while
//! small images would fit by the thousand.
//!
//! The figures count the large buffers (pixels, depth maps, rasters, mesh buffers and encoded images, geometry),
//! not the small bookkeeping beside them; shared buffers (`Arc`) are counted once per job.

use std::collections::HashSet;

use image::{RgbImage, RgbaImage};

use crate::depth::ViewRaster;
use crate::diffusion::image_tensors::DepthMap;
use crate::diffusion::request::{Condition, Img2ImgRequest};
use crate::source::{MeshAsset, WorldTriangles};

pub(crate) fn rgb_bytes(image: &RgbImage) -> u64 {
    image.as_raw().len() as u64
}

pub(crate) fn rgba_bytes(image: &RgbaImage) -> u64 {
    image.as_raw().len() as u64
}

fn depth_bytes(map: &DepthMap) -> u64 {
    map.values.len() as u64 * 4
}

/// The requests' images and conditions, each shared buffer once.
pub(crate) fn request_bytes(requests: &[Img2ImgRequest]) -> u64 {
    let mut seen = HashSet::new();
    let mut once = |ptr: *const u8, bytes: u64| if seen.insert(ptr as usize) { bytes } else { 0 };
    requests
        .iter()
        .map(|r| {
            let image = once(std::sync::Arc::as_ptr(&r.image).cast(), rgb_bytes(&r.image));
            let condition = match &r.condition {
                Condition::None => 0,
                Condition::Depth(map) => once(std::sync::Arc::as_ptr(map).cast(), depth_bytes(map)),
                Condition::Control { image, .. } => {
                    once(std::sync::Arc::as_ptr(image).cast(), rgb_bytes(image))
                }
                Condition::Inpaint(mask) => once(
                    std::sync::Arc::as_ptr(mask).cast(),
                    mask.as_raw().len() as u64,
                ),
            };
            image + condition
        })
        .sum()
}

pub fn asset_bytes(asset: &MeshAsset) -> u64 {
    let buffers: u64 = asset.buffers.iter().map(|b| b.len() as u64).sum();
    let images: u64 = asset.images.iter().map(|b| b.len() as u64).sum();
    let slots: u64 = asset.slots.iter().map(|s| rgba_bytes(&s.image)).sum();
    buffers + images + slots
}

pub(crate) fn triangle_bytes(t: &WorldTriangles) -> u64 {
    (t.positions.len() * 12
        + t.normals.len() * 12
        + t.uvs.len() * 8
        + t.indices.len() * 12
        + t.slot_of_triangle.len() * 4) as u64
}

pub(crate) fn raster_bytes(raster: &ViewRaster) -> u64 {
    // depth, cos, triangle, slot (4 bytes each) and uv (8) per pixel.
    u64::from(raster.width()) * u64::from(raster.height()) * 24
}
