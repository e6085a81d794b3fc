//! What baking gives back for one texture slot.

use image::{GrayImage, RgbaImage};

/// One slot's baked texture.
#[derive(Debug, Clone)]
pub struct BakedTexture {
    /// Seen texels: the weighted mean of the views; the rest: the fallback (alpha always from the
    /// fallback), with the gutter dilated around the used texels.
    pub image: RgbaImage,
    /// Share of the used texels (those a triangle's UVs cover) seen by at least one view; 0 when
    /// the slot has no used texel.
    pub coverage: f64,
    /// 255 where a used texel was seen by at least one view.
    pub seen_mask: GrayImage,
    /// 255 where a triangle's UVs cover the texel center.
    pub used_mask: GrayImage,
}
