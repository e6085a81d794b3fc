//! Rasterizer, view schedule, mesh checks, depth images and the depth estimator against analytic answers.

mod common;

use common::mesh::{cross, dot, front_camera, normalize, sub, Mesh};
use image::{GrayImage, ImageBuffer, Luma, Rgb, RgbImage};
use texaug_stages::depth::{
    load_depth_image, rasterize, rasterize_with, view_schedule, Camera, DepthError, MeshView,
    RasterOptions, NO_TRIANGLE,
};

// ---------------------------------------------------------------- rasterizer

/// A unit quad facing the camera: depth is the distance, uv linear in the world point, at every
/// pixel center; the two triangles cover exactly the pixel centers inside the square (no crack
/// along the shared diagonal).
#[test]
fn facing_quad_has_analytic_depth_uv_and_coverage() {
    let m = Mesh::unit_quad();
    let cam = front_camera(3.0, 67);
    let r = rasterize(&m.view(), &cam);
    let w = cam.width() as usize;
    let mut inside = 0;
    for (i, &t) in r.triangle().iter().enumerate() {
        let (x, y) = ((i % w) as f32 + 0.5, (i / w) as f32 + 0.5);
        let p = cam.unproject(x, y, 3.0);
        let is_inside = p[0].abs() < 1.0 && p[1].abs() < 1.0;
        assert_eq!(
            t != NO_TRIANGLE,
            is_inside,
            "coverage at pixel {x},{y} (world {p:?})"
        );
        if !is_inside {
            assert!(r.depth()[i].is_infinite());
            continue;
        }
        inside += 1;
        assert!(
            (r.depth()[i] - 3.0).abs() < 1e-4,
            "depth {} at {x},{y}",
            r.depth()[i]
        );
        let uv = r.uv()[i];
        let want = [(p[0] + 1.0) / 2.0, (1.0 - p[1]) / 2.0];
        assert!(
            (uv[0] - want[0]).abs() < 1e-3 && (uv[1] - want[1]).abs() < 1e-3,
            "uv {uv:?} vs {want:?}"
        );
        let to_eye = sub(cam.eye(), p);
        let cos = to_eye[2] / dot(to_eye, to_eye).sqrt();
        assert!((r.cos()[i] - cos).abs() < 1e-4);
    }
    assert!(inside > 500, "the quad covers {inside} pixels");
    assert_eq!(r.covered_pixels(), inside);
}

/// A quad tilted 50° about Y: depth and uv must be perspective-correct (affine interpolation
/// would be off by several percent in the middle).
#[test]
fn tilted_quad_is_perspective_correct() {
    let (s, c) = 50f32.to_radians().sin_cos();
    let (r_axis, t_axis) = ([c, 0.0, -s], [0.0, 1.0, 0.0]);
    let n = cross(r_axis, t_axis);
    let mut m = Mesh::default();
    m.add_quad([0.0; 3], r_axis, t_axis, [0.0, 0.0], [1.0, 1.0], 0);
    let cam = front_camera(2.5, 96);
    let r = rasterize(&m.view(), &cam);
    let w = cam.width() as usize;
    let mut checked = 0;
    for (i, &t) in r.triangle().iter().enumerate() {
        if t == NO_TRIANGLE {
            continue;
        }
        let (x, y) = ((i % w) as f32 + 0.5, (i / w) as f32 + 0.5);
        // Ray through the pixel center: points eye + depth · d with unit forward component.
        let d = sub(cam.unproject(x, y, 1.0), cam.eye());
        let depth = dot(n, sub([0.0; 3], cam.eye())) / dot(n, d);
        let p = cam.unproject(x, y, depth);
        let (lx, ly) = (dot(p, r_axis), dot(p, t_axis));
        if lx.abs() > 0.97 || ly.abs() > 0.97 {
            continue; // pixels on the border may belong to either side by snapping
        }
        let want = [(lx + 1.0) / 2.0, (1.0 - ly) / 2.0];
        assert!(
            (r.depth()[i] - depth).abs() / depth < 1e-3,
            "depth {} vs {depth}",
            r.depth()[i]
        );
        let uv = r.uv()[i];
        assert!(
            (uv[0] - want[0]).abs() < 3e-3 && (uv[1] - want[1]).abs() < 3e-3,
            "uv {uv:?} vs {want:?} at {x},{y}"
        );
        checked += 1;
    }
    assert!(checked > 1000, "checked {checked} pixels");
}

