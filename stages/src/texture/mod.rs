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
pub mod baked;
pub mod fill;
pub mod texel_map;

pub use bake::{BakeOptions, TextureBaker};
pub use baked::BakedTexture;
pub use fill::{dilate_gutter, fit_fallback};
pub use texel_map::TexelMap;
