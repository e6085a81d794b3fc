//! A tile-parallel software rasterizer: per pixel the nearest triangle's depth, uv, normal·view
//! cosine and id.
//!
//! Vertices are snapped to 1/256 pixel and covered pixels found with integer edge functions,
//! stepped incrementally across each triangle's clipped bounding box, with the top-left fill rule,
//! so shared edges are watertight (no cracks, no double coverage). Bands of rows are rasterized in
//! parallel (rayon), each against the triangles binned to it; the depth test keeps the largest
//! inverse depth, and attributes are resolved once per pixel afterwards (perspective-correct).
//! Triangles with a vertex nearer than the camera's near plane are skipped rather than clipped: the
//! framed view schedule keeps every mesh beyond it.

use super::camera::Camera;
use super::image_depth::DepthMap;
use super::mesh_view::{dot, normalize, sub, MeshView};
use image::{ImageBuffer, Luma, RgbImage, RgbaImage};
use rayon::prelude::*;

/// The triangle id of pixels no triangle covers.
pub const NO_TRIANGLE: u32 = u32::MAX;

const SUBPIXEL_BITS: u32 = 8;
const SUBPIXEL: i64 = 1 << SUBPIXEL_BITS;
const BAND_ROWS: usize = 16;
/// Projected coordinates beyond this many pixels are dropped so fixed-point products stay in i64.
const MAX_COORD_PX: f32 = (1 << 20) as f32;

/// Rasterizer switches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RasterOptions {
    /// Drop triangles seen from behind (clockwise on screen; glTF fronts are counter-clockwise).
    /// Baking keeps this on: a back face's texels belong to the other side of the surface.
    pub cull_back_faces: bool,
}

impl Default for RasterOptions {
    fn default() -> Self {
        Self {
            cull_back_faces: true,
        }
    }
}

/// One view rasterized: row-major per-pixel buffers of `width × height`.
#[derive(Debug, Clone)]
pub struct ViewRaster {
    camera: Camera,
    /// View-space depth of the nearest surface; `f32::INFINITY` where nothing is covered.
    depth: Vec<f32>,
    /// Interpolated texture coordinates (glTF convention), zero where uncovered.
    uv: Vec<[f32; 2]>,
    /// Cosine between the shading normal and the direction to the eye, zero where uncovered.
    cos: Vec<f32>,
    triangle: Vec<u32>,
    slot: Vec<u32>,
}

/// Rasterizes `mesh` as `camera` sees it, back faces culled.
pub fn rasterize(mesh: &MeshView, camera: &Camera) -> ViewRaster {
    rasterize_with(mesh, camera, &RasterOptions::default())
}

#[derive(Clone, Copy)]
struct Setup {
    x: [i64; 3],
    y: [i64; 3],
    inv_z: [f32; 3],
    inv_area: f32,
    /// Pixel bounds (inclusive) of the pixel centers the triangle may cover.
    x0: i32,
    x1: i32,
    y0: i32,
    y1: i32,
    triangle: u32,
    /// The vertices were reordered 0,2,1 to make the screen area positive.
    swapped: bool,
}

