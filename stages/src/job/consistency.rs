//! How well a mesh's views hold together once baked: `view_consistency_db`, the mean over views of the PSNR, over
//! each view's covered pixels, between the image the model made for that view and the baked texture rendered from
//! the same camera. Views that disagree are averaged away by the bake and score low; views that agree survive it.
//! It needs no model, so it means the same with random weights as with real ones.

use image::{RgbImage, RgbaImage};

use crate::depth::{ViewRaster, NO_TRIANGLE};

/// The PSNR of two identical images is infinite; scores stop here.
pub const MAX_DB: f64 = 99.0;

/// PSNR in dB of `a` against `b` over the pixels `raster` covers; `None` when it covers none or the sizes differ.
pub fn covered_psnr(a: &RgbImage, b: &RgbImage, raster: &ViewRaster) -> Option<f64> {
    if a.dimensions() != b.dimensions() || a.dimensions() != (raster.width(), raster.height()) {
        return None;
    }
    let (mut sum, mut n) = (0f64, 0u64);
    for ((pa, pb), &t) in a.pixels().zip(b.pixels()).zip(raster.triangle()) {
        if t == NO_TRIANGLE {
            continue;
        }
        for k in 0..3 {
            let d = f64::from(pa.0[k]) - f64::from(pb.0[k]);
            sum += d * d;
        }
        n += 3;
    }
    if n == 0 {
        return None;
    }
    let mse = sum / n as f64;
    Some(if mse <= 0.0 {
        MAX_DB
    } else {
        (10.0 * (255.0f64 * 255.0 / mse).log10()).min(MAX_DB)
    })
}

/// The mean over views (those that see the mesh) of [`covered_psnr`] between each generated view and the baked
/// textures (indexed by slot) rendered from it.
pub fn view_consistency_db(
    rasters: &[&ViewRaster],
    generated: &[RgbImage],
    baked: &[&RgbaImage],
) -> Option<f64> {
    let scores: Vec<f64> = rasters
        .iter()
        .zip(generated)
        .filter_map(|(raster, image)| covered_psnr(image, &raster.render_texture(baked), raster))
        .collect();
    (!scores.is_empty()).then(|| scores.iter().sum::<f64>() / scores.len() as f64)
}
