//! Depth as the model takes it: a depth map for SD 2-depth UNets, or a control image for a depth ControlNet.
//! Everything here speaks "larger = nearer" (inverse depth, MiDaS/DPT's convention).

use std::sync::Arc;

use image::imageops::FilterType;
use image::{Rgb, RgbImage};

use crate::depth::DepthMap as SourceDepth;
use crate::diffusion::image_tensors::DepthMap;
use crate::diffusion::request::Condition;

/// How a stage conditions on depth.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DepthMode {
    /// A 5-channel UNet (SD 2-depth): the map is concatenated to the latents.
    Unet,
    /// A ControlNet on SD 1.x: the depth in [0, 1] as an RGB control image, with this conditioning scale.
    ControlNet(f64),
}

/// The value range of a map's finite values, if it has any.
fn range(values: &[f32]) -> Option<(f32, f32)> {
    values
        .iter()
        .filter(|v| v.is_finite())
        .fold(None, |acc, &v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
}

/// The conditioning for a depth map of any size; the model's input is `width × height`.
///
/// A constant map has no shape to condition on, and the model's min-max normalization would divide by zero
/// (NaN everywhere): it is replaced by the [`flat_depth`] plane.
pub fn condition(map: &SourceDepth, mode: DepthMode, (width, height): (u32, u32)) -> Condition {
    let values: Vec<f32> = map
        .data()
        .iter()
        .map(|v| if v.is_finite() { *v } else { 0.0 })
        .collect();
    let flat = match range(&values) {
        Some((lo, hi)) => hi <= lo,
        None => true,
    };
    let depth = if flat {
        flat_depth(width.max(height))
    } else {
        DepthMap {
            width: map.width(),
            height: map.height(),
            values,
        }
    };
    match mode {
        DepthMode::Unet => Condition::Depth(Arc::new(depth)),
        DepthMode::ControlNet(scale) => Condition::Control {
            image: Arc::new(control_image(&depth, (width, height))),
            scale,
        },
    }
}

/// A neutral depth for UV-space requests (a texture atlas has no view to take depth from): a gently tilted plane,
/// not a constant, so per-map min-max normalization stays finite whatever size the model resamples it to.
pub fn flat_depth(size: u32) -> DepthMap {
    let n = size.max(2);
    let denom = (2 * (n - 1)) as f32;
    let values = (0..n)
        .flat_map(|y| (0..n).map(move |x| 0.5 + 0.5 * (x + y) as f32 / denom))
        .collect();
    DepthMap {
        width: n,
        height: n,
        values,
    }
}

/// The depth min-max normalized onto [0, 1] (constant maps: 0.5), gray RGB, bicubic-resized to `width × height`.
pub fn control_image(depth: &DepthMap, (width, height): (u32, u32)) -> RgbImage {
    let (lo, hi) = range(&depth.values).unwrap_or((0.0, 0.0));
    let span = hi - lo;
    let gray = image::GrayImage::from_fn(depth.width, depth.height, |x, y| {
        let v = depth.values[(y * depth.width + x) as usize];
        let t = if span > 0.0 && v.is_finite() {
            (v - lo) / span
        } else {
            0.5
        };
        image::Luma([(t.clamp(0.0, 1.0) * 255.0).round() as u8])
    });
    let gray = image::imageops::resize(&gray, width, height, FilterType::CatmullRom);
    RgbImage::from_fn(width, height, |x, y| {
        let v = gray.get_pixel(x, y).0[0];
        Rgb([v, v, v])
    })
}

/// A u16 depth image (a mesh view's rendered depth) as a map in [0, 1].
pub fn from_u16(image: &image::ImageBuffer<image::Luma<u16>, Vec<u16>>) -> SourceDepth {
    let (w, h) = image.dimensions();
    let data = image
        .as_raw()
        .iter()
        .map(|&v| f32::from(v) / 65535.0)
        .collect();
    SourceDepth::from_vec(w, h, data).unwrap_or_else(|_| SourceDepth::zeros(w, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flat_depth_is_never_constant_after_resampling() {
        for size in [8, 64, 512] {
            let d = flat_depth(size);
            let (lo, hi) = range(&d.values).unwrap();
            assert!(hi > lo, "size {size}");
            assert!(lo >= 0.5 && hi <= 1.0);
        }
    }

    #[test]
    fn a_constant_map_becomes_the_flat_plane_and_not_nan() {
        let map = SourceDepth::from_vec(4, 4, vec![3.0; 16]).unwrap();
        match condition(&map, DepthMode::Unet, (64, 64)) {
            Condition::Depth(d) => {
                let (lo, hi) = range(&d.values).unwrap();
                assert!(hi > lo);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn control_images_map_near_to_white() {
        let depth = DepthMap {
            width: 2,
            height: 1,
            values: vec![0.25, 2.0],
        };
        let img = control_image(&depth, (2, 2));
        assert_eq!(img.dimensions(), (2, 2));
        assert!(img.get_pixel(1, 0).0[0] > img.get_pixel(0, 0).0[0]);
        let flat = control_image(
            &DepthMap {
                width: 1,
                height: 1,
                values: vec![1.0],
            },
            (8, 8),
        );
        assert!(flat.pixels().all(|p| p.0 == [128, 128, 128]));
    }
}
