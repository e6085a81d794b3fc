//! Baking generated views back into a mesh's UV texture.
//!
//! - [`texel_map`]: the mesh rasterized once in UV space: for every texel, the triangles that own
//!   it, the world point and the normal there.
//! - [`bake`]: per view, each texel's world point is projected into the view, depth-tested against
//!   the view's raster and weighted by (normal·view)^k; weighted colors accumulate per texel.
//! - [`fill`]: texels no view saw keep the fallback; a gutter around UV islands stops bleeding.
//!
//! UVs follow glTF (origin top-left, v down); UVs outside [0, 1] wrap (REPEAT) per triangle.
//! Mirrored and overlapping UVs are fine: a texel owned by several triangles accumulates from all.

pub mod bake;
pub mod fill;
pub mod texel_map;

pub use bake::{BakeOptions, TextureBaker};
pub use fill::{dilate_gutter, fit_fallback};
pub use texel_map::TexelMap;

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
