//! Procedural demo sources: a few small textured meshes and images, deterministic, no downloads.
//!
//! The meshes cover what re-texturing meets in practice: two primitives with two materials (mug), a material with
//! only `baseColorFactor` (the mug's handle), one base-color image shared by two materials with a normal map and
//! `KHR_texture_transform` (crate), a second UV set and data URIs (ball), and a .gltf with external .bin and PNG
//! files (can). The images are a PNG, a JPEG and a WebP; two of them have inpainting masks.

use std::f32::consts::{PI, TAU};
use std::path::{Path, PathBuf};

use image::{Rgba, RgbaImage};
use serde_json::json;

use super::demo_gltf::{Builder, Geometry, Layout};
use super::error::SourceError;
use super::image_file::{encode_png, write_bytes_atomic};

/// One demo asset as a manifest row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoSource {
    pub id: String,
    /// Relative to the folder given to [`write_demo_sources`].
    pub path: PathBuf,
    pub label: String,
    /// "image" or "mesh".
    pub kind: &'static str,
}

fn source(id: &str, path: &str, label: &str, kind: &'static str) -> DemoSource {
    DemoSource {
        id: id.into(),
        path: path.into(),
        label: label.into(),
        kind,
    }
}

/// Writes the demo assets into `dir` (created if needed) and returns their manifest rows.
pub fn write_demo_sources(dir: &Path) -> Result<Vec<DemoSource>, SourceError> {
    let mkdir = |d: &Path| {
        std::fs::create_dir_all(d).map_err(|source| SourceError::Write {
            path: d.to_path_buf(),
            source,
        })
    };
    mkdir(dir)?;
    mkdir(&dir.join("can"))?;
    write_mug(&dir.join("mug.glb"))?;
    write_crate(&dir.join("crate.glb"))?;
    write_ball(&dir.join("ball.gltf"))?;
    write_can(&dir.join("can").join("can.gltf"))?;
    write_png(&sunset(), &dir.join("sunset.png"))?;
    write_jpeg(&chessboard(), &dir.join("chessboard.jpg"))?;
    write_webp(&flower(), &dir.join("flower.webp"))?;
    write_png(&apple(), &dir.join("apple.png"))?;
    // Inpainting masks for `manifests/inpaint.csv` (white = repaint): the apple's background, the sunset's sky.
    write_png(&apple_background(), &dir.join("apple-background.png"))?;
    write_png(&sunset_sky(), &dir.join("sunset-sky.png"))?;
    Ok(vec![
        source("mug", "mug.glb", "mug", "mesh"),
        source("crate", "crate.glb", "wooden crate", "mesh"),
        source("ball", "ball.gltf", "beach ball", "mesh"),
        source("can", "can/can.gltf", "soda can", "mesh"),
        source("sunset", "sunset.png", "sunset", "image"),
        source("chessboard", "chessboard.jpg", "chessboard", "image"),
        source("flower", "flower.webp", "flower", "image"),
        source("apple", "apple.png", "apple", "image"),
    ])
}

/// The manifest CSV (`id,path,label,kind`) with each path prefixed by `prefix` (the demo folder as the CSV sees it).
pub fn demo_manifest_csv(sources: &[DemoSource], prefix: &str) -> String {
    let field = |s: &str| {
        if s.contains([',', '"', '\n']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    };
    let mut out = String::from("id,path,label,kind\n");
    for s in sources {
        let path = format!("{prefix}{}", s.path.to_string_lossy().replace('\\', "/"));
        out += &format!(
            "{},{},{},{}\n",
            field(&s.id),
            field(&path),
            field(&s.label),
            s.kind
        );
    }
    out
}

fn write_png(image: &RgbaImage, path: &Path) -> Result<(), SourceError> {
    let bytes = encode_png(image).map_err(|cause| SourceError::Encode {
        path: path.to_path_buf(),
        cause,
    })?;
    write_bytes_atomic(&bytes, path)
}

fn write_jpeg(image: &RgbaImage, path: &Path) -> Result<(), SourceError> {
    let rgb = image::DynamicImage::ImageRgba8(image.clone()).to_rgb8();
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 90)
        .encode_image(&rgb)
        .map_err(|e| SourceError::Encode {
            path: path.to_path_buf(),
            cause: e.to_string(),
        })?;
    write_bytes_atomic(&bytes, path)
}

