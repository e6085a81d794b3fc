//! World-space triangles of a glTF scene: node transforms, strips and fans, normals and the base-color UV set.

use serde_json::Value;

use super::accessor::AccessorReader;
use super::error::SourceError;
use super::gltf_io::{array, get_usize};
use super::material::{base_color_info, numbers, uv_set, uv_transform};
use super::mesh::MeshAsset;

/// Marks a triangle whose material has no base-color slot (no material, or a factor-only one without UVs).
pub const NO_SLOT: u32 = u32::MAX;

/// World-space triangles of the default scene, ready for rendering.
#[derive(Debug, Clone, Default)]
pub struct WorldTriangles {
    pub positions: Vec<[f32; 3]>,
    pub normals: Vec<[f32; 3]>,
    /// The texCoord set each material's base color uses, with `KHR_texture_transform` applied, so that a texel at
    /// `uv` of the slot image is where a glTF viewer shows it.
    pub uvs: Vec<[f32; 2]>,
    pub indices: Vec<[u32; 3]>,
    /// The slot index of each triangle, or [`NO_SLOT`].
    pub slot_of_triangle: Vec<u32>,
}

/// Column-major 4×4, as glTF stores `node.matrix`.
type Mat4 = [f64; 16];

const IDENTITY: Mat4 = [
    1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0,
];

fn mul(a: &Mat4, b: &Mat4) -> Mat4 {
    let mut out = [0.0; 16];
    for col in 0..4 {
        for row in 0..4 {
            out[col * 4 + row] = (0..4).map(|k| a[k * 4 + row] * b[col * 4 + k]).sum();
        }
    }
    out
}

/// A node's local transform: `matrix`, or translation · rotation · scale.
fn local_transform(node: &Value) -> Mat4 {
    let matrix = numbers(node, "matrix");
    if matrix.len() == 16 {
        let mut m = [0.0; 16];
        m.copy_from_slice(&matrix);
        return m;
    }
    let t = numbers(node, "translation");
    let r = numbers(node, "rotation");
    let s = numbers(node, "scale");
    let (tx, ty, tz) = match t.as_slice() {
        [x, y, z] => (*x, *y, *z),
        _ => (0.0, 0.0, 0.0),
    };
    let (x, y, z, w) = match r.as_slice() {
        [x, y, z, w] => (*x, *y, *z, *w),
        _ => (0.0, 0.0, 0.0, 1.0),
    };
    let (sx, sy, sz) = match s.as_slice() {
        [x, y, z] => (*x, *y, *z),
        _ => (1.0, 1.0, 1.0),
    };
    // Rotation columns of the unit quaternion (x, y, z, w), scaled per axis.
    [
        (1.0 - 2.0 * (y * y + z * z)) * sx,
        (2.0 * (x * y + z * w)) * sx,
        (2.0 * (x * z - y * w)) * sx,
        0.0,
        (2.0 * (x * y - z * w)) * sy,
        (1.0 - 2.0 * (x * x + z * z)) * sy,
        (2.0 * (y * z + x * w)) * sy,
        0.0,
        (2.0 * (x * z + y * w)) * sz,
        (2.0 * (y * z - x * w)) * sz,
        (1.0 - 2.0 * (x * x + y * y)) * sz,
        0.0,
        tx,
        ty,
        tz,
        1.0,
    ]
}

/// The normal matrix (inverse transpose of the upper 3×3, row-major) and the determinant's sign.
fn normal_matrix(m: &Mat4) -> ([[f64; 3]; 3], bool) {
    let a = |r: usize, c: usize| m[c * 4 + r];
    let cof = |r: usize, c: usize| {
        let (r1, r2) = ((r + 1) % 3, (r + 2) % 3);
        let (c1, c2) = ((c + 1) % 3, (c + 2) % 3);
        a(r1, c1) * a(r2, c2) - a(r1, c2) * a(r2, c1)
    };
    let det = a(0, 0) * cof(0, 0) + a(0, 1) * cof(0, 1) + a(0, 2) * cof(0, 2);
    // The cofactor matrix is det · inverse-transpose; the scale does not matter as normals are renormalised.
    let n = [
        [cof(0, 0), cof(0, 1), cof(0, 2)],
        [cof(1, 0), cof(1, 1), cof(1, 2)],
        [cof(2, 0), cof(2, 1), cof(2, 2)],
    ];
    let sign = if det < 0.0 { -1.0 } else { 1.0 };
    (n.map(|row| row.map(|v| v * sign)), det < 0.0)
}

