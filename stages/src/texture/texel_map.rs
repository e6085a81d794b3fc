//! The mesh rasterized once in UV space: which triangles own each texel center, and the world
//! point and shading normal there. Baking a view then touches each owned texel once, with no
//! per-view work in UV space.

use crate::depth::MeshView;
use rayon::prelude::*;

/// Texel samples of every slot, each slot's sorted by texel (row-major) so row ranges split the
/// work into disjoint pieces of the accumulators.
#[derive(Debug, Clone)]
pub struct TexelMap {
    pub(crate) slots: Vec<SlotTexels>,
}

#[derive(Debug, Clone)]
pub(crate) struct SlotTexels {
    pub(crate) width: u32,
    pub(crate) height: u32,
    /// Row-major texel index of each sample.
    pub(crate) texel: Vec<u32>,
    pub(crate) triangle: Vec<u32>,
    pub(crate) position: Vec<[f32; 3]>,
    pub(crate) normal: Vec<[f32; 3]>,
    /// `row_start[r]` is the first sample in texel row `r`; `height + 1` entries.
    pub(crate) row_start: Vec<usize>,
    /// Per texel: does some triangle own it.
    pub(crate) used: Vec<bool>,
}

/// UV triangles spanning more than this many repeats of the texture are skipped: they are broken
/// data, and covering them would cost time without end.
const MAX_TILE_SPAN: f64 = 2.0;

impl TexelMap {
    /// Rasterizes `mesh` in the UV space of each slot (`slot_sizes[s]` = (width, height) of slot
    /// `s`'s texture). Triangles whose slot has no size here are left out.
    pub fn build(mesh: &MeshView, slot_sizes: &[(u32, u32)]) -> Self {
        // (slot, texel, triangle, b1, b2)
        let mut hits: Vec<(u32, u32, u32, f32, f32)> = (0..mesh.triangle_count())
            .into_par_iter()
            .with_min_len(1024)
            .flat_map_iter(|t| {
                let mut out = Vec::new();
                let slot = mesh.slot(t);
                if let Some(&(w, h)) = slot_sizes.get(slot as usize) {
                    uv_triangle_texels(mesh, t, w, h, |texel, b1, b2| {
                        out.push((slot, texel, t as u32, b1, b2));
                    });
                }
                out
            })
            .collect();
        hits.par_sort_unstable_by_key(|&(s, texel, t, _, _)| (s, texel, t));

        let mut slots = Vec::with_capacity(slot_sizes.len());
        let mut start = 0;
        for (s, &(w, h)) in slot_sizes.iter().enumerate() {
            let end = start + hits[start..].partition_point(|hit| hit.0 == s as u32);
            slots.push(SlotTexels::new(mesh, w, h, &hits[start..end]));
            start = end;
        }
        Self { slots }
    }

    pub fn slot_count(&self) -> usize {
        self.slots.len()
    }

    /// Texels of slot `slot` that some triangle owns.
    pub fn used_texels(&self, slot: usize) -> usize {
        self.slots
            .get(slot)
            .map_or(0, |s| s.used.iter().filter(|&&u| u).count())
    }

    /// (texel, triangle) pairs over all slots; more than the used texels where UVs overlap.
    pub fn sample_count(&self) -> usize {
        self.slots.iter().map(|s| s.texel.len()).sum()
    }
}