fn write_webp(image: &RgbaImage, path: &Path) -> Result<(), SourceError> {
    let mut bytes = Vec::new();
    image::codecs::webp::WebPEncoder::new_lossless(&mut bytes)
        .encode(
            image.as_raw(),
            image.width(),
            image.height(),
            image::ExtendedColorType::Rgba8,
        )
        .map_err(|e| SourceError::Encode {
            path: path.to_path_buf(),
            cause: e.to_string(),
        })?;
    write_bytes_atomic(&bytes, path)
}

// ---------------------------------------------------------------------------------------------------------------
// Geometry. Every generator leaves triangles counter-clockwise seen from the side their normals point to.

/// Reorders each triangle so its face normal agrees with its vertex normals.
fn orient(g: &mut Geometry) {
    for t in g.indices.chunks_exact_mut(3) {
        let p = |i: u32| g.positions[i as usize];
        let (a, b, c) = (p(t[0]), p(t[1]), p(t[2]));
        let e1 = [b[0] - a[0], b[1] - a[1], b[2] - a[2]];
        let e2 = [c[0] - a[0], c[1] - a[1], c[2] - a[2]];
        let face = [
            e1[1] * e2[2] - e1[2] * e2[1],
            e1[2] * e2[0] - e1[0] * e2[2],
            e1[0] * e2[1] - e1[1] * e2[0],
        ];
        let n: f32 = t
            .iter()
            .map(|&i| {
                let n = g.normals[i as usize];
                n[0] * face[0] + n[1] * face[1] + n[2] * face[2]
            })
            .sum();
        if n < 0.0 {
            t.swap(1, 2);
        }
    }
}

/// Twice the squared area of a triangle, up to a constant: zero for a degenerate one.
fn area2(positions: &[[f32; 3]], t: [u32; 3]) -> f32 {
    let p = |i: u32| positions[i as usize];
    let (a, b, c) = (p(t[0]), p(t[1]), p(t[2]));
    let e1 = [b[0] - a[0], b[1] - a[1], b[2] - a[2]];
    let e2 = [c[0] - a[0], c[1] - a[1], c[2] - a[2]];
    let x = [
        e1[1] * e2[2] - e1[2] * e2[1],
        e1[2] * e2[0] - e1[0] * e2[2],
        e1[0] * e2[1] - e1[1] * e2[0],
    ];
    x[0] * x[0] + x[1] * x[1] + x[2] * x[2]
}

/// A grid of `(cols + 1) × (rows + 1)` vertices from `f(s, t)` with s, t in [0, 1], as two triangles per cell.
fn grid(cols: u32, rows: u32, f: impl Fn(f32, f32) -> ([f32; 3], [f32; 3], [f32; 2])) -> Geometry {
    let mut g = Geometry::default();
    for j in 0..=rows {
        for i in 0..=cols {
            let (p, n, uv) = f(i as f32 / cols as f32, j as f32 / rows as f32);
            g.positions.push(p);
            g.normals.push(n);
            g.uvs.push(uv);
        }
    }
    for j in 0..rows {
        for i in 0..cols {
            let v = |i: u32, j: u32| j * (cols + 1) + i;
            for t in [
                [v(i, j), v(i + 1, j), v(i + 1, j + 1)],
                [v(i, j), v(i + 1, j + 1), v(i, j + 1)],
            ] {
                // Cells at a pole or a disc's centre collapse to one triangle.
                if area2(&g.positions, t) > 1e-12 {
                    g.indices.extend(t);
                }
            }
        }
    }
    orient(&mut g);
    g
}

/// A disc in the plane y = `y` facing `up`, its UVs in the circle at `center` with radius `r_uv`.
fn disc(radius: f32, y: f32, up: bool, center: [f32; 2], r_uv: f32) -> Geometry {
    let ny = if up { 1.0 } else { -1.0 };
    grid(48, 1, |s, t| {
        let a = s * TAU;
        let r = radius * t;
        let uv = [
            center[0] + r_uv * t * a.cos(),
            center[1] + r_uv * t * a.sin(),
        ];
        ([r * a.cos(), y, r * a.sin()], [0.0, ny, 0.0], uv)
    })
}

