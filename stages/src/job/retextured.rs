//! What a job made, in memory, before it is written: a new image, or a mesh with new base-color textures.

use image::RgbaImage;

use crate::source::MeshAsset;

use super::settings::DepthSource;

/// A re-textured asset.
#[derive(Debug, Clone)]
pub enum Retextured {
    Image {
        /// At the source's size, with its alpha.
        image: RgbaImage,
        depth_source: Option<DepthSource>,
    },
    Mesh(Box<RetexturedMesh>),
}

/// A mesh with new images for its base-color slots; everything else of the asset is kept.
#[derive(Debug, Clone)]
pub struct RetexturedMesh {
    pub asset: MeshAsset,
    /// (slot, new texels) for every base-color slot, at each slot's own size.
    pub textures: Vec<(usize, RgbaImage)>,
    /// Depth stages: the names of the views that were painted, in request order.
    pub views: Option<Vec<String>>,
    /// Depth stages: the mean over used slots of the share of used texels some view saw.
    pub coverage: Option<f64>,
    /// Depth stages: how well the views agree with the baked texture (see [`super::consistency`]), in dB.
    pub view_consistency_db: Option<f64>,
    pub depth_source: Option<DepthSource>,
}