/// A unit vector along `v`, or +z when `v` is zero or not finite (a NaN normal in the file, a zero-area triangle).
fn normalize(v: [f64; 3]) -> [f32; 3] {
    let len = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
    if len.is_finite() && len > 1e-20 {
        [
            (v[0] / len) as f32,
            (v[1] / len) as f32,
            (v[2] / len) as f32,
        ]
    } else {
        [0.0, 0.0, 1.0]
    }
}

/// The root nodes to draw: the default scene's, or every parentless node when the asset has no scenes.
fn root_nodes(json: &Value) -> Vec<usize> {
    let scenes = array(json, "scenes");
    if !scenes.is_empty() {
        let scene = get_usize(json, "scene").unwrap_or(0);
        return scenes
            .get(scene)
            .map(|s| {
                array(s, "nodes")
                    .iter()
                    .filter_map(|n| n.as_u64().map(|n| n as usize))
                    .collect()
            })
            .unwrap_or_default();
    }
    let nodes = array(json, "nodes");
    let mut is_child = vec![false; nodes.len()];
    for node in nodes {
        for c in array(node, "children").iter().filter_map(Value::as_u64) {
            if let Some(flag) = is_child.get_mut(c as usize) {
                *flag = true;
            }
        }
    }
    (0..nodes.len()).filter(|&i| !is_child[i]).collect()
}

/// Every (mesh, world transform) instance below the roots.
fn mesh_instances(asset: &MeshAsset) -> Result<Vec<(usize, Mat4)>, SourceError> {
    let nodes = array(&asset.json, "nodes");
    let mut out = Vec::new();
    let mut stack: Vec<(usize, Mat4, usize)> = root_nodes(&asset.json)
        .into_iter()
        .rev()
        .map(|n| (n, IDENTITY, 0))
        .collect();
    let mut visits = 0usize;
    while let Some((index, parent, depth)) = stack.pop() {
        // Nodes shared by several parents (invalid, but seen) could multiply without bound.
        visits += 1;
        if visits > 1_000_000 {
            return Err(SourceError::BadGltf {
                path: asset.path.clone(),
                cause: "the node hierarchy expands to over a million nodes; a node is shared by several parents".into(),
            });
        }
        let node = nodes.get(index).ok_or_else(|| SourceError::BadGltf {
            path: asset.path.clone(),
            cause: format!("the scene refers to node {index}, which does not exist"),
        })?;
        if depth > nodes.len() {
            return Err(SourceError::BadGltf {
                path: asset.path.clone(),
                cause: format!("node {index} is part of a cycle in the node hierarchy"),
            });
        }
        let world = mul(&parent, &local_transform(node));
        if let Some(mesh) = get_usize(node, "mesh") {
            out.push((mesh, world));
        }
        for child in array(node, "children")
            .iter()
            .rev()
            .filter_map(Value::as_u64)
        {
            stack.push((child as usize, world, depth + 1));
        }
    }
    Ok(out)
}

/// Triangle index triples of a primitive in mode 4 (list), 5 (strip) or 6 (fan).
fn triangle_list(mode: u64, idx: &[u32]) -> Vec<[u32; 3]> {
    match mode {
        5 => (2..idx.len())
            .map(|i| {
                // Every other strip triangle is flipped to keep one winding.
                if i % 2 == 0 {
                    [idx[i - 2], idx[i - 1], idx[i]]
                } else {
                    [idx[i - 1], idx[i - 2], idx[i]]
                }
            })
            .collect(),
        6 => (2..idx.len())
            .map(|i| [idx[0], idx[i - 1], idx[i]])
            .collect(),
        _ => idx.chunks_exact(3).map(|t| [t[0], t[1], t[2]]).collect(),
    }
}

impl MeshAsset {
    /// The default scene's triangles in world space, with each material's base-color UVs.
    pub fn triangles(&self) -> Result<WorldTriangles, SourceError> {
        world_triangles(self)
    }
}

