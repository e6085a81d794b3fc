//! Back-projection of generated views into UV textures, per texel.
//!
//! For every texel a triangle owns (see [`TexelMap`]): project its world point into the view; keep
//! it when it faces the camera and the view's depth buffer shows that surface there (same triangle,
//! or a depth within a tolerance that grows with the surface's slope); sample the generated image
//! bilinearly over the neighbor pixels that pass the same test (so colors never leak across
//! silhouettes); accumulate `color · w` and `w = (normal·view)^k`. [`TextureBaker::finish`] divides,
//! fills texels no view saw from the fallback and dilates a gutter.

use super::baked::BakedTexture;
use super::fill::{dilate_gutter, fit_fallback};
use super::texel_map::{SlotTexels, TexelMap};
use crate::depth::mesh_view::{dot, sub};
use crate::depth::{Camera, MeshView, ViewRaster, NO_TRIANGLE};
use image::{GrayImage, RgbImage, RgbaImage};
use rayon::prelude::*;

/// Depth-test and weighting knobs; the defaults suit framed views of a single object.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BakeOptions {
    /// Depth tolerance as a share of the depth (0.005 = 0.5 %).
    pub depth_tolerance: f32,
    /// Extra tolerance in pixels of surface slope: a sample may sit up to this many pixels from
    /// the center the depth was measured at.
    pub slope_tolerance_px: f32,
    /// Views at which the surface is seen at a cosine below this contribute nothing: grazing views
    /// smear (TEXTure and Text2Tex drop them the same way).
    pub min_cos: f32,
}

impl Default for BakeOptions {
    fn default() -> Self {
        Self {
            depth_tolerance: 0.005,
            slope_tolerance_px: 1.5,
            min_cos: 0.1,
        }
    }
}

/// Accumulates views into one texture per slot: Σ color·w and Σ w per texel.
#[derive(Debug, Clone)]
pub struct TextureBaker {
    slot_sizes: Vec<(u32, u32)>,
    /// [slot][texel] = (Σ r·w, Σ g·w, Σ b·w, Σ w), colors in [0, 1]
    accum: Vec<Vec<[f32; 4]>>,
    map: Option<(MeshKey, TexelMap)>,
    options: BakeOptions,
}

/// Identifies the mesh the texel map was built from (addresses and lengths of its arrays).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MeshKey([usize; 8]);

impl MeshKey {
    fn of(mesh: &MeshView) -> Self {
        Self([
            mesh.positions.as_ptr() as usize,
            mesh.positions.len(),
            mesh.uvs.as_ptr() as usize,
            mesh.uvs.len(),
            mesh.indices.as_ptr() as usize,
            mesh.indices.len(),
            mesh.slot_of_triangle.as_ptr() as usize,
            mesh.normals.as_ptr() as usize,
        ])
    }
}

impl TextureBaker {
    /// One accumulator per slot, `slot_sizes[s]` = (width, height) of slot `s`'s texture.
    pub fn new(slot_sizes: &[(u32, u32)]) -> Self {
        Self::with_options(slot_sizes, BakeOptions::default())
    }

    pub fn with_options(slot_sizes: &[(u32, u32)], options: BakeOptions) -> Self {
        Self {
            slot_sizes: slot_sizes.to_vec(),
            accum: slot_sizes
                .iter()
                .map(|&(w, h)| vec![[0.0; 4]; w as usize * h as usize])
                .collect(),
            map: None,
            options,
        }
    }

    /// Builds (or reuses) the texel map of `mesh`. [`TextureBaker::add_view`] calls this itself;
    /// calling it first only moves the one-time cost. The map is rebuilt when a different mesh
    /// (other arrays) comes; a mesh edited in place between views is not noticed.
    pub fn prepare(&mut self, mesh: &MeshView) -> &TexelMap {
        let key = MeshKey::of(mesh);
        if !matches!(&self.map, Some((k, _)) if *k == key) {
            self.map = Some((key, TexelMap::build(mesh, &self.slot_sizes)));
        }
        match &self.map {
            Some((_, map)) => map,
            None => unreachable!("the map was just built"),
        }
    }

