//! The render room against analytic answers: framing, mask and box, depth, shading, supersampling, backgrounds
//! and seeds — and the same bytes on any thread count.

mod common;

use std::sync::Arc;

use common::mesh::{uv_sphere, Mesh};
use image::{RgbImage, Rgba, RgbaImage};
use texaug_stages::render::{
    mask_box, render_cameras, render_view, view_background, view_seed, Background, RenderSettings,
    RenderedView, ViewBackground,
};

fn settings(size: u32, supersample: u32) -> RenderSettings {
    RenderSettings {
        views: 6,
        size,
        supersample,
        ..RenderSettings::default()
    }
}

fn red() -> RgbaImage {
    RgbaImage::from_pixel(4, 4, Rgba([200, 40, 0, 255]))
}

fn render(mesh: &Mesh, s: &RenderSettings, seed: u64, bg: [u8; 3]) -> Vec<RenderedView> {
    let (lo, hi) = mesh.bounds();
    let tex = red();
    render_cameras(lo, hi, s, seed, s.size, s.size)
        .iter()
        .map(|c| render_view(&mesh.view(), &[&tex], c, s, ViewBackground::Color(bg)))
        .collect()
}

#[test]
fn a_sphere_is_framed_at_the_fill_its_box_is_its_mask_extent_and_its_depth_lies_on_it() {
    let sphere = uv_sphere(1.0, 64, 48);
    let s = settings(128, 2);
    for v in render(&sphere, &s, 7, [255, 255, 255]) {
        let [x, y, w, h] = mask_box(&v.mask).expect("the sphere is in view");
        // The box is the mask's extent: every set pixel inside, a set pixel on each of its edges.
        let set: Vec<(u32, u32)> = v
            .mask
            .enumerate_pixels()
            .filter(|p| p.2 .0[0] == 255)
            .map(|p| (p.0, p.1))
            .collect();
        assert!(set
            .iter()
            .all(|&(px, py)| px >= x && px < x + w && py >= y && py < y + h));
        assert!(set.iter().any(|p| p.0 == x) && set.iter().any(|p| p.0 == x + w - 1));
        assert!(set.iter().any(|p| p.1 == y) && set.iter().any(|p| p.1 == y + h - 1));
        // The bounding box's sphere (radius √3) spans `fill` (0.8) of the frame's height, so the unit sphere
        // inside it spans what its silhouette's angle gives at that distance.
        let (d, half) = (
            v.camera.distance,
            (v.camera.fov_y_deg.to_radians() * 0.5).tan(),
        );
        let bound = 3f32.sqrt() / (d * d - 3.0).sqrt() / half;
        assert!(
            (bound - 0.8).abs() < 1e-3,
            "the bounding sphere spans {bound}"
        );
        let expected = 1.0 / (d * d - 1.0).sqrt() / half;
        let span = w.max(h) as f32 / 128.0;
        assert!(
            (span - expected).abs() < 0.03,
            "the sphere spans {span}, not {expected}"
        );
        // Depth: set exactly where the mask is, between the near and far side of the sphere.
        for (i, &z) in v.depth.iter().enumerate() {
            let masked = v.mask.as_raw()[i] == 255;
            assert_eq!(z > 0.0, masked);
            if masked {
                assert!(
                    z > d - 1.01 && z < d + 0.2,
                    "depth {z} off the sphere at distance {d}"
                );
            }
        }
        let (img, scale) = v.depth_u16();
        let scale = scale.expect("covered");
        for (i, &z) in v.depth.iter().enumerate() {
            let back = f64::from(img.as_raw()[i]) * scale;
            assert!(
                (back - f64::from(z)).abs() <= scale,
                "16-bit depth keeps metres to one step"
            );
        }
    }
}

#[test]
fn light_comes_from_the_camera_and_the_background_shows_around_the_object() {
    let sphere = uv_sphere(1.0, 64, 48);
    let s = settings(96, 1);
    let v = &render(&sphere, &s, 1, [10, 200, 30])[0];
    // Corners are background; the centre faces the light (|n·v| ≈ 1): the texel colour in full.
    assert_eq!(v.rgb.get_pixel(0, 0).0, [10, 200, 30]);
    let [x, y, w, h] = mask_box(&v.mask).unwrap();
    let c = v.rgb.get_pixel(x + w / 2, y + h / 2).0;
    assert!(
        (i32::from(c[0]) - 200).abs() <= 3 && (i32::from(c[1]) - 40).abs() <= 3,
        "{c:?}"
    );
    // Near the silhouette the surface turns away: darker, but never below the ambient share.
    let edge = (0..w)
        .map(|dx| (x + dx, y + h / 2))
        .find(|&(px, py)| v.mask.get_pixel(px, py).0[0] == 255)
        .unwrap();
    let e = v.rgb.get_pixel(edge.0, edge.1).0;
    assert!(e[0] < c[0], "the rim {e:?} is darker than the centre {c:?}");
    assert!(f32::from(e[0]) >= 200.0 * s.ambient - 2.0);
}