/// glTF fronts are counter-clockwise: seen from behind, or with reversed winding, a quad is culled;
/// with culling off it is drawn.
#[test]
fn back_faces_are_culled_with_gltf_winding() {
    let m = Mesh::unit_quad();
    let behind = Camera::look_at(
        [0.0, 0.0, -3.0],
        [0.0; 3],
        [0.0, 1.0, 0.0],
        50.0,
        64,
        64,
        0.1,
        100.0,
    );
    assert!(rasterize(&m.view(), &front_camera(3.0, 64)).covered_pixels() > 0);
    assert_eq!(rasterize(&m.view(), &behind).covered_pixels(), 0);
    let no_cull = RasterOptions {
        cull_back_faces: false,
    };
    assert!(rasterize_with(&m.view(), &behind, &no_cull).covered_pixels() > 0);

    let mut reversed = m.clone();
    for t in &mut reversed.indices {
        t.swap(1, 2);
    }
    assert_eq!(
        rasterize(&reversed.view(), &front_camera(3.0, 64)).covered_pixels(),
        0
    );
}

/// The nearer of two overlapping quads wins, whatever their order; the depth image is brighter
/// where nearer and 0 on the background.
#[test]
fn depth_test_and_depth_image() {
    let mut m = Mesh::default();
    m.add_quad(
        [0.0, 0.0, -0.5],
        [1.0, 0.0, 0.0],
        [0.0, 1.0, 0.0],
        [0.0, 0.0],
        [1.0, 1.0],
        0,
    );
    m.add_quad(
        [0.3, 0.0, 0.5],
        [0.5, 0.0, 0.0],
        [0.0, 0.5, 0.0],
        [0.0, 0.0],
        [1.0, 1.0],
        0,
    );
    let cam = front_camera(3.0, 64);
    let center = |_: &texaug_stages::depth::ViewRaster| {
        let (x, y, _) = cam.project([0.3, 0.0, 0.5]);
        (y as usize) * 64 + x as usize
    };
    let r = rasterize(&m.view(), &cam);
    let i = center(&r);
    assert!((r.depth()[i] - 2.5).abs() < 1e-3);
    assert!(r.triangle()[i] >= 2);
    let mut swapped = m.clone();
    swapped.indices.reverse();
    let r2 = rasterize(&swapped.view(), &cam);
    assert!((r2.depth()[center(&r2)] - 2.5).abs() < 1e-3);

    let img = r.depth_image();
    let (far_x, far_y, _) = cam.project([-0.6, 0.0, -0.5]);
    assert_eq!(img.get_pixel(0, 0)[0], 0, "background");
    assert_eq!(
        img.get_pixel((i % 64) as u32, (i / 64) as u32)[0],
        65535,
        "nearest"
    );
    let far = img.get_pixel(far_x as u32, far_y as u32)[0];
    assert!(far > 0 && far < 65535, "far surface {far}");
}

// ---------------------------------------------------------------- views

#[test]
fn view_schedule_names_and_framing() {
    let (lo, hi) = ([-1.0, -0.5, -2.0], [3.0, 1.5, 0.0]);
    let views = view_schedule(lo, hi, 8, true, 256);
    let names: Vec<&str> = views.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "front",
            "front-right",
            "right",
            "back-right",
            "back",
            "back-left",
            "left",
            "front-left",
            "top",
            "bottom"
        ]
    );
    let center = [1.0, 0.5, -1.0];
    let eye_dir = |k: usize| normalize(sub(views[k].camera.eye(), center));
    assert!(
        eye_dir(0)[2] > 0.9 && eye_dir(0)[0].abs() < 1e-5,
        "front camera on +Z"
    );
    assert!(eye_dir(2)[0] > 0.9, "right camera on +X");
    assert!(
        eye_dir(8)[1] > 0.999 && eye_dir(9)[1] < -0.999,
        "top and bottom"
    );
    for v in &views {
        for c in 0..8 {
            let p = [
                if c & 1 == 0 { lo[0] } else { hi[0] },
                if c & 2 == 0 { lo[1] } else { hi[1] },
                if c & 4 == 0 { lo[2] } else { hi[2] },
            ];
            let (x, y, z) = v.camera.project(p);
            assert!(
                z > v.camera.near() && z < v.camera.far(),
                "{}: depth {z}",
                v.name
            );
            assert!(
                (0.0..=256.0).contains(&x) && (0.0..=256.0).contains(&y),
                "{}: corner at {x},{y}",
                v.name
            );
        }
    }
}

#[test]
fn bad_mesh_arrays_are_errors() {
    let p = [[0.0f32; 3]; 3];
    assert!(matches!(
        MeshView::new(&p, &[], &[], &[[0, 1, 3]], &[]),
        Err(DepthError::IndexOutOfRange { .. })
    ));
    assert!(matches!(
        MeshView::new(&p, &[[0.0; 3]], &[], &[[0, 1, 2]], &[]),
        Err(DepthError::BadMesh { .. })
    ));
    assert!(matches!(
        MeshView::new(&p, &[], &[], &[[0, 1, 2]], &[0, 0]),
        Err(DepthError::BadMesh { .. })
    ));
}