    /// Accumulates one generated view. `raster` must be `camera`'s raster of `mesh`; `generated`
    /// may have another size than the raster (it is sampled at the same relative position).
    /// `sharpness_k` is the exponent of the (normal·view)^k weight (≤ 0: equal weights).
    pub fn add_view(
        &mut self,
        mesh: &MeshView,
        camera: &Camera,
        raster: &ViewRaster,
        generated: &RgbImage,
        sharpness_k: f32,
    ) {
        self.prepare(mesh);
        let Some((_, map)) = &self.map else { return };
        if raster.width() != camera.width() || raster.height() != camera.height() {
            return;
        }
        let view = ViewSampler::new(camera, raster, generated, sharpness_k, &self.options);
        for (slot, acc) in map.slots.iter().zip(self.accum.iter_mut()) {
            bake_slot(slot, acc, &view);
        }
    }

    /// Divides the sums and fills: seen texels get the weighted mean, the rest the fallback of
    /// their slot (resized when its size differs; mid-gray when absent); then texels within
    /// `gutter_px` of the used region take their used neighbors' colors.
    pub fn finish(self, fallback: &[RgbaImage], gutter_px: u32) -> Vec<BakedTexture> {
        let map = self.map.map(|(_, m)| m);
        self.slot_sizes
            .iter()
            .enumerate()
            .map(|(s, &(w, h))| {
                let mut image = fit_fallback(fallback.get(s), w, h);
                let mut seen_mask = GrayImage::new(w, h);
                let mut used_mask = GrayImage::new(w, h);
                let (mut used_n, mut seen_n) = (0usize, 0usize);
                if let Some(slot) = map.as_ref().and_then(|m| m.slots.get(s)) {
                    let acc = &self.accum[s];
                    for (i, &used) in slot.used.iter().enumerate() {
                        if !used {
                            continue;
                        }
                        used_n += 1;
                        let (x, y) = (i as u32 % w, i as u32 / w);
                        used_mask.put_pixel(x, y, image::Luma([255]));
                        let [r, g, b, wsum] = acc[i];
                        if wsum > 0.0 {
                            seen_n += 1;
                            seen_mask.put_pixel(x, y, image::Luma([255]));
                            let px = image.get_pixel_mut(x, y);
                            for (k, v) in [r, g, b].into_iter().enumerate() {
                                px.0[k] = (v / wsum * 255.0).round().clamp(0.0, 255.0) as u8;
                            }
                        }
                    }
                }
                dilate_gutter(&mut image, &used_mask, gutter_px);
                BakedTexture {
                    image,
                    coverage: if used_n == 0 {
                        0.0
                    } else {
                        seen_n as f64 / used_n as f64
                    },
                    seen_mask,
                    used_mask,
                }
            })
            .collect()
    }
}

/// What one view offers a texel: visibility, weight and color.
struct ViewSampler<'a> {
    camera: &'a Camera,
    /// (triangle, depth) per raster pixel, side by side so one test touches one cache line.
    pixels: Vec<(u32, f32)>,
    generated: &'a RgbImage,
    w: i64,
    h: i64,
    /// generated pixels per raster pixel
    scale: (f32, f32),
    /// The generated image has the raster's size (the usual case): no remapping of neighbors.
    same_size: bool,
    k: f32,
    /// `k` when it is a small whole number: `powi` is several times cheaper than `powf`.
    k_int: Option<i32>,
    options: BakeOptions,
}

impl<'a> ViewSampler<'a> {
    fn new(
        camera: &'a Camera,
        raster: &'a ViewRaster,
        generated: &'a RgbImage,
        k: f32,
        options: &BakeOptions,
    ) -> Self {
        let (w, h) = (raster.width() as i64, raster.height() as i64);
        Self {
            camera,
            pixels: raster
                .triangle()
                .par_iter()
                .zip(raster.depth().par_iter())
                .with_min_len(16384)
                .map(|(&t, &d)| (t, d))
                .collect(),
            generated,
            w,
            h,
            same_size: generated.dimensions() == (raster.width(), raster.height()),
            scale: (
                generated.width() as f32 / w as f32,
                generated.height() as f32 / h as f32,
            ),
            k: if k.is_finite() { k } else { 0.0 },
            k_int: (k.is_finite() && k > 0.0 && k <= 32.0 && k.fract() == 0.0).then_some(k as i32),
            options: *options,
        }
    }

    /// Does raster pixel (x, y) show the surface of `tri` at depth `z` (± `tol`)?
    #[inline]
    fn shows(&self, x: i64, y: i64, tri: u32, z: f32, tol: f32) -> bool {
        if x < 0 || y < 0 || x >= self.w || y >= self.h {
            return false;
        }
        let i = (y * self.w + x) as usize;
        let (t, depth) = self.pixels[i];
        t != NO_TRIANGLE && (t == tri || (depth - z).abs() <= tol)
    }