/// [`rasterize`] with explicit options.
pub fn rasterize_with(mesh: &MeshView, camera: &Camera, options: &RasterOptions) -> ViewRaster {
    let (w, h) = (camera.width() as usize, camera.height() as usize);
    let (near, far) = (camera.near(), camera.far());

    // [n_vertices] × (pixel x, pixel y, depth)
    let projected: Vec<[f32; 3]> = mesh
        .positions
        .par_iter()
        .with_min_len(4096)
        .map(|&p| {
            let (x, y, z) = camera.project(p);
            [x, y, z]
        })
        .collect();

    let setups: Vec<Setup> = mesh
        .indices
        .par_iter()
        .with_min_len(4096)
        .enumerate()
        .filter_map(|(t, tri)| setup_triangle(t, tri, &projected, near, far, w, h, options))
        .collect();

    // Binning to bands of rows keeps each band's writes in one contiguous chunk of the buffers.
    let n_bands = h.div_ceil(BAND_ROWS);
    let mut bands: Vec<Vec<u32>> = vec![Vec::new(); n_bands];
    for (s, setup) in setups.iter().enumerate() {
        let b0 = setup.y0 as usize / BAND_ROWS;
        let b1 = setup.y1 as usize / BAND_ROWS;
        for band in &mut bands[b0..=b1] {
            band.push(s as u32);
        }
    }

    let mut raster = ViewRaster {
        camera: *camera,
        depth: vec![f32::INFINITY; w * h],
        uv: vec![[0.0; 2]; w * h],
        cos: vec![0.0; w * h],
        triangle: vec![NO_TRIANGLE; w * h],
        slot: vec![NO_TRIANGLE; w * h],
    };
    let chunk = BAND_ROWS * w;
    raster
        .depth
        .par_chunks_mut(chunk)
        .zip(raster.uv.par_chunks_mut(chunk))
        .zip(raster.cos.par_chunks_mut(chunk))
        .zip(raster.triangle.par_chunks_mut(chunk))
        .zip(raster.slot.par_chunks_mut(chunk))
        .zip(bands.par_iter())
        .enumerate()
        .for_each(|(b, (((((depth, uv), cos), tri), slot), list))| {
            let row0 = b * BAND_ROWS;
            let rows = depth.len() / w;
            // depth holds inverse depth while rasterizing: nearer is larger, empty is 0.
            depth.fill(0.0);
            let mut bary = vec![[0.0f32; 2]; depth.len()];
            for &s in list {
                raster_band(&setups[s as usize], row0, rows, w, depth, tri, &mut bary);
            }
            resolve_band(mesh, camera, row0, w, depth, uv, cos, tri, slot, &bary);
        });
    raster
}

#[allow(clippy::too_many_arguments)]
fn setup_triangle(
    t: usize,
    tri: &[u32; 3],
    projected: &[[f32; 3]],
    near: f32,
    far: f32,
    w: usize,
    h: usize,
    options: &RasterOptions,
) -> Option<Setup> {
    let v = [
        projected[tri[0] as usize],
        projected[tri[1] as usize],
        projected[tri[2] as usize],
    ];
    let usable = |p: &[f32; 3]| {
        p[2] >= near && p[2] <= far && p[0].abs() < MAX_COORD_PX && p[1].abs() < MAX_COORD_PX
    };
    if !v.iter().all(usable) {
        return None;
    }
    let fx = |p: &[f32; 3]| (p[0] * SUBPIXEL as f32).round() as i64;
    let fy = |p: &[f32; 3]| (p[1] * SUBPIXEL as f32).round() as i64;
    let mut x = [fx(&v[0]), fx(&v[1]), fx(&v[2])];
    let mut y = [fy(&v[0]), fy(&v[1]), fy(&v[2])];
    let mut inv_z = [1.0 / v[0][2], 1.0 / v[1][2], 1.0 / v[2][2]];
    // In y-down pixels a positive edge(v0, v1, v2) is clockwise on screen, i.e. a triangle whose
    // world winding is clockwise as seen from the camera: a back face under glTF's CCW rule.
    let area = edge(x[0], y[0], x[1], y[1], x[2], y[2]);
    if area == 0 {
        return None;
    }
    let front = area < 0;
    if !front && options.cull_back_faces {
        return None;
    }
    let swapped = area < 0;
    if swapped {
        x.swap(1, 2);
        y.swap(1, 2);
        inv_z.swap(1, 2);
    }
    let half = SUBPIXEL / 2;
    let (min_x, max_x) = (x.iter().min()?, x.iter().max()?);
    let (min_y, max_y) = (y.iter().min()?, y.iter().max()?);
    // Pixel i's center is (i + 0.5) px: the first center at or after min is ceil((min - ½) / 1).
    let x0 = (min_x - half + SUBPIXEL - 1).div_euclid(SUBPIXEL).max(0);
    let x1 = (max_x - half).div_euclid(SUBPIXEL).min(w as i64 - 1);
    let y0 = (min_y - half + SUBPIXEL - 1).div_euclid(SUBPIXEL).max(0);
    let y1 = (max_y - half).div_euclid(SUBPIXEL).min(h as i64 - 1);
    if x0 > x1 || y0 > y1 {
        return None;
    }
    Some(Setup {
        x,
        y,
        inv_z,
        inv_area: 1.0 / area.abs() as f32,
        x0: x0 as i32,
        x1: x1 as i32,
        y0: y0 as i32,
        y1: y1 as i32,
        triangle: t as u32,
        swapped,
    })
}

