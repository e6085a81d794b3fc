//! Rasterization and back-projection timings: a ~100k-triangle UV sphere, 8 views at 512²,
//! a 1024² texture. Run single-threaded with `RAYON_NUM_THREADS=1` and with the default pool.
//!
//! `cargo bench -p texaug-stages --bench raster`

use image::{Rgba, RgbaImage};
use std::time::{Duration, Instant};
use texaug_stages::depth::{rasterize, view_schedule, MeshView};
use texaug_stages::texture::TextureBaker;

#[path = "../tests/common/mesh.rs"]
mod mesh;

const SEGMENTS: u32 = 256;
const RINGS: u32 = 200;
const VIEW_SIZE: u32 = 512;
const TEXTURE_SIZE: u32 = 1024;
const VIEWS: usize = 8;
const ROUNDS: usize = 3;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let threads = rayon::current_num_threads();
    let s = mesh::uv_sphere(1.0, SEGMENTS, RINGS);
    let mesh = match MeshView::new(&s.positions, &s.normals, &s.uvs, &s.indices, &s.slots) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("bench mesh is inconsistent: {e}");
            std::process::exit(1);
        }
    };
    let views = view_schedule([-1.0; 3], [1.0; 3], VIEWS, false, VIEW_SIZE);
    let generated = image::RgbImage::from_pixel(VIEW_SIZE, VIEW_SIZE, image::Rgb([180, 120, 60]));

    let mut raster_best = f64::INFINITY;
    let mut bake_best = f64::INFINITY;
    let (mut raster_sum, mut bake_sum, mut n) = (0.0, 0.0, 0usize);
    let mut prepare_ms = 0.0;
    let mut coverage = 0.0;
    let mut covered_px = 0usize;
    for round in 0..ROUNDS {
        let mut baker = TextureBaker::new(&[(TEXTURE_SIZE, TEXTURE_SIZE)]);
        let t = Instant::now();
        let samples = baker.prepare(&mesh).sample_count();
        if round == 0 {
            prepare_ms = ms(t.elapsed());
            println!(
                "mesh: {} triangles, {} vertices; texel samples: {samples}",
                mesh.triangle_count(),
                mesh.vertex_count()
            );
        }
        for view in &views {
            let t = Instant::now();
            let raster = rasterize(&mesh, &view.camera);
            let r = ms(t.elapsed());
            covered_px = raster.covered_pixels();
            let t = Instant::now();
            baker.add_view(&mesh, &view.camera, &raster, &generated, 4.0);
            let b = ms(t.elapsed());
            raster_best = raster_best.min(r);
            bake_best = bake_best.min(b);
            raster_sum += r;
            bake_sum += b;
            n += 1;
        }
        let fallback = [RgbaImage::from_pixel(
            TEXTURE_SIZE,
            TEXTURE_SIZE,
            Rgba([128, 128, 128, 255]),
        )];
        let t = Instant::now();
        let baked = baker.finish(&fallback, 4);
        if round == 0 {
            println!("finish (fill + gutter 4): {:.1} ms", ms(t.elapsed()));
        }
        coverage = baked[0].coverage;
    }
    println!("threads: {threads}; views: {VIEWS} at {VIEW_SIZE}²; texture {TEXTURE_SIZE}²; {ROUNDS} rounds");
    println!("texel map (once per mesh): {prepare_ms:.1} ms");
    println!(
        "rasterize per view:      mean {:.1} ms, best {:.1} ms ({covered_px} px covered)",
        raster_sum / n as f64,
        raster_best
    );
    println!(
        "back-project per view:   mean {:.1} ms, best {:.1} ms (coverage {:.3})",
        bake_sum / n as f64,
        bake_best,
        coverage
    );
}