impl SlotTexels {
    fn new(mesh: &MeshView, width: u32, height: u32, hits: &[(u32, u32, u32, f32, f32)]) -> Self {
        let (position, normal): (Vec<[f32; 3]>, Vec<[f32; 3]>) = hits
            .par_iter()
            .with_min_len(4096)
            .map(|&(_, _, t, b1, b2)| {
                let t = t as usize;
                let [a, b, c] = mesh.tri_positions(t);
                let b0 = 1.0 - b1 - b2;
                let p = [
                    a[0] * b0 + b[0] * b1 + c[0] * b2,
                    a[1] * b0 + b[1] * b1 + c[1] * b2,
                    a[2] * b0 + b[2] * b1 + c[2] * b2,
                ];
                (p, mesh.shading_normal(t, b1, b2))
            })
            .unzip();
        let texel: Vec<u32> = hits.iter().map(|h| h.1).collect();
        let triangle: Vec<u32> = hits.iter().map(|h| h.2).collect();
        let mut used = vec![false; width as usize * height as usize];
        for &i in &texel {
            used[i as usize] = true;
        }
        let row_start = (0..=height as usize)
            .map(|r| texel.partition_point(|&i| (i as usize) < r * width as usize))
            .collect();
        Self {
            width,
            height,
            texel,
            triangle,
            position,
            normal,
            row_start,
            used,
        }
    }
}

/// Calls `hit(texel, b1, b2)` for each texel center inside triangle `t`'s UV triangle (edges
/// included, so texels on a shared edge go to both sides: they see the same world point), with
/// REPEAT wrapping.
fn uv_triangle_texels(
    mesh: &MeshView,
    t: usize,
    width: u32,
    height: u32,
    mut hit: impl FnMut(u32, f32, f32),
) {
    let [a, b, c] = mesh.indices[t];
    let uv = [mesh.uv(a), mesh.uv(b), mesh.uv(c)];
    if uv.iter().flatten().any(|v| !v.is_finite()) || width == 0 || height == 0 {
        return;
    }
    // Shift by whole repeats so the triangle starts in the first tile.
    let tile_u = uv
        .iter()
        .map(|p| p[0] as f64)
        .fold(f64::INFINITY, f64::min)
        .floor();
    let tile_v = uv
        .iter()
        .map(|p| p[1] as f64)
        .fold(f64::INFINITY, f64::min)
        .floor();
    let (wf, hf) = (width as f64, height as f64);
    let p: Vec<[f64; 2]> = uv
        .iter()
        .map(|q| [(q[0] as f64 - tile_u) * wf, (q[1] as f64 - tile_v) * hf])
        .collect();
    let max_x = p.iter().map(|q| q[0]).fold(0.0, f64::max);
    let max_y = p.iter().map(|q| q[1]).fold(0.0, f64::max);
    if max_x > MAX_TILE_SPAN * wf || max_y > MAX_TILE_SPAN * hf {
        return;
    }
    let area =
        (p[1][0] - p[0][0]) * (p[2][1] - p[0][1]) - (p[2][0] - p[0][0]) * (p[1][1] - p[0][1]);
    if area.abs() < 1e-12 {
        return;
    }
    let inv = 1.0 / area;
    let min_x = p.iter().map(|q| q[0]).fold(f64::INFINITY, f64::min);
    let min_y = p.iter().map(|q| q[1]).fold(f64::INFINITY, f64::min);
    let (i0, i1) = ((min_x - 0.5).ceil() as i64, (max_x - 0.5).floor() as i64);
    let (j0, j1) = ((min_y - 0.5).ceil() as i64, (max_y - 0.5).floor() as i64);
    // Relative tolerance so a texel center exactly on an edge counts despite rounding.
    const EPS: f64 = -1e-9;
    for j in j0..=j1 {
        let y = j as f64 + 0.5;
        for i in i0..=i1 {
            let x = i as f64 + 0.5;
            let l1 =
                ((x - p[0][0]) * (p[2][1] - p[0][1]) - (p[2][0] - p[0][0]) * (y - p[0][1])) * inv;
            let l2 =
                ((p[1][0] - p[0][0]) * (y - p[0][1]) - (x - p[0][0]) * (p[1][1] - p[0][1])) * inv;
            if l1 >= EPS && l2 >= EPS && 1.0 - l1 - l2 >= EPS {
                let tx = i.rem_euclid(width as i64) as u32;
                let ty = j.rem_euclid(height as i64) as u32;
                hit(ty * width + tx, l1 as f32, l2 as f32);
            }
        }
    }
}