/// Twice the signed area of (a, b, p); positive when p lies clockwise-on-screen of a→b (y down).
#[inline]
fn edge(ax: i64, ay: i64, bx: i64, by: i64, px: i64, py: i64) -> i64 {
    (bx - ax) * (py - ay) - (by - ay) * (px - ax)
}

/// Top-left rule for clockwise-on-screen triangles: a top edge runs right along a row, a left
/// edge runs up. Pixels exactly on other edges belong to the neighbor, hence the −1.
#[inline]
fn fill_bias(ax: i64, ay: i64, bx: i64, by: i64) -> i64 {
    let (dx, dy) = (bx - ax, by - ay);
    if (dy == 0 && dx > 0) || dy < 0 {
        0
    } else {
        -1
    }
}

fn raster_band(
    s: &Setup,
    row0: usize,
    rows: usize,
    w: usize,
    inv_depth: &mut [f32],
    tri: &mut [u32],
    bary: &mut [[f32; 2]],
) {
    let y_start = (s.y0 as usize).max(row0);
    let y_end = (s.y1 as usize).min(row0 + rows - 1);
    if y_start > y_end {
        return;
    }
    let [x0, x1, x2] = s.x;
    let [y0, y1, y2] = s.y;
    let px = (s.x0 as i64) * SUBPIXEL + SUBPIXEL / 2;
    let py = (y_start as i64) * SUBPIXEL + SUBPIXEL / 2;
    // w_k is the edge function of the edge opposite vertex k: w_k / area is barycentric k.
    let mut r0 = edge(x1, y1, x2, y2, px, py);
    let mut r1 = edge(x2, y2, x0, y0, px, py);
    let mut r2 = edge(x0, y0, x1, y1, px, py);
    let (b0, b1, b2) = (
        fill_bias(x1, y1, x2, y2),
        fill_bias(x2, y2, x0, y0),
        fill_bias(x0, y0, x1, y1),
    );
    let (sx0, sx1, sx2) = (
        -(y2 - y1) * SUBPIXEL,
        -(y0 - y2) * SUBPIXEL,
        -(y1 - y0) * SUBPIXEL,
    );
    let (sy0, sy1, sy2) = (
        (x2 - x1) * SUBPIXEL,
        (x0 - x2) * SUBPIXEL,
        (x1 - x0) * SUBPIXEL,
    );
    let [iz0, iz1, iz2] = s.inv_z;
    for yy in y_start..=y_end {
        let (mut e0, mut e1, mut e2) = (r0, r1, r2);
        let base = (yy - row0) * w;
        for xx in s.x0 as usize..=s.x1 as usize {
            if (e0 + b0) | (e1 + b1) | (e2 + b2) >= 0 {
                let l0 = e0 as f32 * s.inv_area;
                let l1 = e1 as f32 * s.inv_area;
                let l2 = e2 as f32 * s.inv_area;
                let iz = l0 * iz0 + l1 * iz1 + l2 * iz2;
                let i = base + xx;
                if iz > inv_depth[i] {
                    inv_depth[i] = iz;
                    tri[i] = s.triangle;
                    // Perspective-correct barycentrics of the original vertices 1 and 2.
                    let p1 = l1 * iz1 / iz;
                    let p2 = l2 * iz2 / iz;
                    bary[i] = if s.swapped { [p2, p1] } else { [p1, p2] };
                }
            }
            e0 += sx0;
            e1 += sx1;
            e2 += sx2;
        }
        r0 += sy0;
        r1 += sy1;
        r2 += sy2;
    }
}

