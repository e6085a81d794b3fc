//! What a batch gives the UNet besides the text, as the pipeline entry points hand it to the denoising loop.

use image::{GrayImage, RgbImage};

use super::super::image_tensors::DepthMap;

/// What conditions the UNet besides the text, one entry per request of the batch.
pub(super) enum Cond<'a> {
    None,
    Depth(Vec<&'a DepthMap>),
    Control {
        images: Vec<&'a RgbImage>,
        scale: f64,
    },
    Inpaint(Vec<&'a GrayImage>),
}