    /// (color in [0, 1], weight) of a surface sample, or `None` when this view cannot see it.
    #[inline]
    fn sample(&self, p: [f32; 3], n: [f32; 3], tri: u32) -> Option<([f32; 3], f32)> {
        let to_eye = sub(self.camera.eye(), p);
        let facing = dot(n, to_eye);
        // Half the surface faces away from any view: reject it before the square root.
        if facing.is_nan() || facing <= 0.0 {
            return None;
        }
        let cos = facing / dot(to_eye, to_eye).sqrt();
        if cos.is_nan() || cos < self.options.min_cos {
            return None;
        }
        let (x, y, z) = self.camera.project(p);
        if z.is_nan() || z <= self.camera.near() {
            return None;
        }
        // Depth changes by about z · tanθ / focal per pixel on a surface tilted by θ.
        let tan = ((1.0 - cos * cos).max(0.0).sqrt() / cos).min(8.0);
        let tol = z
            * (self.options.depth_tolerance
                + self.options.slope_tolerance_px * tan / self.camera.focal_px());
        let (ix, iy) = (x.floor() as i64, y.floor() as i64);
        if !self.shows(ix, iy, tri, z, tol) {
            return None;
        }
        let color = self.bilinear(x, y, tri, z, tol)?;
        let weight = match self.k_int {
            Some(k) => cos.powi(k),
            None if self.k > 0.0 => cos.powf(self.k),
            None => 1.0,
        };
        Some((color, weight))
    }

    /// Bilinear sample of the generated image at raster position (x, y), over the neighbor pixels
    /// that show the same surface (weights renormalized).
    fn bilinear(&self, x: f32, y: f32, tri: u32, z: f32, tol: f32) -> Option<[f32; 3]> {
        let (gw, gh) = (
            self.generated.width() as i64,
            self.generated.height() as i64,
        );
        let gx = x * self.scale.0 - 0.5;
        let gy = y * self.scale.1 - 0.5;
        let (fx, fy) = (gx.floor(), gy.floor());
        let (ax, ay) = (gx - fx, gy - fy);
        let (x0, y0) = (fx as i64, fy as i64);
        let raw = self.generated.as_raw();
        let mut sum = [0.0f32; 3];
        let mut wsum = 0.0f32;
        for (dx, dy, wgt) in [
            (0, 0, (1.0 - ax) * (1.0 - ay)),
            (1, 0, ax * (1.0 - ay)),
            (0, 1, (1.0 - ax) * ay),
            (1, 1, ax * ay),
        ] {
            let (px, py) = (x0 + dx, y0 + dy);
            if wgt <= 0.0 || px < 0 || py < 0 || px >= gw || py >= gh {
                continue;
            }
            // The raster pixel under this generated pixel's center.
            let (rx, ry) = if self.same_size {
                (px, py)
            } else {
                (
                    ((px as f32 + 0.5) / self.scale.0).floor() as i64,
                    ((py as f32 + 0.5) / self.scale.1).floor() as i64,
                )
            };
            if !self.shows(rx, ry, tri, z, tol) {
                continue;
            }
            let o = ((py * gw + px) * 3) as usize;
            for k in 0..3 {
                sum[k] += wgt * raw[o + k] as f32;
            }
            wsum += wgt;
        }
        (wsum > 0.0).then(|| {
            let s = 1.0 / (255.0 * wsum);
            [sum[0] * s, sum[1] * s, sum[2] * s]
        })
    }
}

const ROWS_PER_TASK: usize = 16;

fn bake_slot(slot: &SlotTexels, acc: &mut [[f32; 4]], view: &ViewSampler) {
    let w = slot.width as usize;
    if w == 0 {
        return;
    }
    acc.par_chunks_mut(ROWS_PER_TASK * w)
        .enumerate()
        .for_each(|(c, acc)| {
            let row0 = c * ROWS_PER_TASK;
            let row1 = (row0 + ROWS_PER_TASK).min(slot.height as usize);
            let base = row0 * w;
            for s in slot.row_start[row0]..slot.row_start[row1] {
                if let Some((color, weight)) =
                    view.sample(slot.position[s], slot.normal[s], slot.triangle[s])
                {
                    let a = &mut acc[slot.texel[s] as usize - base];
                    a[0] += color[0] * weight;
                    a[1] += color[1] * weight;
                    a[2] += color[2] * weight;
                    a[3] += weight;
                }
            }
        });
}