fn world_triangles(asset: &MeshAsset) -> Result<WorldTriangles, SourceError> {
    let json = &asset.json;
    let bad = |cause: String| SourceError::BadGltf {
        path: asset.path.clone(),
        cause,
    };
    let reader = AccessorReader {
        path: &asset.path,
        json,
        buffers: &asset.buffers,
        limits: &asset.limits,
    };
    let max_scene = asset.limits.max_scene_elements;
    let over_scene = |what: &str, n: u64| SourceError::OverLimit {
        path: asset.path.clone(),
        what: "the default scene".to_string(),
        cause: format!(
            "expands (with its node instancing) to over {n} {what}, over the limit of {max_scene}"
        ),
        limit: "max_scene_elements",
    };
    let meshes = array(json, "meshes");
    let materials = array(json, "materials");
    let mut out = WorldTriangles::default();
    for (mesh_index, world) in mesh_instances(asset)? {
        let mesh = meshes.get(mesh_index).ok_or_else(|| {
            bad(format!(
                "a node refers to mesh {mesh_index}, which does not exist"
            ))
        })?;
        let (nmat, flip) = normal_matrix(&world);
        for (p, prim) in array(mesh, "primitives").iter().enumerate() {
            let attributes = prim.get("attributes").unwrap_or(&Value::Null);
            let position = get_usize(attributes, "POSITION").ok_or_else(|| {
                bad(format!(
                    "mesh {mesh_index} primitive {p} has no POSITION attribute"
                ))
            })?;
            let count = reader.count(position)?;
            // Checked before reading: instancing could repeat a large mesh without bound.
            let vertices = out.positions.len() as u64 + count as u64;
            if vertices > max_scene {
                return Err(over_scene("vertices", vertices));
            }
            let positions = reader.read(position, 3)?;
            let normals = match get_usize(attributes, "NORMAL") {
                Some(a) if reader.count(a)? == count => Some(reader.read(a, 3)?),
                _ => None,
            };
            let material = get_usize(prim, "material");
            let info = material
                .and_then(|m| materials.get(m))
                .and_then(base_color_info);
            let slot = material
                .and_then(|m| asset.material_slot.get(m).copied().flatten())
                .map_or(NO_SLOT, |s| s as u32);
            // A created slot's texture reads TEXCOORD_0 with no transform.
            let set = info.map_or(0, uv_set);
            let uvs = match get_usize(attributes, &format!("TEXCOORD_{set}")) {
                Some(a) if reader.count(a)? == count => Some(reader.read(a, 2)?),
                _ => None,
            };
            let indices: Vec<u32> = match get_usize(prim, "indices") {
                Some(a) => {
                    // Indices are unsigned integers; floats would be truncated into other vertices.
                    let ty = reader.component_type(a).unwrap_or(0);
                    if !matches!(ty, 5121 | 5123 | 5125) {
                        return Err(bad(format!(
                            "mesh {mesh_index} primitive {p}'s indices (accessor {a}) have componentType {ty}; indices must be unsigned byte, short or int (5121, 5123, 5125)"
                        )));
                    }
                    reader.read(a, 1)?.into_iter().map(|i| i as u32).collect()
                }
                None => (0..count as u32).collect(),
            };
            if let Some(&i) = indices.iter().find(|&&i| i as usize >= count) {
                return Err(bad(format!(
                    "mesh {mesh_index} primitive {p} has index {i} but only {count} vertices"
                )));
            }
            let mode = prim.get("mode").and_then(Value::as_u64).unwrap_or(4);
            let triangles = match mode {
                5 | 6 => indices.len().saturating_sub(2),
                _ => indices.len() / 3,
            };
            let total = out.indices.len() as u64 + triangles as u64;
            if total > max_scene {
                return Err(over_scene("triangles", total));
            }
            let base = out.positions.len() as u32;
            let tf = uv_transform(info);
            for v in 0..count {
                let x = &positions[v * 3..v * 3 + 3];
                let w = |r: usize| {
                    world[r] * x[0] + world[4 + r] * x[1] + world[8 + r] * x[2] + world[12 + r]
                };
                let world_position = [w(0) as f32, w(1) as f32, w(2) as f32];
                if !world_position.iter().all(|c| c.is_finite()) {
                    return Err(bad(format!(
                        "mesh {mesh_index} primitive {p} vertex {v} has the position {:?}, {:?} in world space, which is not a finite number (NaN, infinite, or beyond f32 after the node transforms); fix or delete the vertex (or the node's transform) and re-export",
                        [x[0], x[1], x[2]],
                        world_position
                    )));
                }
                out.positions.push(world_position);
                if let Some(n) = &normals {
                    let n = &n[v * 3..v * 3 + 3];
                    let r = |row: usize| {
                        nmat[row][0] * n[0] + nmat[row][1] * n[1] + nmat[row][2] * n[2]
                    };
                    out.normals.push(normalize([r(0), r(1), r(2)]));
                }
                let uv = match &uvs {
                    Some(uv) => {
                        let (u, v) = (uv[v * 2], uv[v * 2 + 1]);
                        [
                            (tf[0][0] * u + tf[0][1] * v + tf[0][2]) as f32,
                            (tf[1][0] * u + tf[1][1] * v + tf[1][2]) as f32,
                        ]
                    }
                    None => [0.0, 0.0],
                };
                if !uv.iter().all(|c| c.is_finite()) {
                    return Err(bad(format!(
                        "mesh {mesh_index} primitive {p} vertex {v} has the texture coordinate {uv:?} (TEXCOORD_{set}, after KHR_texture_transform), which is not a finite number; re-unwrap the UVs and re-export"
                    )));
                }
                out.uvs.push(uv);
            }
            let first_triangle = out.indices.len();
            for t in triangle_list(mode, &indices) {
                let t = if flip { [t[0], t[2], t[1]] } else { t };
                out.indices.push([t[0] + base, t[1] + base, t[2] + base]);
                out.slot_of_triangle.push(slot);
            }
            if normals.is_none() {
                smooth_normals(&mut out, base as usize, first_triangle);
            }
        }
    }
    Ok(out)
}

