//! The UV-space map that keeps a mesh's views in step while they are denoised (the depth stage's `sync`): each
//! view rasterized again on its latent grid, each covered latent pixel tied to the texels around its UV on a
//! per-slot latent texture, weighted by (n·v)^k as the bake weighs it. The rasterizer's depth test decides what a
//! view sees, so an occluded surface never takes a view's latents.

use crate::depth::{rasterize, Camera, MeshView, NO_TRIANGLE};
use crate::diffusion::view_sync::{SyncEntry, ViewSync};

use super::error::JobError;

/// Pixels per latent pixel in every model texaug runs (SD 1/2/XL's VAE).
pub const LATENT_FACTOR: u32 = 8;

/// Latent texels per side of a slot's latent texture, per latent pixel of a view's side. At 1 a texel is about as
/// large as a latent pixel of a view framing the whole mesh, so neighbouring views land on shared texels; finer
/// grids leave overlapping views on distinct texels that never meet.
const TEXELS_PER_LATENT_PIXEL: u32 = 1;

/// The map of `cameras` (the views at model resolution, in request order) onto `slots` latent textures.
pub fn sync_map(
    mesh: &MeshView<'_>,
    cameras: &[Camera],
    slots: usize,
    sharpness: f64,
) -> Result<ViewSync, JobError> {
    let Some(first) = cameras.first() else {
        return ViewSync::new(0, (1, 1), 0, Vec::new())
            .map_err(|detail| JobError::SyncMap { detail });
    };
    let (lw, lh) = (
        (first.width() / LATENT_FACTOR).max(1),
        (first.height() / LATENT_FACTOR).max(1),
    );
    let side = lw.max(lh) * TEXELS_PER_LATENT_PIXEL;
    let per_slot = side as usize * side as usize;
    let mut entries = Vec::new();
    for (view, camera) in cameras.iter().enumerate() {
        let raster = rasterize(mesh, &camera.resized(lw, lh));
        for (pixel, ((&triangle, &slot), (uv, &cos))) in raster
            .triangle()
            .iter()
            .zip(raster.slot())
            .zip(raster.uv().iter().zip(raster.cos()))
            .enumerate()
        {
            if triangle == NO_TRIANGLE || slot as usize >= slots {
                continue;
            }
            let view_weight = (cos.max(0.0) as f64).powf(sharpness) as f32;
            let base = slot as usize * per_slot;
            for (texel, bilinear) in bilinear_texels(*uv, side) {
                entries.push(SyncEntry {
                    view: view as u32,
                    pixel: pixel as u32,
                    texel: (base + texel) as u32,
                    bilinear,
                    view_weight,
                });
            }
        }
    }
    ViewSync::new(cameras.len(), (lw, lh), slots * per_slot, entries)
        .map_err(|detail| JobError::SyncMap { detail })
}

/// The up to four texels of a `side × side` grid around glTF `uv` (texel centres at (i + ½) / side, REPEAT
/// wrapping as glTF's default sampler) with their bilinear weights; none for a non-finite uv.
fn bilinear_texels(uv: [f32; 2], side: u32) -> impl Iterator<Item = (usize, f32)> {
    let finite = uv[0].is_finite() && uv[1].is_finite();
    let s = side as f32;
    let (fx, fy) = if finite {
        (uv[0] * s - 0.5, uv[1] * s - 0.5)
    } else {
        (0.0, 0.0)
    };
    let (x0, y0) = (fx.floor(), fy.floor());
    let (ax, ay) = (fx - x0, fy - y0);
    let wrap = move |v: f32| (v as i64).rem_euclid(i64::from(side)) as usize;
    let corners = [
        (0.0, 0.0, (1.0 - ax) * (1.0 - ay)),
        (1.0, 0.0, ax * (1.0 - ay)),
        (0.0, 1.0, (1.0 - ax) * ay),
        (1.0, 1.0, ax * ay),
    ];
    corners
        .into_iter()
        .filter(move |&(_, _, w)| finite && w > 0.0)
        .map(move |(dx, dy, w)| (wrap(y0 + dy) * side as usize + wrap(x0 + dx), w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bilinear_weights_sum_to_one_and_wrap_around_the_edge() {
        let t: Vec<_> = bilinear_texels([0.0, 0.5], 4).collect();
        let sum: f32 = t.iter().map(|(_, w)| w).sum();
        assert!((sum - 1.0).abs() < 1e-6);
        // u = 0 lies between the last column and the first.
        let cols: Vec<usize> = t.iter().map(|(i, _)| i % 4).collect();
        assert!(cols.contains(&3) && cols.contains(&0), "{t:?}");
        assert_eq!(bilinear_texels([f32::NAN, 0.0], 4).count(), 0);
    }
}