#[test]
fn supersampling_blends_the_silhouette_and_one_sample_does_not() {
    let sphere = uv_sphere(1.0, 64, 48);
    let colours = |ss: u32| {
        let v = &render(&sphere, &settings(64, ss), 3, [0, 0, 255])[0];
        // Pixels that are neither background nor surface (red channel > 0 and blue > 0): blended edges.
        v.rgb
            .pixels()
            .filter(|p| p.0[0] > 0 && p.0[2] > 0 && p.0[2] < 255)
            .count()
    };
    assert_eq!(colours(1), 0);
    assert!(colours(4) > 20);
}

#[test]
fn views_spread_over_the_azimuth_range_and_draw_their_angles_from_their_own_seeds() {
    let s = RenderSettings {
        views: 4,
        elevation_deg: [10.0, 40.0],
        fov_deg: [30.0, 50.0],
        jitter_deg: 0.0,
        ..RenderSettings::default()
    };
    let cams = render_cameras([-1.0; 3], [1.0; 3], &s, 11, 64, 64);
    let az: Vec<f32> = cams.iter().map(|c| c.azimuth_deg).collect();
    assert_eq!(az, [0.0, 90.0, 180.0, 270.0]);
    assert!(cams
        .iter()
        .all(|c| (10.0..=40.0).contains(&c.elevation_deg) && (30.0..=50.0).contains(&c.fov_y_deg)));
    // More views: the first views' draws stay (a view's draws are its own), their azimuths re-spread.
    let more = render_cameras(
        [-1.0; 3],
        [1.0; 3],
        &RenderSettings {
            views: 8,
            ..s.clone()
        },
        11,
        64,
        64,
    );
    assert_eq!(more[1].elevation_deg, cams[1].elevation_deg);
    assert_eq!(more[2].azimuth_deg, 90.0);
    // Another seed, other angles; a partial range centres its views; jitter stays within its bound.
    let other = render_cameras([-1.0; 3], [1.0; 3], &s, 12, 64, 64);
    assert_ne!(other[0].elevation_deg, cams[0].elevation_deg);
    let front = RenderSettings {
        azimuth_deg: [-40.0, 40.0],
        jitter_deg: 5.0,
        ..s.clone()
    };
    for (i, c) in render_cameras([-1.0; 3], [1.0; 3], &front, 11, 64, 64)
        .iter()
        .enumerate()
    {
        let centre = -40.0 + (i as f32 + 0.5) * 20.0;
        assert!((c.azimuth_deg - centre).abs() <= 5.0);
    }
    assert_ne!(view_seed(11, 0), view_seed(11, 1));
}

#[test]
fn backgrounds_are_drawn_per_view_from_its_seed() {
    let (solid, name) = view_background(&Background::Solid([1, 2, 3]), 5);
    assert!(matches!(solid, ViewBackground::Color([1, 2, 3])));
    assert_eq!(name, "#010203");
    let names: std::collections::HashSet<String> = (0..16)
        .map(|i| view_background(&Background::RandomColor, view_seed(9, i)).1)
        .collect();
    assert!(
        names.len() > 12,
        "random colours repeat too often: {names:?}"
    );
    assert_eq!(
        view_background(&Background::RandomColor, 77).1,
        view_background(&Background::RandomColor, 77).1
    );
    let images = Arc::new(vec![
        RgbImage::new(8, 8),
        RgbImage::new(8, 8),
        RgbImage::new(8, 8),
    ]);
    let picked: std::collections::HashSet<String> = (0..32)
        .map(|i| view_background(&Background::Images(images.clone()), view_seed(3, i)).1)
        .collect();
    assert_eq!(picked.len(), 3, "every image is drawn: {picked:?}");
}

#[test]
fn a_render_is_the_same_bytes_on_one_thread_and_on_several() {
    let sphere = uv_sphere(1.0, 96, 64);
    let s = settings(96, 2);
    let on = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| render(&sphere, &s, 21, [9, 9, 9]))
    };
    let (one, four) = (on(1), on(4));
    for (a, b) in one.iter().zip(&four) {
        assert_eq!(a.rgb.as_raw(), b.rgb.as_raw());
        assert_eq!(a.mask.as_raw(), b.mask.as_raw());
        assert_eq!(a.depth, b.depth);
    }
}