// ---------------------------------------------------------------- depth images

#[test]
fn png_depth_scales_to_unit_range() {
    let dir = tempfile::tempdir().expect("temp dir");
    let p8 = dir.path().join("d8.png");
    GrayImage::from_raw(3, 1, vec![0, 51, 255])
        .expect("size")
        .save(&p8)
        .expect("write png");
    let d = load_depth_image(&p8).expect("8-bit png");
    assert_eq!((d.width(), d.height()), (3, 1));
    assert_eq!(d.data(), &[0.0, 0.2, 1.0]);

    let p16 = dir.path().join("d16.png");
    ImageBuffer::<Luma<u16>, _>::from_raw(2, 2, vec![0u16, 13107, 65535, 1])
        .expect("size")
        .save(&p16)
        .expect("write png");
    let d = load_depth_image(&p16).expect("16-bit png");
    assert_eq!(d.data(), &[0.0, 0.2, 1.0, 1.0 / 65535.0]);
    assert_eq!(d.get(1, 1), Some(1.0 / 65535.0));

    let color = dir.path().join("color.png");
    RgbImage::from_pixel(2, 2, Rgb([1, 2, 3]))
        .save(&color)
        .expect("write png");
    assert!(matches!(
        load_depth_image(&color),
        Err(DepthError::Unsupported { .. })
    ));
    assert!(matches!(
        load_depth_image(dir.path().join("missing.png")),
        Err(DepthError::Read { .. })
    ));
}

/// A minimal one-strip, uncompressed, one-channel 32-bit float TIFF, written by hand.
fn float_tiff(width: u32, height: u32, values: &[f32], little: bool) -> Vec<u8> {
    let u16b = |v: u16| {
        if little {
            v.to_le_bytes()
        } else {
            v.to_be_bytes()
        }
    };
    let u32b = |v: u32| {
        if little {
            v.to_le_bytes()
        } else {
            v.to_be_bytes()
        }
    };
    let mut out = Vec::new();
    out.extend_from_slice(if little { b"II" } else { b"MM" });
    out.extend_from_slice(&u16b(42));
    let data_offset = 8u32;
    let data_len = (values.len() * 4) as u32;
    out.extend_from_slice(&u32b(data_offset + data_len));
    for v in values {
        out.extend_from_slice(&if little {
            v.to_le_bytes()
        } else {
            v.to_be_bytes()
        });
    }
    // (tag, type, value) with SHORT = 3, LONG = 4; SHORT values sit left-justified in the field.
    let entries: [(u16, u16, u32); 10] = [
        (256, 4, width),
        (257, 4, height),
        (258, 3, 32),
        (259, 3, 1),
        (262, 3, 1),
        (273, 4, data_offset),
        (277, 3, 1),
        (278, 4, height),
        (279, 4, data_len),
        (339, 3, 3),
    ];
    out.extend_from_slice(&u16b(entries.len() as u16));
    for (tag, typ, value) in entries {
        out.extend_from_slice(&u16b(tag));
        out.extend_from_slice(&u16b(typ));
        out.extend_from_slice(&u32b(1));
        if typ == 3 {
            out.extend_from_slice(&u16b(value as u16));
            out.extend_from_slice(&[0, 0]);
        } else {
            out.extend_from_slice(&u32b(value));
        }
    }
    out.extend_from_slice(&u32b(0));
    out
}

#[test]
fn float_tiff_depth_is_read_as_stored() {
    let dir = tempfile::tempdir().expect("temp dir");
    let values = [0.5f32, 1.25, -3.0, 1000.0, 7.5, f32::NAN];
    for little in [true, false] {
        let path = dir.path().join(format!("d{little}.tif"));
        std::fs::write(&path, float_tiff(3, 2, &values, little)).expect("write tiff");
        let d = load_depth_image(&path).expect("float tiff");
        assert_eq!((d.width(), d.height()), (3, 2));
        assert_eq!(
            d.data(),
            &[0.5, 1.25, -3.0, 1000.0, 7.5, 0.0],
            "little endian: {little}"
        );
    }
    // Float RGB with equal channels, through the `image` decoder.
    let path = dir.path().join("rgb.tif");
    let rgb = image::Rgb32FImage::from_fn(2, 1, |x, _| Rgb([x as f32 + 0.25; 3]));
    image::DynamicImage::ImageRgb32F(rgb)
        .save(&path)
        .expect("write tiff");
    assert_eq!(
        load_depth_image(&path).expect("rgb float tiff").data(),
        &[0.25, 1.25]
    );
}

// ---------------------------------------------------------------- estimator

