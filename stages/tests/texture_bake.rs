//! Texture baking: back-projecting generated views into UV space, coverage, occlusion, seams and gutters.

mod common;

use common::mesh::{front_camera, uv_sphere, Mesh};
use image::{Rgb, RgbImage, Rgba, RgbaImage};
use texaug_stages::depth::{rasterize, view_schedule, Camera};
use texaug_stages::texture::TextureBaker;

// ---------------------------------------------------------------- baking

/// A color pattern of a few cycles per turn, periodic in u and constant at the poles (where u is
/// undefined): fine enough that resampling errors show, smooth enough for a 256² texture.
fn pattern(u: f32, v: f32) -> [f32; 3] {
    use std::f32::consts::{PI, TAU};
    let s = (PI * v).sin();
    [
        0.5 + 0.4 * s * (TAU * 6.0 * u).sin(),
        0.5 + 0.4 * (TAU * 4.0 * v).cos(),
        0.5 + 0.4 * s * (TAU * 9.0 * u + TAU * 3.0 * v).cos(),
    ]
}

fn pattern_texture(size: u32) -> RgbaImage {
    RgbaImage::from_fn(size, size, |x, y| {
        let c = pattern(
            (x as f32 + 0.5) / size as f32,
            (y as f32 + 0.5) / size as f32,
        );
        Rgba([
            (c[0] * 255.0).round() as u8,
            (c[1] * 255.0).round() as u8,
            (c[2] * 255.0).round() as u8,
            255,
        ])
    })
}

/// Each view's "generated" image is the analytic texture rendered from that view: baking must give
/// the texture back where views saw it.
#[test]
fn baking_rendered_views_reproduces_the_texture() {
    let sphere = uv_sphere(1.0, 128, 64);
    let mesh = sphere.view();
    let truth = pattern_texture(256);
    let (lo, hi) = sphere.bounds();
    let mut baker = TextureBaker::new(&[(256, 256)]);
    for view in view_schedule(lo, hi, 8, true, 512) {
        let raster = rasterize(&mesh, &view.camera);
        let generated = raster.render_texture(&[&truth]);
        baker.add_view(&mesh, &view.camera, &raster, &generated, 4.0);
    }
    let gray = RgbaImage::from_pixel(256, 256, Rgba([128, 128, 128, 255]));
    let baked = baker.finish(&[gray], 2).remove(0);
    assert!(baked.coverage > 0.99, "coverage {}", baked.coverage);
    let (mut se, mut n) = (0.0f64, 0usize);
    for (x, y, m) in baked.seen_mask.enumerate_pixels() {
        if m[0] == 0 {
            continue;
        }
        let (a, b) = (baked.image.get_pixel(x, y), truth.get_pixel(x, y));
        for k in 0..3 {
            se += (a[k] as f64 - b[k] as f64).powi(2);
        }
        n += 3;
    }
    let psnr = 10.0 * (255.0f64.powi(2) / (se / n as f64)).log10();
    eprintln!(
        "baked vs analytic: PSNR {psnr:.1} dB, coverage {:.4}",
        baked.coverage
    );
    assert!(psnr >= 30.0, "PSNR {psnr:.1} dB over {} texels", n / 3);
}

fn bake_constant(
    m: &Mesh,
    views: &[(Camera, Rgb<u8>)],
    sizes: &[(u32, u32)],
    fallback: &[RgbaImage],
    gutter: u32,
) -> Vec<texaug_stages::texture::BakedTexture> {
    let mesh = m.view();
    let mut baker = TextureBaker::new(sizes);
    for (cam, color) in views {
        let raster = rasterize(&mesh, cam);
        let generated = RgbImage::from_pixel(cam.width(), cam.height(), *color);
        baker.add_view(&mesh, cam, &raster, &generated, 2.0);
    }
    baker.finish(fallback, gutter)
}

/// Default views (8 azimuths + top + bottom) see ≥ 99% of the used texels of convex meshes, and a
/// color every view agrees on comes back exactly.
#[test]
fn default_views_cover_convex_meshes() {
    let mut cube = Mesh::default();
    cube.add_box([0.2, -0.1, 0.3], 0.8, 0);
    for (name, m) in [("sphere", uv_sphere(1.0, 64, 32)), ("box", cube)] {
        let (lo, hi) = m.bounds();
        let views: Vec<(Camera, Rgb<u8>)> = view_schedule(lo, hi, 8, true, 256)
            .into_iter()
            .map(|v| (v.camera, Rgb([200, 40, 90])))
            .collect();
        let baked = bake_constant(&m, &views, &[(128, 128)], &[], 2).remove(0);
        assert!(
            baked.coverage >= 0.99,
            "{name}: coverage {}",
            baked.coverage
        );
        for (x, y, s) in baked.seen_mask.enumerate_pixels() {
            if s[0] > 0 {
                let p = baked.image.get_pixel(x, y);
                assert!(
                    p[0].abs_diff(200) <= 1 && p[1].abs_diff(40) <= 1 && p[2].abs_diff(90) <= 1,
                    "{name}: {p:?}"
                );
            }
        }
    }
}