/// The side of a cylinder around +y, UV u around, v from `v_top` (at the top) to `v_bottom`.
fn cylinder_side(radius: f32, height: f32, v_top: f32, v_bottom: f32) -> Geometry {
    grid(48, 4, |s, t| {
        let a = s * TAU;
        let n = [a.cos(), 0.0, a.sin()];
        let uv = [s, v_top + (v_bottom - v_top) * t];
        ([radius * n[0], height * (1.0 - t), radius * n[2]], n, uv)
    })
}

fn uv_sphere(radius: f32) -> Geometry {
    grid(48, 24, |s, t| {
        let (lon, lat) = (s * TAU, t * PI);
        let n = [lat.sin() * lon.cos(), lat.cos(), lat.sin() * lon.sin()];
        ([radius * n[0], radius * n[1], radius * n[2]], n, [s, t])
    })
}

/// A half torus in the xy plane around `center`, bulging towards +x: a mug handle.
fn handle(center: [f32; 3], major: f32, minor: f32) -> Geometry {
    grid(24, 12, |s, t| {
        let theta = (s - 0.5) * PI * 1.1;
        let phi = t * TAU;
        let ring = [theta.cos(), theta.sin(), 0.0];
        let n = [phi.cos() * ring[0], phi.cos() * ring[1], phi.sin()];
        let p = [
            center[0] + major * ring[0] + minor * n[0],
            center[1] + major * ring[1] + minor * n[1],
            center[2] + minor * n[2],
        ];
        (p, n, [s, t])
    })
}

/// One face of a box: the axis it faces, the sign, and the atlas cell its UVs fill (scaled by 2 for the transform).
fn box_face(half: f32, axis: usize, sign: f32, cell: (u32, u32)) -> Geometry {
    let (u_axis, v_axis) = match axis {
        0 => (2, 1),
        1 => (0, 2),
        _ => (0, 1),
    };
    let mut n = [0.0; 3];
    n[axis] = sign;
    let mut tangent = [0.0; 4];
    tangent[u_axis] = 1.0;
    // The bitangent points to decreasing v (up in the image), which is +v_axis here.
    let b = [
        n[1] * tangent[2] - n[2] * tangent[1],
        n[2] * tangent[0] - n[0] * tangent[2],
        n[0] * tangent[1] - n[1] * tangent[0],
    ];
    tangent[3] = if b[v_axis] >= 0.0 { 1.0 } else { -1.0 };
    let mut g = grid(1, 1, |s, t| {
        let mut p = [0.0; 3];
        p[axis] = sign * half;
        p[u_axis] = (s - 0.5) * 2.0 * half;
        p[v_axis] = (0.5 - t) * 2.0 * half;
        // The mesh's UVs span [0, 2]; the material's KHR_texture_transform scales them by ½ into the atlas.
        let margin = 0.02;
        let u = (cell.0 as f32 + margin + s * (1.0 - 2.0 * margin)) / 3.0;
        let v = (cell.1 as f32 + margin + t * (1.0 - 2.0 * margin)) / 2.0;
        (p, n, [u * 2.0, v * 2.0])
    });
    g.tangents = Some(vec![tangent; g.positions.len()]);
    g
}

// ---------------------------------------------------------------------------------------------------------------
// Assets.

fn write_mug(path: &Path) -> Result<(), SourceError> {
    let mut b = Builder::default();
    // Side in v ∈ [0, 0.7]; the bottom's disc in the free band below.
    let mut body = cylinder_side(0.4, 1.0, 0.0, 0.7);
    body.append(&disc(0.4, 0.0, false, [0.5, 0.85], 0.14));
    let glaze = b.texture("glaze", &glaze_texture(), None)?;
    b.materials.push(json!({
        "name": "glaze",
        "doubleSided": true,
        "pbrMetallicRoughness": {"baseColorTexture": {"index": glaze}, "metallicFactor": 0.0, "roughnessFactor": 0.35}
    }));
    b.materials.push(json!({
        "name": "handle",
        "pbrMetallicRoughness": {"baseColorFactor": [0.55, 0.12, 0.08, 1.0], "metallicFactor": 0.0, "roughnessFactor": 0.5}
    }));
    let body = b.primitive(&body, 0);
    let handle = b.primitive(&handle([0.4, 0.5, 0.0], 0.25, 0.05), 1);
    b.meshes
        .push(json!({"name": "mug", "primitives": [body, handle]}));
    b.nodes
        .push(json!({"name": "mug", "mesh": 0, "translation": [0.0, -0.5, 0.0]}));
    b.write(path, Layout::Glb)
}