/// A traced stand-in for a depth network: the channel mean of its normalized input, `[1, H, W]`.
fn channel_mean_module(path: &std::path::Path) {
    let example = tch::Tensor::zeros([1, 3, 64, 64], (tch::Kind::Float, tch::Device::Cpu));
    let module = tch::CModule::create_by_tracing("ChannelMean", "forward", &[example], &mut |x| {
        vec![x[0].mean_dim([1i64].as_slice(), false, tch::Kind::Float)]
    })
    .expect("trace");
    module.save(path).expect("save TorchScript");
}

#[test]
fn estimator_normalizes_input_and_resizes_output() {
    use texaug_stages::depth::{DepthEstimator, DepthNormalization};
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("mean.pt");
    channel_mean_module(&path);

    let image = RgbImage::from_pixel(40, 30, Rgb([255, 0, 128]));
    let est = DepthEstimator::load(&path, tch::Device::Cpu).expect("load");
    let d = est.estimate(&image).expect("estimate");
    assert_eq!((d.width(), d.height()), (40, 30));
    let dpt = ((1.0 - 0.5) / 0.5 + (0.0 - 0.5) / 0.5 + (128.0 / 255.0 - 0.5) / 0.5) / 3.0;
    assert!(
        d.data().iter().all(|v| (v - dpt).abs() < 1e-4),
        "{:?} vs {dpt}",
        d.get(0, 0)
    );

    let est = est.with_normalization(DepthNormalization::ImageNet);
    let d = est.estimate(&image).expect("estimate");
    let imagenet =
        ((1.0 - 0.485) / 0.229 + (0.0 - 0.456) / 0.224 + (128.0 / 255.0 - 0.406) / 0.225) / 3.0;
    assert!(
        d.data().iter().all(|v| (v - imagenet).abs() < 1e-4),
        "{:?} vs {imagenet}",
        d.get(0, 0)
    );

    // A left-to-right ramp stays a ramp through both resizes.
    let ramp = RgbImage::from_fn(64, 8, |x, _| Rgb([(x * 4) as u8; 3]));
    let d = est
        .with_input_size(96, 96)
        .estimate(&ramp)
        .expect("estimate");
    let row: Vec<f32> = (0..64).map(|x| d.get(x, 4).unwrap_or(f32::NAN)).collect();
    assert!(
        row.windows(2).filter(|w| w[1] > w[0]).count() > 55,
        "{row:?}"
    );

    let junk = dir.path().join("junk.pt");
    std::fs::write(&junk, b"not a model").expect("write");
    assert!(matches!(
        DepthEstimator::load(&junk, tch::Device::Cpu),
        Err(DepthError::Estimator { .. })
    ));
}

#[test]
fn depth_images_over_the_pixel_cap_are_refused_before_decoding() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut limits = texaug_stages::source::SourceLimits::default();
    limits.max_image_pixels = 5;
    // A 3×2 float TIFF (6 pixels) and a 3×2 16-bit PNG: over a cap of 5, under the default.
    let tiff = dir.path().join("d.tif");
    std::fs::write(&tiff, float_tiff(3, 2, &[1.0; 6], true)).expect("write tiff");
    let png = dir.path().join("d16.png");
    ImageBuffer::<Luma<u16>, _>::from_raw(3, 2, vec![7u16; 6])
        .expect("size")
        .save(&png)
        .expect("write png");
    for path in [&tiff, &png] {
        assert!(load_depth_image(path).is_ok(), "{}", path.display());
        let err = texaug_stages::depth::load_depth_image_with(path, &limits)
            .expect_err("over the pixel cap");
        let text = err.to_string();
        assert!(
            matches!(err, DepthError::OverLimit { .. })
                && text.contains("3×2")
                && text.contains("max_image_pixels")
                && text.contains(&*path.to_string_lossy()),
            "{text}"
        );
    }
    // A PNG header claiming 100000 × 100000 with no pixel data behind it: refused by the cap, not by the decoder.
    let mut bomb = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&[16, 0, 0, 0, 0]);
    bomb.extend_from_slice(&13u32.to_be_bytes());
    bomb.extend_from_slice(&ihdr);
    bomb.extend_from_slice(&crc32(&ihdr).to_be_bytes());
    for kind in [b"IDAT", b"IEND"] {
        bomb.extend_from_slice(&0u32.to_be_bytes());
        bomb.extend_from_slice(kind);
        bomb.extend_from_slice(&crc32(kind).to_be_bytes());
    }
    let path = dir.path().join("bomb.png");
    std::fs::write(&path, bomb).expect("write png");
    let err = load_depth_image(&path).expect_err("a bomb");
    assert!(matches!(err, DepthError::OverLimit { .. }), "{err}");
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