/// A small box hidden behind a big one is not painted by the front view; alone, it is. The two
/// boxes use two material slots with different texture sizes.
#[test]
fn occluded_texels_are_not_painted() {
    let mut scene = Mesh::default();
    scene.add_box([0.0, 0.0, 0.0], 1.0, 0);
    scene.add_box([0.0, 0.0, -2.0], 0.2, 1);
    let cam = Camera::look_at(
        [0.0, 0.0, 6.0],
        [0.0; 3],
        [0.0, 1.0, 0.0],
        40.0,
        256,
        256,
        0.1,
        100.0,
    );
    let red = [(cam, Rgb([255, 0, 0]))];
    let fallback = [
        RgbaImage::from_pixel(128, 128, Rgba([0, 0, 255, 255])),
        RgbaImage::from_pixel(64, 64, Rgba([0, 255, 0, 255])),
    ];
    let baked = bake_constant(&scene, &red, &[(128, 128), (64, 64)], &fallback, 2);
    assert!(
        baked[0].coverage > 0.1,
        "the big box's front face is seen: {}",
        baked[0].coverage
    );
    assert_eq!(baked[1].coverage, 0.0, "the hidden box is not painted");
    assert!(baked[1]
        .image
        .pixels()
        .all(|p| *p == Rgba([0, 255, 0, 255])));

    let mut alone = Mesh::default();
    alone.add_box([0.0, 0.0, -2.0], 0.2, 1);
    let baked = bake_constant(&alone, &red, &[(128, 128), (64, 64)], &fallback, 2);
    assert!(
        baked[1].coverage > 0.1,
        "unoccluded, the small box's front face is seen"
    );
}

/// Mirrored UVs (both halves of a quad on one UV rectangle) and a gutter: everything used is seen,
/// the gutter takes the island's color out to `gutter_px` texels, beyond it the fallback stays.
#[test]
fn mirrored_uvs_and_gutter() {
    let mut m = Mesh::default();
    m.add_quad(
        [-0.5, 0.0, 0.0],
        [0.5, 0.0, 0.0],
        [0.0, 1.0, 0.0],
        [0.25, 0.25],
        [0.5, 0.75],
        0,
    );
    m.add_quad(
        [0.5, 0.0, 0.0],
        [0.5, 0.0, 0.0],
        [0.0, 1.0, 0.0],
        [0.5, 0.25],
        [0.25, 0.75],
        0,
    );
    let fallback = [RgbaImage::from_pixel(32, 32, Rgba([0, 0, 0, 255]))];
    let baked = bake_constant(
        &m,
        &[(front_camera(3.0, 128), Rgb([10, 220, 30]))],
        &[(32, 32)],
        &fallback,
        2,
    )
    .remove(0);
    assert_eq!(baked.coverage, 1.0);
    let used = |x: i64, y: i64| {
        x >= 0 && y >= 0 && x < 32 && y < 32 && baked.used_mask.get_pixel(x as u32, y as u32)[0] > 0
    };
    let mut gutter = 0;
    for (x, y, p) in baked.image.enumerate_pixels() {
        let (x, y) = (x as i64, y as i64);
        let dist = (0..=3)
            .find(|&d| (-d..=d).any(|dy| (-d..=d).any(|dx| used(x + dx, y + dy))))
            .unwrap_or(99);
        match dist {
            0..=2 => {
                assert_eq!(
                    *p,
                    Rgba([10, 220, 30, 255]),
                    "texel {x},{y} at distance {dist}"
                );
                gutter += usize::from(dist > 0);
            }
            _ => assert_eq!(*p, Rgba([0, 0, 0, 255]), "texel {x},{y} beyond the gutter"),
        }
    }
    assert!(gutter > 20);
}

/// glTF UVs have v down: the top of a quad (v = 0) shows the texture's first rows, and a view
/// whose top half is red bakes red into those rows.
#[test]
fn v_runs_down_from_render_to_bake() {
    let m = Mesh::unit_quad();
    let cam = front_camera(3.0, 64);
    let r = rasterize(&m.view(), &cam);
    let (red, blue) = (Rgba([255, 0, 0, 255]), Rgba([0, 0, 255, 255]));
    let tex = RgbaImage::from_fn(8, 8, |_, y| if y < 4 { red } else { blue });
    let img = r.render_texture(&[&tex]);
    let (x, top, _) = cam.project([0.0, 0.5, 0.0]);
    let (_, bottom, _) = cam.project([0.0, -0.5, 0.0]);
    assert_eq!(*img.get_pixel(x as u32, top as u32), Rgb([255, 0, 0]));
    assert_eq!(*img.get_pixel(x as u32, bottom as u32), Rgb([0, 0, 255]));
    assert_eq!(*img.get_pixel(0, 0), Rgb([128, 128, 128]), "background");

    let generated = RgbImage::from_fn(64, 64, |_, y| {
        if y < 32 {
            Rgb([255, 0, 0])
        } else {
            Rgb([0, 0, 255])
        }
    });
    let mut baker = TextureBaker::new(&[(8, 8)]);
    baker.add_view(&m.view(), &cam, &r, &generated, 1.0);
    let baked = baker.finish(&[], 0).remove(0);
    assert_eq!(baked.coverage, 1.0);
    assert_eq!(*baked.image.get_pixel(3, 1), red);
    assert_eq!(*baked.image.get_pixel(3, 6), blue);
}