fn write_crate(path: &Path) -> Result<(), SourceError> {
    let mut b = Builder::default();
    let mut sides = Geometry {
        tangents: Some(Vec::new()),
        ..Geometry::default()
    };
    for (axis, sign, cell) in [
        (0, 1.0, (0, 0)),
        (0, -1.0, (1, 0)),
        (2, 1.0, (2, 0)),
        (2, -1.0, (0, 1)),
    ] {
        sides.append(&box_face(0.5, axis, sign, cell));
    }
    let mut lids = box_face(0.5, 1, 1.0, (1, 1));
    lids.append(&box_face(0.5, 1, -1.0, (2, 1)));
    b.samplers
        .push(json!({"magFilter": 9729, "minFilter": 9987, "wrapS": 33071, "wrapT": 33071}));
    let planks = b.texture("planks", &planks_texture(), Some(0))?;
    let grooves = b.texture("grooves", &grooves_normal_map(), None)?;
    b.uses_extension("KHR_texture_transform");
    let half = json!({"KHR_texture_transform": {"scale": [0.5, 0.5]}});
    for (name, roughness) in [("crate sides", 0.9), ("crate lid", 0.6)] {
        b.materials.push(json!({
            "name": name,
            "pbrMetallicRoughness": {
                "baseColorTexture": {"index": planks, "extensions": half},
                "metallicFactor": 0.0,
                "roughnessFactor": roughness
            },
            "normalTexture": {"index": grooves, "scale": 0.8, "extensions": half},
            "extras": {"demo": name}
        }));
    }
    let sides = b.primitive(&sides, 0);
    let lids = b.primitive(&lids, 1);
    b.meshes
        .push(json!({"name": "crate", "primitives": [sides, lids]}));
    b.nodes.push(
        json!({"name": "crate", "mesh": 0, "rotation": [0.0, 0.382_683_43, 0.0, 0.923_879_5]}),
    );
    b.write(path, Layout::Glb)
}

fn write_ball(path: &Path) -> Result<(), SourceError> {
    let mut b = Builder::default();
    let mut sphere = uv_sphere(0.5);
    // The base color reads a second UV set; TEXCOORD_0 is a tiled variant of it for the other maps.
    sphere.uvs1 = Some(sphere.uvs.clone());
    sphere
        .uvs
        .iter_mut()
        .for_each(|uv| *uv = [uv[0] * 4.0, uv[1] * 2.0]);
    let gores = b.texture("gores", &ball_texture(), None)?;
    b.materials.push(json!({
        "name": "vinyl",
        "pbrMetallicRoughness": {"baseColorTexture": {"index": gores, "texCoord": 1}, "metallicFactor": 0.0, "roughnessFactor": 0.3}
    }));
    let prim = b.primitive(&sphere, 0);
    b.meshes.push(json!({"name": "ball", "primitives": [prim]}));
    b.nodes.push(json!({"name": "ball", "mesh": 0}));
    b.write(path, Layout::DataUris)
}

fn write_can(path: &Path) -> Result<(), SourceError> {
    let mut b = Builder::default();
    // Side in v ∈ [0, 0.6]; top and bottom discs side by side below.
    let mut can = cylinder_side(0.3, 1.0, 0.0, 0.6);
    can.append(&disc(0.3, 1.0, true, [0.25, 0.8], 0.18));
    can.append(&disc(0.3, 0.0, false, [0.75, 0.8], 0.18));
    let label = b.texture("label", &can_texture(), None)?;
    b.materials.push(json!({
        "name": "aluminium",
        "pbrMetallicRoughness": {"baseColorTexture": {"index": label}, "metallicFactor": 0.8, "roughnessFactor": 0.3}
    }));
    let prim = b.primitive(&can, 0);
    b.meshes.push(json!({"name": "can", "primitives": [prim]}));
    b.nodes
        .push(json!({"name": "root", "children": [1], "scale": [1.2, 1.2, 1.2]}));
    b.nodes
        .push(json!({"name": "can", "mesh": 0, "translation": [0.0, -0.5, 0.0]}));
    b.write(path, Layout::External)
}

