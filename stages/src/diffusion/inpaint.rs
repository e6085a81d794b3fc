//! Inpainting masks as diffusers' `StableDiffusionInpaintPipeline` prepares them: the mask image binarized
//! (`x / 255 ≥ 0.5` repaints), the masked image `image * (mask < 0.5)` for the VAE, and the mask taken to the latent
//! grid by nearest interpolation (`F.interpolate(mask, size=(h, w))`).

use image::GrayImage;
use tch::{Device, Kind, Tensor};

use super::error::DiffusionError;

/// One batch's masks on the device, in float32.
pub struct InpaintMasks {
    /// `[b, 1, H, W]`: 1 where the original pixel is kept (the mask is below 0.5), 0 where it is repainted.
    pub keep: Tensor,
    /// `[b, 1, h, w]` on the latent grid: 1 = repaint.
    pub latent: Tensor,
}

impl InpaintMasks {
    /// The masks of a batch whose images are `width × height`, for latents of `lh × lw`.
    pub fn new(
        masks: &[&GrayImage],
        (width, height): (u32, u32),
        (lh, lw): (i64, i64),
        device: Device,
    ) -> Result<Self, DiffusionError> {
        let mut bytes = Vec::with_capacity(masks.len() * (width * height) as usize);
        for (index, m) in masks.iter().enumerate() {
            if m.dimensions() != (width, height) {
                return Err(DiffusionError::MaskSize {
                    index,
                    width: m.width(),
                    height: m.height(),
                    w0: width,
                    h0: height,
                });
            }
            bytes.extend_from_slice(m.as_raw());
        }
        let shape = [masks.len() as i64, 1, i64::from(height), i64::from(width)];
        let raw = Tensor::f_from_data_size(&bytes, &shape, Kind::Uint8).map_err(|source| {
            DiffusionError::Torch {
                what: "building the mask tensor",
                source,
            }
        })?;
        // In float32 as diffusers divides, so 127 stays below the threshold and 128 reaches it.
        let repaint = (raw.to_kind(Kind::Float) / 255.0)
            .ge(0.5)
            .to_kind(Kind::Float)
            .to_device(device);
        let latent = repaint.upsample_nearest2d([lh, lw], None, None);
        Ok(Self {
            keep: 1.0 - &repaint,
            latent,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binarizes_at_half_and_samples_the_latent_grid_at_multiples_of_the_factor() {
        let mut m = GrayImage::new(16, 8);
        m.put_pixel(0, 0, image::Luma([128]));
        m.put_pixel(8, 0, image::Luma([127]));
        m.put_pixel(9, 1, image::Luma([255]));
        let masks = InpaintMasks::new(&[&m], (16, 8), (1, 2), Device::Cpu).unwrap();
        let keep: Vec<f32> = Vec::try_from(masks.keep.flatten(0, -1)).unwrap();
        assert_eq!(keep[0], 0.0, "128 repaints");
        assert_eq!(keep[8], 1.0, "127 keeps");
        assert_eq!(keep[16 + 9], 0.0);
        let latent: Vec<f32> = Vec::try_from(masks.latent.flatten(0, -1)).unwrap();
        assert_eq!(
            latent,
            vec![1.0, 0.0],
            "nearest takes pixel (0, 0) and (8, 0), not (9, 1)"
        );
    }

    #[test]
    fn a_mask_of_another_size_is_refused_with_both_sizes() {
        let m = GrayImage::new(8, 8);
        let e = InpaintMasks::new(&[&m], (16, 8), (1, 2), Device::Cpu)
            .err()
            .unwrap();
        assert!(
            e.to_string().contains("8x8") && e.to_string().contains("16x8"),
            "{e}"
        );
    }
}
