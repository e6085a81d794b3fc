//! The background of each view, drawn from the view's seed: a solid colour, a random one, or one of a folder's
//! images cropped to the view (scaled to cover it, centred), so a training set does not learn one backdrop.

use image::imageops::FilterType;
use image::{RgbImage, RgbaImage};

use crate::random::SplitMix64;

use super::settings::Background;
use super::shade::ViewBackground;

/// `image` scaled to cover `size × size` and centre-cropped to it; the alpha channel dropped.
pub fn cover_crop(image: &RgbaImage, size: u32) -> RgbImage {
    let (w, h) = (image.width().max(1), image.height().max(1));
    let scale = f64::from(size) / f64::from(w.min(h));
    let (sw, sh) = (
        ((f64::from(w) * scale).round() as u32).max(size),
        ((f64::from(h) * scale).round() as u32).max(size),
    );
    let rgb = image::DynamicImage::ImageRgba8(image.clone()).to_rgb8();
    let scaled = image::imageops::resize(&rgb, sw, sh, FilterType::Triangle);
    image::imageops::crop_imm(&scaled, (sw - size) / 2, (sh - size) / 2, size, size).to_image()
}

/// The background of the view whose seed is `view_seed`, and how the manifest names it.
pub fn view_background(background: &Background, view_seed: u64) -> (ViewBackground<'_>, String) {
    // Its own stream: the background does not move when the camera's draws change.
    let mut rng = SplitMix64::new(view_seed ^ 0x6261_636B_6772_6E64);
    match background {
        Background::Solid(c) => (ViewBackground::Color(*c), hex(*c)),
        Background::RandomColor => {
            let c = [0, 1, 2].map(|_| (rng.next_u64() >> 56) as u8);
            (ViewBackground::Color(c), hex(c))
        }
        Background::Images(images) if !images.is_empty() => {
            let i = rng.below(images.len());
            (ViewBackground::Image(&images[i]), format!("image:{i}"))
        }
        Background::Images(_) => (ViewBackground::Color([0; 3]), hex([0; 3])),
    }
}

fn hex(c: [u8; 3]) -> String {
    format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2])
}