// ---------------------------------------------------------------------------------------------------------------
// Textures and images: smooth procedural patterns (they compress well), 8-bit sRGB.

fn paint(w: u32, h: u32, f: impl Fn(f32, f32) -> [f32; 3]) -> RgbaImage {
    RgbaImage::from_fn(w, h, |x, y| {
        let c = f((x as f32 + 0.5) / w as f32, (y as f32 + 0.5) / h as f32);
        let q = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
        Rgba([q(c[0]), q(c[1]), q(c[2]), 255])
    })
}

fn mix(a: [f32; 3], b: [f32; 3], t: f32) -> [f32; 3] {
    let t = t.clamp(0.0, 1.0);
    [
        a[0] + (b[0] - a[0]) * t,
        a[1] + (b[1] - a[1]) * t,
        a[2] + (b[2] - a[2]) * t,
    ]
}

fn smoothstep(e0: f32, e1: f32, x: f32) -> f32 {
    let t = ((x - e0) / (e1 - e0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

fn glaze_texture() -> RgbaImage {
    paint(256, 256, |u, v| {
        let base = mix([0.93, 0.9, 0.82], [0.75, 0.82, 0.9], v);
        let stripe = smoothstep(0.45, 0.5, (v * 7.0 * PI).sin().abs());
        let dots = smoothstep(
            0.1,
            0.07,
            ((u * 12.0).fract() - 0.5).hypot((v * 12.0).fract() - 0.5),
        );
        mix(
            mix(base, [0.2, 0.35, 0.6], stripe * 0.7),
            [0.85, 0.4, 0.2],
            dots,
        )
    })
}

fn planks_texture() -> RgbaImage {
    paint(256, 256, |u, v| {
        let plank = (v * 12.0).floor();
        let grain =
            (u * 40.0 + (v * 60.0 + plank * 1.7).sin() * 2.0 + plank * 3.1).sin() * 0.5 + 0.5;
        let wood = mix(
            [0.55, 0.38, 0.2],
            [0.7, 0.5, 0.28],
            grain * 0.6 + (plank * 0.37).fract() * 0.4,
        );
        let gap = smoothstep(0.06, 0.0, (v * 12.0).fract().min(1.0 - (v * 12.0).fract()));
        mix(wood, [0.2, 0.12, 0.06], gap)
    })
}

/// A tangent-space normal map with grooves between the planks.
fn grooves_normal_map() -> RgbaImage {
    paint(64, 64, |_, v| {
        let f = (v * 12.0).fract();
        let slope = if f < 0.08 {
            -0.6
        } else if f > 0.92 {
            0.6
        } else {
            0.0
        };
        let len = (1.0f32 + slope * slope).sqrt();
        [0.5, 0.5 + 0.5 * slope / len, 0.5 + 0.5 / len]
    })
}

fn ball_texture() -> RgbaImage {
    let colors = [
        [0.9, 0.15, 0.15],
        [0.97, 0.97, 0.95],
        [0.15, 0.35, 0.85],
        [0.97, 0.97, 0.95],
        [0.98, 0.8, 0.1],
        [0.97, 0.97, 0.95],
    ];
    paint(256, 128, |u, v| {
        let gore = ((u * 6.0).floor() as usize).min(5);
        let pole = smoothstep(0.12, 0.1, v.min(1.0 - v));
        mix(colors[gore], [0.97, 0.97, 0.95], pole)
    })
}

fn can_texture() -> RgbaImage {
    paint(256, 256, |u, v| {
        if v > 0.6 {
            // The lids: brushed metal.
            return mix(
                [0.7, 0.72, 0.75],
                [0.85, 0.86, 0.88],
                ((u * 80.0).sin() * 0.5 + 0.5) * 0.5,
            );
        }
        let band = smoothstep(0.2, 0.22, v) * smoothstep(0.42, 0.4, v);
        let wave = smoothstep(0.02, 0.0, (v - 0.31 - 0.05 * (u * TAU * 3.0).sin()).abs());
        mix(
            mix([0.75, 0.05, 0.1], [0.98, 0.95, 0.9], band),
            [0.1, 0.1, 0.1],
            wave,
        )
    })
}

fn sunset() -> RgbaImage {
    paint(128, 96, |u, v| {
        let sky = mix([0.98, 0.55, 0.2], [0.25, 0.15, 0.45], 1.0 - v * 1.4);
        let sun = smoothstep(0.16, 0.14, (u - 0.5).hypot((v - 0.62) * 0.75));
        let sea = smoothstep(0.69, 0.7, v);
        mix(mix(sky, [1.0, 0.9, 0.5], sun), [0.1, 0.15, 0.3], sea)
    })
}

/// White above the horizon of [`sunset`], with the sun kept.
fn sunset_sky() -> RgbaImage {
    paint(128, 96, |u, v| {
        let sun = smoothstep(0.16, 0.14, (u - 0.5).hypot((v - 0.62) * 0.75));
        let sky = (1.0 - smoothstep(0.69, 0.7, v)) * (1.0 - sun);
        [sky; 3]
    })
}

fn chessboard() -> RgbaImage {
    paint(96, 96, |u, v| {
        let dark = ((u * 8.0).floor() as i32 + (v * 8.0).floor() as i32) % 2 == 1;
        if dark {
            [0.35, 0.22, 0.12]
        } else {
            [0.92, 0.85, 0.7]
        }
    })
}

fn flower() -> RgbaImage {
    paint(64, 64, |u, v| {
        let (x, y) = (u - 0.5, v - 0.5);
        let (r, a) = (x.hypot(y), y.atan2(x));
        let petal = smoothstep(0.02, 0.0, r - (0.28 + 0.14 * (a * 5.0).cos()));
        let center = smoothstep(0.1, 0.08, r);
        mix(
            mix([0.45, 0.7, 0.35], [0.9, 0.3, 0.6], petal),
            [0.98, 0.85, 0.2],
            center,
        )
    })
}

fn apple() -> RgbaImage {
    paint(64, 64, |u, v| {
        let body = smoothstep(0.33, 0.31, (u - 0.5).hypot((v - 0.56) * 1.1));
        let stem = smoothstep(0.03, 0.02, (u - 0.52).abs())
            * smoothstep(0.12, 0.14, v)
            * smoothstep(0.3, 0.28, v);
        let shine = smoothstep(0.07, 0.05, (u - 0.38).hypot(v - 0.44));
        let red = mix([0.8, 0.1, 0.1], [1.0, 0.7, 0.7], shine);
        mix(mix([0.95, 0.95, 0.92], red, body), [0.35, 0.22, 0.1], stem)
    })
}

/// White outside the body and stem of [`apple`].
fn apple_background() -> RgbaImage {
    paint(64, 64, |u, v| {
        let body = smoothstep(0.33, 0.31, (u - 0.5).hypot((v - 0.56) * 1.1));
        let stem = smoothstep(0.03, 0.02, (u - 0.52).abs())
            * smoothstep(0.12, 0.14, v)
            * smoothstep(0.3, 0.28, v);
        [1.0 - body.max(stem); 3]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_normals_are_unit_and_agree_with_winding() {
        for g in [
            uv_sphere(0.5),
            handle([0.0; 3], 0.25, 0.05),
            cylinder_side(0.3, 1.0, 0.0, 0.6),
        ] {
            for n in &g.normals {
                assert!(((n[0] * n[0] + n[1] * n[1] + n[2] * n[2]).sqrt() - 1.0).abs() < 1e-5);
            }
            // Outward normals: the vertex normal points away from the shape's centre line for the sphere/cylinder.
            assert!(!g.indices.is_empty());
        }
        let sphere = uv_sphere(1.0);
        for (p, n) in sphere.positions.iter().zip(&sphere.normals) {
            assert!(
                (p[0] - n[0]).abs() < 1e-5
                    && (p[1] - n[1]).abs() < 1e-5
                    && (p[2] - n[2]).abs() < 1e-5
            );
        }
    }
}
