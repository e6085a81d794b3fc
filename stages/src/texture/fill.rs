//! Filling what no view saw, and the gutter around UV islands.
//!
//! Texels outside every UV triangle are never seen by bilinear or mip sampling at the triangle's
//! interior, but they are at its edges: without a gutter, the unrelated fallback color bleeds into
//! the seams. Dilating the used region outward by a few texels stops that.

use image::{imageops::FilterType, GrayImage, Rgba, RgbaImage};

/// The fallback of a slot at the slot's size: as is, resized (Catmull-Rom) when its size differs,
/// or opaque mid-gray when absent.
pub fn fit_fallback(fallback: Option<&RgbaImage>, width: u32, height: u32) -> RgbaImage {
    match fallback {
        Some(img) if img.dimensions() == (width, height) => img.clone(),
        Some(img) if img.width() > 0 && img.height() > 0 => {
            image::imageops::resize(img, width, height, FilterType::CatmullRom)
        }
        _ => RgbaImage::from_pixel(width, height, Rgba([128, 128, 128, 255])),
    }
}

/// Grows the texels marked in `used` (255) outward by `gutter_px` rings (8-neighborhood): each ring
/// takes the mean color (alpha included) of its already-filled neighbors. Texels beyond the gutter
/// keep their color.
pub fn dilate_gutter(image: &mut RgbaImage, used: &GrayImage, gutter_px: u32) {
    let (w, h) = image.dimensions();
    if used.dimensions() != (w, h) || w == 0 || h == 0 {
        return;
    }
    let (w, h) = (w as i64, h as i64);
    let mut filled: Vec<bool> = used.as_raw().iter().map(|&v| v > 0).collect();
    let mut frontier: Vec<(i64, i64)> = Vec::new();
    for _ in 0..gutter_px {
        frontier.clear();
        for y in 0..h {
            for x in 0..w {
                if filled[(y * w + x) as usize] {
                    continue;
                }
                let touches = neighbors(x, y, w, h).any(|(nx, ny)| filled[(ny * w + nx) as usize]);
                if touches {
                    frontier.push((x, y));
                }
            }
        }
        if frontier.is_empty() {
            break;
        }
        // Colors of this ring come from the previous rings only, so the ring order cannot matter.
        let colors: Vec<Rgba<u8>> = frontier
            .iter()
            .map(|&(x, y)| {
                let mut sum = [0u32; 4];
                let mut n = 0u32;
                for (nx, ny) in neighbors(x, y, w, h) {
                    if filled[(ny * w + nx) as usize] {
                        let p = image.get_pixel(nx as u32, ny as u32).0;
                        for k in 0..4 {
                            sum[k] += p[k] as u32;
                        }
                        n += 1;
                    }
                }
                let n = n.max(1);
                Rgba(sum.map(|s| ((s + n / 2) / n) as u8))
            })
            .collect();
        for (&(x, y), c) in frontier.iter().zip(colors) {
            image.put_pixel(x as u32, y as u32, c);
            filled[(y * w + x) as usize] = true;
        }
    }
}

fn neighbors(x: i64, y: i64, w: i64, h: i64) -> impl Iterator<Item = (i64, i64)> {
    (-1..=1)
        .flat_map(move |dy| (-1..=1).map(move |dx| (x + dx, y + dy)))
        .filter(move |&(nx, ny)| (nx, ny) != (x, y) && nx >= 0 && ny >= 0 && nx < w && ny < h)
}
