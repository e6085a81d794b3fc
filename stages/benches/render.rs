//! Render-stage throughput: views per second of a ~50k-triangle textured sphere at 512², with and without
//! supersampling, and the same with the three files of each view encoded (PNG image, mask, 16-bit depth).
//!
//! `cargo bench -p texaug-stages --bench render` (figures in bench/RESULTS.md)

use std::time::Instant;

use image::{Rgba, RgbaImage};
use texaug_stages::job::{RenderedFrame, ViewFormat};
use texaug_stages::render::{render_cameras, render_view, RenderSettings, ViewBackground};

#[path = "../tests/common/mesh.rs"]
mod mesh;

const VIEWS: u32 = 64;

fn main() {
    let threads = rayon::current_num_threads();
    // 160 × 158 quads: 50,240 triangles.
    let s = mesh::uv_sphere(1.0, 160, 158);
    let tris = s.indices.len();
    let texture = RgbaImage::from_fn(1024, 1024, |x, y| {
        Rgba([(x % 256) as u8, (y % 256) as u8, 128, 255])
    });
    let dir = tempfile::tempdir().expect("a temp folder");
    println!("render bench: {tris} triangles, {VIEWS} views at 512², {threads} rayon threads");
    for supersample in [1, 2] {
        let settings = RenderSettings {
            views: VIEWS,
            size: 512,
            supersample,
            ..RenderSettings::default()
        };
        let (lo, hi) = s.bounds();
        let cameras = render_cameras(lo, hi, &settings, 1, 512, 512);
        let view = s.view();
        let t = Instant::now();
        let frames: Vec<_> = cameras
            .iter()
            .map(|c| {
                render_view(
                    &view,
                    &[&texture],
                    c,
                    &settings,
                    ViewBackground::Color([255; 3]),
                )
            })
            .collect();
        let render_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        for (i, view) in frames.into_iter().enumerate() {
            let frame = RenderedFrame {
                view,
                background: String::new(),
                render_ms: 0.0,
            };
            if let Err(e) =
                frame.write(&dir.path().join(format!("v{i}")), i as u32, ViewFormat::Png)
            {
                eprintln!("writing a view failed: {e}");
                std::process::exit(1);
            }
        }
        let write_s = t.elapsed().as_secs_f64();
        println!(
            "supersample {supersample}: render {:.1} views/s ({:.1} ms/view); + encode and write 3 files: {:.1} views/s \
             ({:.1} ms/view)",
            f64::from(VIEWS) / render_s,
            render_s * 1e3 / f64::from(VIEWS),
            f64::from(VIEWS) / (render_s + write_s),
            (render_s + write_s) * 1e3 / f64::from(VIEWS),
        );
    }
}