#[allow(clippy::too_many_arguments)]
fn resolve_band(
    mesh: &MeshView,
    camera: &Camera,
    row0: usize,
    w: usize,
    depth: &mut [f32],
    uv: &mut [[f32; 2]],
    cos: &mut [f32],
    tri: &[u32],
    slot: &mut [u32],
    bary: &[[f32; 2]],
) {
    let eye = camera.eye();
    for i in 0..depth.len() {
        let t = tri[i];
        if t == NO_TRIANGLE {
            depth[i] = f32::INFINITY;
            continue;
        }
        let z = 1.0 / depth[i];
        depth[i] = z;
        let t = t as usize;
        let [p1, p2] = bary[i];
        let p0 = 1.0 - p1 - p2;
        let [a, b, c] = mesh.indices[t];
        let (ua, ub, uc) = (mesh.uv(a), mesh.uv(b), mesh.uv(c));
        uv[i] = [
            ua[0] * p0 + ub[0] * p1 + uc[0] * p2,
            ua[1] * p0 + ub[1] * p1 + uc[1] * p2,
        ];
        let (x, y) = ((i % w) as f32 + 0.5, (row0 + i / w) as f32 + 0.5);
        let world = camera.unproject(x, y, z);
        let to_eye = normalize(sub(eye, world));
        cos[i] = dot(mesh.shading_normal(t, p1, p2), to_eye);
        slot[i] = mesh.slot(t);
    }
}

impl ViewRaster {
    pub fn camera(&self) -> &Camera {
        &self.camera
    }
    pub fn width(&self) -> u32 {
        self.camera.width()
    }
    pub fn height(&self) -> u32 {
        self.camera.height()
    }
    /// Row-major view-space depth, `f32::INFINITY` where uncovered.
    pub fn depth(&self) -> &[f32] {
        &self.depth
    }
    pub fn uv(&self) -> &[[f32; 2]] {
        &self.uv
    }
    /// normal·view cosine (shading normal; may dip slightly below 0 near silhouettes).
    pub fn cos(&self) -> &[f32] {
        &self.cos
    }
    /// Triangle id per pixel, [`NO_TRIANGLE`] where uncovered.
    pub fn triangle(&self) -> &[u32] {
        &self.triangle
    }
    /// Texture slot per pixel, [`NO_TRIANGLE`] where uncovered.
    pub fn slot(&self) -> &[u32] {
        &self.slot
    }
    pub fn covered_pixels(&self) -> usize {
        self.triangle.iter().filter(|&&t| t != NO_TRIANGLE).count()
    }

    /// The coverage mask: 255 where a triangle is seen, 0 elsewhere.
    pub fn mask(&self) -> image::GrayImage {
        let data = self
            .triangle
            .iter()
            .map(|&t| if t == NO_TRIANGLE { 0 } else { 255 })
            .collect();
        image::GrayImage::from_raw(self.width(), self.height(), data)
            .unwrap_or_else(|| image::GrayImage::new(self.width(), self.height()))
    }

    /// Inverse depth (`1 / z`, larger = nearer, like MiDaS disparity), 0 where uncovered.
    pub fn disparity_map(&self) -> DepthMap {
        let data = self
            .depth
            .iter()
            .map(|&z| if z.is_finite() { 1.0 / z } else { 0.0 })
            .collect();
        DepthMap::from_vec(self.width(), self.height(), data)
            .unwrap_or_else(|_| DepthMap::zeros(self.width(), self.height()))
    }

