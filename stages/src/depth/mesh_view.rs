//! World-space triangle arrays borrowed from the caller and checked once, so the rasterizer and the
//! baker can index them without bounds worries.

use super::error::DepthError;

/// A triangle mesh in world space. UVs follow glTF: origin at the top-left of the image, v down.
/// Meshes whose UVs come from v-up formats (OBJ) must be flipped (`v = 1 - v`) before they get here.
#[derive(Debug, Clone, Copy)]
pub struct MeshView<'a> {
    pub(crate) positions: &'a [[f32; 3]],
    pub(crate) normals: &'a [[f32; 3]],
    pub(crate) uvs: &'a [[f32; 2]],
    pub(crate) indices: &'a [[u32; 3]],
    pub(crate) slot_of_triangle: &'a [u32],
}

impl<'a> MeshView<'a> {
    /// Checks the arrays: `normals` and `uvs` hold one entry per position or are empty (face normals
    /// and zero UVs stand in), `slot_of_triangle` one entry per triangle or is empty (slot 0), and
    /// every index names a position. A slot number the baker has no texture for (e.g. `u32::MAX`)
    /// keeps the triangle as an occluder that is never baked.
    pub fn new(
        positions: &'a [[f32; 3]],
        normals: &'a [[f32; 3]],
        uvs: &'a [[f32; 2]],
        indices: &'a [[u32; 3]],
        slot_of_triangle: &'a [u32],
    ) -> Result<Self, DepthError> {
        let n = positions.len();
        if !normals.is_empty() && normals.len() != n {
            return Err(DepthError::BadMesh {
                what: format!("{} normals for {n} positions", normals.len()),
            });
        }
        if !uvs.is_empty() && uvs.len() != n {
            return Err(DepthError::BadMesh {
                what: format!("{} uvs for {n} positions", uvs.len()),
            });
        }
        if !slot_of_triangle.is_empty() && slot_of_triangle.len() != indices.len() {
            return Err(DepthError::BadMesh {
                what: format!(
                    "{} slots for {} triangles",
                    slot_of_triangle.len(),
                    indices.len()
                ),
            });
        }
        for (t, tri) in indices.iter().enumerate() {
            if let Some(&v) = tri.iter().find(|&&v| v as usize >= n) {
                return Err(DepthError::IndexOutOfRange {
                    triangle: t,
                    vertex: v,
                    vertices: n,
                });
            }
        }
        Ok(Self {
            positions,
            normals,
            uvs,
            indices,
            slot_of_triangle,
        })
    }

    pub fn triangle_count(&self) -> usize {
        self.indices.len()
    }

    pub fn vertex_count(&self) -> usize {
        self.positions.len()
    }

    /// The axis-aligned bounds of the positions, or `None` for an empty mesh.
    pub fn bounds(&self) -> Option<([f32; 3], [f32; 3])> {
        let first = *self.positions.first()?;
        let (mut lo, mut hi) = (first, first);
        for p in self.positions {
            for k in 0..3 {
                lo[k] = lo[k].min(p[k]);
                hi[k] = hi[k].max(p[k]);
            }
        }
        Some((lo, hi))
    }

    pub(crate) fn slot(&self, t: usize) -> u32 {
        self.slot_of_triangle.get(t).copied().unwrap_or(0)
    }

    pub(crate) fn uv(&self, v: u32) -> [f32; 2] {
        self.uvs.get(v as usize).copied().unwrap_or([0.0, 0.0])
    }

    pub(crate) fn tri_positions(&self, t: usize) -> [[f32; 3]; 3] {
        let [a, b, c] = self.indices[t];
        [
            self.positions[a as usize],
            self.positions[b as usize],
            self.positions[c as usize],
        ]
    }

    /// The unit geometric normal of triangle `t` (CCW front, as glTF), zero when degenerate.
    pub(crate) fn face_normal(&self, t: usize) -> [f32; 3] {
        let [a, b, c] = self.tri_positions(t);
        normalize(cross(sub(b, a), sub(c, a)))
    }

    /// The interpolated shading normal at barycentrics `(1 - b1 - b2, b1, b2)`, falling back to the
    /// face normal where vertex normals are absent or cancel out.
    pub(crate) fn shading_normal(&self, t: usize, b1: f32, b2: f32) -> [f32; 3] {
        if self.normals.is_empty() {
            return self.face_normal(t);
        }
        let [a, b, c] = self.indices[t];
        let (na, nb, nc) = (
            self.normals[a as usize],
            self.normals[b as usize],
            self.normals[c as usize],
        );
        let b0 = 1.0 - b1 - b2;
        let n = [
            na[0] * b0 + nb[0] * b1 + nc[0] * b2,
            na[1] * b0 + nb[1] * b1 + nc[1] * b2,
            na[2] * b0 + nb[2] * b1 + nc[2] * b2,
        ];
        if dot(n, n) < 1e-12 {
            self.face_normal(t)
        } else {
            normalize(n)
        }
    }
}

pub(crate) fn sub(a: [f32; 3], b: [f32; 3]) -> [f32; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

pub(crate) fn dot(a: [f32; 3], b: [f32; 3]) -> f32 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

pub(crate) fn cross(a: [f32; 3], b: [f32; 3]) -> [f32; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

pub(crate) fn normalize(a: [f32; 3]) -> [f32; 3] {
    let l = dot(a, a).sqrt();
    if l > 0.0 && l.is_finite() {
        [a[0] / l, a[1] / l, a[2] / l]
    } else {
        [0.0, 0.0, 0.0]
    }
}
