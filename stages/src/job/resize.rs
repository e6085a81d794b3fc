//! Between an asset's pixels and the model's: RGB at the model's size in, the output back at the asset's size out.

use image::imageops::FilterType;
use image::{RgbImage, RgbaImage};

use super::error::JobError;
use super::settings::ModelSize;

/// RGB at the model's size (alpha dropped: the model sees colors only). `Native` keeps the size.
pub fn to_model_input(image: &RgbaImage, size: ModelSize) -> RgbImage {
    let rgb = image::DynamicImage::ImageRgba8(image.clone()).to_rgb8();
    match size {
        ModelSize::Square(n) => image::imageops::resize(&rgb, n, n, FilterType::Lanczos3),
        ModelSize::Native => rgb,
    }
}

/// The model's output at the original's size, with the original's alpha (cut-outs stay cut out).
pub fn back_to_source(output: &RgbImage, original: &RgbaImage) -> RgbaImage {
    let (w, h) = original.dimensions();
    let resized = image::imageops::resize(output, w, h, FilterType::Lanczos3);
    let mut out = RgbaImage::new(w, h);
    for (x, y, px) in out.enumerate_pixels_mut() {
        let c = resized.get_pixel(x, y).0;
        px.0 = [c[0], c[1], c[2], original.get_pixel(x, y).0[3]];
    }
    out
}

/// The one output of a single-image job, back at the source's size.
pub fn image_back_to_source(
    outputs: &[RgbImage],
    original: &RgbaImage,
) -> Result<RgbaImage, JobError> {
    let out = outputs.first().ok_or(JobError::OutputCount {
        got: 0,
        expected: 1,
        what: "the image of this sample".into(),
    })?;
    Ok(back_to_source(out, original))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resizing_back_restores_size_and_alpha() {
        let mut original = RgbaImage::new(10, 6);
        original.put_pixel(3, 2, image::Rgba([1, 2, 3, 40]));
        let model = to_model_input(&original, ModelSize::Square(8));
        assert_eq!(model.dimensions(), (8, 8));
        assert_eq!(
            to_model_input(&original, ModelSize::Native).dimensions(),
            (10, 6)
        );
        let back = back_to_source(
            &RgbImage::from_pixel(8, 8, image::Rgb([200, 100, 50])),
            &original,
        );
        assert_eq!(back.dimensions(), (10, 6));
        assert_eq!(back.get_pixel(3, 2).0, [200, 100, 50, 40]);
        assert_eq!(back.get_pixel(0, 0).0[3], 0);
    }
}