/// Area-weighted vertex normals for the vertices from `first_vertex` on, from the triangles from `first_triangle` on.
fn smooth_normals(out: &mut WorldTriangles, first_vertex: usize, first_triangle: usize) {
    let mut acc = vec![[0.0f64; 3]; out.positions.len() - first_vertex];
    for t in &out.indices[first_triangle..] {
        let p = |i: u32| out.positions[i as usize].map(f64::from);
        let (a, b, c) = (p(t[0]), p(t[1]), p(t[2]));
        let e1 = [b[0] - a[0], b[1] - a[1], b[2] - a[2]];
        let e2 = [c[0] - a[0], c[1] - a[1], c[2] - a[2]];
        let n = [
            e1[1] * e2[2] - e1[2] * e2[1],
            e1[2] * e2[0] - e1[0] * e2[2],
            e1[0] * e2[1] - e1[1] * e2[0],
        ];
        for &i in t {
            let a = &mut acc[i as usize - first_vertex];
            for k in 0..3 {
                a[k] += n[k];
            }
        }
    }
    out.normals.extend(acc.into_iter().map(normalize));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trs_matches_matrix_product() {
        // 90° about z: x → y.
        let h = std::f64::consts::FRAC_1_SQRT_2;
        let node = serde_json::json!({"translation": [1.0, 2.0, 3.0], "rotation": [0.0, 0.0, h, h], "scale": [2.0, 2.0, 2.0]});
        let m = local_transform(&node);
        let x = [1.0, 0.0, 0.0];
        let w = |r: usize| m[r] * x[0] + m[4 + r] * x[1] + m[8 + r] * x[2] + m[12 + r];
        assert!(
            (w(0) - 1.0).abs() < 1e-12 && (w(1) - 4.0).abs() < 1e-12 && (w(2) - 3.0).abs() < 1e-12
        );
    }

    #[test]
    fn mirror_flips_winding_and_normals_stay_unit() {
        let mut m = IDENTITY;
        m[0] = -3.0;
        let (n, flip) = normal_matrix(&m);
        assert!(flip);
        let v = normalize([n[0][0], n[1][0], n[2][0]].map(|x| x * 1.0));
        assert!((v[0] + 1.0).abs() < 1e-6);
    }

    #[test]
    fn strips_and_fans_become_triangles() {
        assert_eq!(triangle_list(5, &[0, 1, 2, 3]), vec![[0, 1, 2], [2, 1, 3]]);
        assert_eq!(triangle_list(6, &[0, 1, 2, 3]), vec![[0, 1, 2], [0, 2, 3]]);
    }
}
