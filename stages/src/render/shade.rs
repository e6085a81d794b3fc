//! One view rendered: the mesh rasterized at `size × supersample` (both faces: an open mesh shows its inside), each
//! covered subpixel lit as its base-color texel × (ambient + (1 − ambient)·|n·v|) — Lambert under a light at the
//! camera —, composited over the background and box-filtered to `size`. The mask is the subpixels' majority, the
//! depth the nearest covered subpixel's, both at the output size. Per pixel arithmetic only: the same bytes on any
//! thread count.

use image::{GrayImage, ImageBuffer, Luma, RgbImage, RgbaImage};
use rayon::prelude::*;

use crate::depth::raster::sample_rgba_repeat;
use crate::depth::{rasterize_with, Camera, MeshView, RasterOptions, NO_TRIANGLE};

use super::cameras::RenderCamera;
use super::settings::RenderSettings;

/// The colour of a surface whose material has no base-color texture.
const UNTEXTURED: [f32; 3] = [0.8, 0.8, 0.8];

/// What lies behind one view.
#[derive(Debug, Clone, Copy)]
pub enum ViewBackground<'a> {
    Color([u8; 3]),
    /// At the view's output size.
    Image(&'a RgbImage),
}

impl ViewBackground<'_> {
    fn at(&self, x: u32, y: u32) -> [f32; 3] {
        let p = match self {
            ViewBackground::Color(c) => *c,
            ViewBackground::Image(img) if x < img.width() && y < img.height() => {
                img.get_pixel(x, y).0
            }
            ViewBackground::Image(_) => [0, 0, 0],
        };
        p.map(f32::from)
    }
}

/// A rendered view at the output size.
#[derive(Debug, Clone)]
pub struct RenderedView {
    pub camera: RenderCamera,
    pub rgb: RgbImage,
    /// 255 where the object covers the pixel (most of its subpixels), 0 elsewhere.
    pub mask: GrayImage,
    /// View-space depth (along the viewing axis, in the asset's units: metres for glTF), 0 where the mask is 0.
    pub depth: Vec<f32>,
}

/// The tight box `[x, y, width, height]` (pixels, COCO's convention) of a mask's set pixels; `None` when empty.
pub fn mask_box(mask: &GrayImage) -> Option<[u32; 4]> {
    let (mut x0, mut y0, mut x1, mut y1) = (u32::MAX, u32::MAX, 0u32, 0u32);
    for (x, y, p) in mask.enumerate_pixels() {
        if p.0[0] != 0 {
            x0 = x0.min(x);
            y0 = y0.min(y);
            x1 = x1.max(x);
            y1 = y1.max(y);
        }
    }
    (x0 != u32::MAX).then(|| [x0, y0, x1 - x0 + 1, y1 - y0 + 1])
}

impl RenderedView {
    /// The depth as a 16-bit image and the metres one unit stands for: the nearest covered depth of the view
    /// spans the full range' top at most, 0 is the background. `None` scale when nothing is covered.
    pub fn depth_u16(&self) -> (ImageBuffer<Luma<u16>, Vec<u16>>, Option<f64>) {
        let (w, h) = (self.rgb.width(), self.rgb.height());
        let max = self.depth.iter().copied().fold(0.0f32, f32::max);
        if max <= 0.0 || !max.is_finite() {
            return (ImageBuffer::new(w, h), None);
        }
        let scale = f64::from(max) / 65535.0;
        let data = self
            .depth
            .iter()
            .map(|&z| {
                if z > 0.0 {
                    ((f64::from(z) / scale).round() as u32).clamp(1, 65535) as u16
                } else {
                    0
                }
            })
            .collect();
        let img = ImageBuffer::from_raw(w, h, data).unwrap_or_else(|| ImageBuffer::new(w, h));
        (img, Some(scale))
    }
}

/// Renders `mesh`, textured per slot by `textures` (a slot without one, or `u32::MAX`, is plain grey), as
/// `view.camera` sees it at its size, over `background`.
pub fn render_view(
    mesh: &MeshView,
    textures: &[&RgbaImage],
    view: &RenderCamera,
    settings: &RenderSettings,
    background: ViewBackground<'_>,
) -> RenderedView {
    let out_cam = &view.camera;
    let (w, h) = (out_cam.width(), out_cam.height());
    let ss = settings.supersample.clamp(1, 8);
    let fine = Camera::look_at(
        view.eye,
        view.target,
        view.up,
        view.fov_y_deg,
        w * ss,
        h * ss,
        out_cam.near(),
        out_cam.far(),
    );
    let raster = rasterize_with(
        mesh,
        &fine,
        &RasterOptions {
            cull_back_faces: false,
        },
    );
    let (tri, slot, uv, cos, depth) = (
        raster.triangle(),
        raster.slot(),
        raster.uv(),
        raster.cos(),
        raster.depth(),
    );
    let fine_w = (w * ss) as usize;
    let ambient = settings.ambient.clamp(0.0, 1.0);
    let per_pixel = (ss * ss) as f32;
    let majority = (ss * ss).div_ceil(2);

    let mut rgb = vec![0u8; (w * h * 3) as usize];
    let mut mask = vec![0u8; (w * h) as usize];
    let mut depth_out = vec![0f32; (w * h) as usize];
    rgb.par_chunks_mut(3 * w as usize)
        .zip(mask.par_chunks_mut(w as usize))
        .zip(depth_out.par_chunks_mut(w as usize))
        .enumerate()
        .for_each(|(y, ((rgb_row, mask_row), depth_row))| {
            for x in 0..w as usize {
                let mut sum = [0.0f32; 3];
                let mut covered = 0u32;
                let mut nearest = f32::INFINITY;
                for sy in 0..ss as usize {
                    let row = (y * ss as usize + sy) * fine_w + x * ss as usize;
                    for i in row..row + ss as usize {
                        if tri[i] == NO_TRIANGLE {
                            continue;
                        }
                        covered += 1;
                        nearest = nearest.min(depth[i]);
                        let base = match textures.get(slot[i] as usize) {
                            Some(t) => {
                                let c = sample_rgba_repeat(t, uv[i]);
                                [c[0], c[1], c[2]]
                            }
                            None => UNTEXTURED,
                        };
                        let light = ambient + (1.0 - ambient) * cos[i].abs().min(1.0);
                        for k in 0..3 {
                            sum[k] += base[k] * light * 255.0;
                        }
                    }
                }
                let bg = background.at(x as u32, y as u32);
                let empty = per_pixel - covered as f32;
                for k in 0..3 {
                    let v = (sum[k] + empty * bg[k]) / per_pixel;
                    rgb_row[3 * x + k] = v.round().clamp(0.0, 255.0) as u8;
                }
                if covered >= majority {
                    mask_row[x] = 255;
                    depth_row[x] = nearest;
                }
            }
        });
    RenderedView {
        camera: *view,
        rgb: RgbImage::from_raw(w, h, rgb).unwrap_or_else(|| RgbImage::new(w, h)),
        mask: GrayImage::from_raw(w, h, mask).unwrap_or_else(|| GrayImage::new(w, h)),
        depth: depth_out,
    }
}