    /// The depth conditioning image: inverse depth (larger = nearer, like MiDaS) min-max normalized
    /// over the covered pixels onto [50 %, 100 %] of the u16 range, background 0. The floor keeps
    /// the silhouette a clear step for the depth-conditioned model, as TEXTure normalizes its
    /// rendered depth to [0.5, 1] over the object.
    pub fn depth_image(&self) -> ImageBuffer<Luma<u16>, Vec<u16>> {
        let (mut lo, mut hi) = (f32::INFINITY, 0.0f32);
        for &z in &self.depth {
            if z.is_finite() {
                lo = lo.min(1.0 / z);
                hi = hi.max(1.0 / z);
            }
        }
        let span = hi - lo;
        let data = self
            .depth
            .iter()
            .map(|&z| {
                if !z.is_finite() {
                    return 0;
                }
                let t = if span > 0.0 {
                    (1.0 / z - lo) / span
                } else {
                    1.0
                };
                (65535.0 * (0.5 + 0.5 * t.clamp(0.0, 1.0))).round() as u16
            })
            .collect();
        ImageBuffer::from_raw(self.width(), self.height(), data)
            .unwrap_or_else(|| ImageBuffer::new(self.width(), self.height()))
    }

    /// The textures as this view sees them: per pixel the slot's texture sampled bilinearly at the
    /// pixel's uv with REPEAT wrapping (glTF's default sampler), alpha ignored; uncovered pixels and
    /// slots without a texture are mid-gray.
    pub fn render_texture(&self, texture_of_slot: &[&RgbaImage]) -> RgbImage {
        let (w, h) = (self.width(), self.height());
        let mut out = vec![128u8; (w * h * 3) as usize];
        out.par_chunks_mut(3 * w as usize)
            .enumerate()
            .for_each(|(row, line)| {
                let base = row * w as usize;
                for (x, px) in line.chunks_exact_mut(3).enumerate() {
                    let i = base + x;
                    let tex = match texture_of_slot.get(self.slot[i] as usize) {
                        Some(t) if self.triangle[i] != NO_TRIANGLE => t,
                        _ => continue,
                    };
                    let c = sample_rgba_repeat(tex, self.uv[i]);
                    for k in 0..3 {
                        px[k] = (c[k] * 255.0).round().clamp(0.0, 255.0) as u8;
                    }
                }
            });
        RgbImage::from_raw(w, h, out).unwrap_or_else(|| RgbImage::new(w, h))
    }
}

/// Bilinear sample of `tex` at glTF uv (texel centers at (i + ½) / size), REPEAT wrap, in [0, 1].
pub(crate) fn sample_rgba_repeat(tex: &RgbaImage, uv: [f32; 2]) -> [f32; 4] {
    let (tw, th) = (tex.width() as i64, tex.height() as i64);
    if tw == 0 || th == 0 || !uv[0].is_finite() || !uv[1].is_finite() {
        return [0.5, 0.5, 0.5, 1.0];
    }
    let fx = uv[0] * tw as f32 - 0.5;
    let fy = uv[1] * th as f32 - 0.5;
    let (ix, iy) = (fx.floor(), fy.floor());
    let (ax, ay) = (fx - ix, fy - iy);
    let (ix, iy) = (ix as i64, iy as i64);
    let raw = tex.as_raw();
    let at = |x: i64, y: i64| {
        let (x, y) = (x.rem_euclid(tw) as usize, y.rem_euclid(th) as usize);
        let o = (y * tw as usize + x) * 4;
        [raw[o], raw[o + 1], raw[o + 2], raw[o + 3]]
    };
    let (c00, c10, c01, c11) = (
        at(ix, iy),
        at(ix + 1, iy),
        at(ix, iy + 1),
        at(ix + 1, iy + 1),
    );
    let mut out = [0.0; 4];
    for k in 0..4 {
        let top = c00[k] as f32 * (1.0 - ax) + c10[k] as f32 * ax;
        let bottom = c01[k] as f32 * (1.0 - ax) + c11[k] as f32 * ax;
        out[k] = (top * (1.0 - ay) + bottom * ay) / 255.0;
    }
    out
}
