//! Inpainting masks from files, as diffusers' mask processor reads a PIL mask: grey by PIL's `convert("L")`
//! (ITU-R 601 weights in 16-bit fixed point, alpha ignored), at the image's size, resized with it to the model's.
//! Binarizing (≥ 128 repaints) happens in the engine, after the resize, as diffusers binarizes.

use std::path::Path;

use image::{GrayImage, RgbaImage};

use crate::source::load_image;

use super::error::JobError;

/// PIL's RGB → L: `(r·19595 + g·38470 + b·7471 + 2^15) >> 16`.
fn pil_luma(rgba: &RgbaImage) -> GrayImage {
    let (w, h) = rgba.dimensions();
    GrayImage::from_fn(w, h, |x, y| {
        let [r, g, b, _] = rgba.get_pixel(x, y).0;
        let l = (u32::from(r) * 19595 + u32::from(g) * 38470 + u32::from(b) * 7471 + 0x8000) >> 16;
        image::Luma([l as u8])
    })
}

/// The mask at `path` for an image of `image_size`, at that size (the image's [`super::frame::Frame`] brings it to
/// the model's). The mask must have the image's size: a mask of another size would land on the wrong pixels.
pub fn load_mask(path: &Path, image_size: (u32, u32)) -> Result<GrayImage, JobError> {
    let luma = pil_luma(&load_image(path)?);
    if luma.dimensions() != image_size {
        return Err(JobError::MaskSize {
            path: path.to_path_buf(),
            width: luma.width(),
            height: luma.height(),
            w0: image_size.0,
            h0: image_size.1,
        });
    }
    Ok(luma)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::frame::Frame;
    use crate::job::settings::ModelSize;

    #[test]
    fn grey_is_pils_fixed_point_luma() {
        let mut rgba = RgbaImage::new(3, 1);
        rgba.put_pixel(0, 0, image::Rgba([255, 0, 0, 0]));
        rgba.put_pixel(1, 0, image::Rgba([0, 255, 0, 255]));
        rgba.put_pixel(2, 0, image::Rgba([10, 200, 90, 255]));
        let l = pil_luma(&rgba);
        // Pillow 13: Image.new("RGB", (3, 1)) with these pixels, .convert("L") → [76, 150, 131].
        assert_eq!(l.as_raw(), &vec![76, 150, 131]);
    }

    #[test]
    fn a_mask_of_another_size_names_both_sizes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.png");
        GrayImage::new(4, 4).save(&p).unwrap();
        let e = load_mask(&p, (8, 4)).unwrap_err().to_string();
        assert!(
            e.contains("4x4") && e.contains("8x4") && e.contains("m.png"),
            "{e}"
        );
        let ok = load_mask(&p, (4, 4)).unwrap();
        assert_eq!(ok.dimensions(), (4, 4));
        let framed = Frame::new((4, 4), ModelSize::square(8)).mask(&ok);
        assert_eq!(framed.dimensions(), (8, 8));
    }
}
