//! Test meshes and vector arithmetic for the rasterizer and baking tests (and the raster bench).
// Each crate that includes this uses a different subset.
#![allow(dead_code)]

use texaug_stages::depth::{Camera, MeshView};

/// Plain owned mesh arrays, as `MeshAsset::triangles()` hands them out.
#[derive(Default, Clone)]
pub struct Mesh {
    pub positions: Vec<[f32; 3]>,
    pub normals: Vec<[f32; 3]>,
    pub uvs: Vec<[f32; 2]>,
    pub indices: Vec<[u32; 3]>,
    pub slots: Vec<u32>,
}

impl Mesh {
    /// The square ±1 in x and y at z = 0, facing +z, UVs covering the whole texture.
    pub fn unit_quad() -> Mesh {
        let mut m = Mesh::default();
        m.add_quad(
            [0.0; 3],
            [1.0, 0.0, 0.0],
            [0.0, 1.0, 0.0],
            [0.0, 0.0],
            [1.0, 1.0],
            0,
        );
        m
    }

    pub fn view(&self) -> MeshView<'_> {
        MeshView::new(
            &self.positions,
            &self.normals,
            &self.uvs,
            &self.indices,
            &self.slots,
        )
        .expect("test meshes are consistent")
    }

    pub fn bounds(&self) -> ([f32; 3], [f32; 3]) {
        self.view().bounds().expect("non-empty mesh")
    }

    /// A quad centered at `c` spanning ±`r` and ±`t` (r × t = outward normal, so CCW from outside),
    /// its UVs the rectangle `uv0..uv1` (top-left to bottom-right, v down).
    pub fn add_quad(
        &mut self,
        c: [f32; 3],
        r: [f32; 3],
        t: [f32; 3],
        uv0: [f32; 2],
        uv1: [f32; 2],
        slot: u32,
    ) {
        let n = normalize(cross(r, t));
        let base = self.positions.len() as u32;
        let corners = [(-1.0, -1.0), (1.0, -1.0), (1.0, 1.0), (-1.0, 1.0)];
        for (a, b) in corners {
            self.positions.push([
                c[0] + a * r[0] + b * t[0],
                c[1] + a * r[1] + b * t[1],
                c[2] + a * r[2] + b * t[2],
            ]);
            self.normals.push(n);
            let u = uv0[0] + (uv1[0] - uv0[0]) * (a + 1.0) / 2.0;
            let v = uv1[1] + (uv0[1] - uv1[1]) * (b + 1.0) / 2.0;
            self.uvs.push([u, v]);
        }
        self.indices.push([base, base + 1, base + 2]);
        self.indices.push([base, base + 2, base + 3]);
        self.slots.extend([slot, slot]);
    }

    /// An axis-aligned box with each face in its own cell of a 3 × 2 atlas (cells inset by `pad`).
    pub fn add_box(&mut self, c: [f32; 3], h: f32, slot: u32) {
        let pad = 0.02;
        let faces: [([f32; 3], [f32; 3], [f32; 3]); 6] = [
            ([0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]),
            ([0.0, 0.0, -1.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]),
            ([1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]),
            ([-1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]),
            ([0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]),
            ([0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]),
        ];
        for (f, (n, r, t)) in faces.iter().enumerate() {
            let (cx, cy) = ((f % 3) as f32, (f / 3) as f32);
            let uv0 = [cx / 3.0 + pad, cy / 2.0 + pad];
            let uv1 = [(cx + 1.0) / 3.0 - pad, (cy + 1.0) / 2.0 - pad];
            let center = [c[0] + n[0] * h, c[1] + n[1] * h, c[2] + n[2] * h];
            self.add_quad(center, scale(*r, h), scale(*t, h), uv0, uv1, slot);
        }
    }
}

/// A UV sphere: u = longitude (0 at +Z, growing toward +X), v = colatitude from the top (glTF v down).
pub fn uv_sphere(radius: f32, segments: u32, rings: u32) -> Mesh {
    let mut m = Mesh::default();
    for i in 0..=rings {
        for j in 0..=segments {
            let (u, v) = (j as f32 / segments as f32, i as f32 / rings as f32);
            let (theta, phi) = (v * std::f32::consts::PI, u * std::f32::consts::TAU);
            let n = [
                theta.sin() * phi.sin(),
                theta.cos(),
                theta.sin() * phi.cos(),
            ];
            m.positions.push(scale(n, radius));
            m.normals.push(n);
            m.uvs.push([u, v]);
        }
    }
    let id = |i: u32, j: u32| i * (segments + 1) + j;
    for i in 0..rings {
        for j in 0..segments {
            let (a, b, c, d) = (id(i, j), id(i + 1, j), id(i + 1, j + 1), id(i, j + 1));
            if i + 1 < rings {
                m.indices.push([a, b, c]);
            }
            if i > 0 {
                m.indices.push([a, c, d]);
            }
        }
    }
    m.slots = vec![0; m.indices.len()];
    m
}

pub fn scale(a: [f32; 3], s: f32) -> [f32; 3] {
    [a[0] * s, a[1] * s, a[2] * s]
}
pub fn sub(a: [f32; 3], b: [f32; 3]) -> [f32; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}
pub fn dot(a: [f32; 3], b: [f32; 3]) -> f32 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}
pub fn cross(a: [f32; 3], b: [f32; 3]) -> [f32; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}
pub fn normalize(a: [f32; 3]) -> [f32; 3] {
    scale(a, 1.0 / dot(a, a).sqrt())
}

pub fn front_camera(distance: f32, size: u32) -> Camera {
    Camera::look_at(
        [0.0, 0.0, distance],
        [0.0; 3],
        [0.0, 1.0, 0.0],
        50.0,
        size,
        size,
        0.1,
        100.0,
    )
}
