//! The style stage: img2img of an image (inpainting where the image has a mask), or of every base-color texture of
//! a mesh (one request each).

use std::sync::Arc;

use image::{RgbImage, RgbaImage};

use crate::diffusion::request::{Condition, Img2ImgRequest};
use crate::source::{load_image, MeshAsset, SourceKind};

use super::error::JobError;
use super::frame::Frame;
use super::mask::load_mask;
use super::memory;
use super::request::request;
use super::retextured::{Retextured, RetexturedMesh};
use super::settings::{AssetRef, JobSettings};

/// What the style stage keeps between prepare and complete.
#[derive(Debug)]
pub enum StyleState {
    Image {
        original: RgbaImage,
        frame: Frame,
    },
    Mesh {
        asset: Box<MeshAsset>,
        /// (slot, original texels, how they met the model) in request order.
        slots: Vec<(usize, RgbaImage, Frame)>,
    },
}

impl StyleState {
    /// The memory it holds (see [`super::memory`]).
    pub fn memory_bytes(&self) -> u64 {
        match self {
            StyleState::Image { original, .. } => memory::rgba_bytes(original),
            StyleState::Mesh { asset, slots } => {
                memory::asset_bytes(asset)
                    + slots
                        .iter()
                        .map(|(_, o, _)| memory::rgba_bytes(o))
                        .sum::<u64>()
            }
        }
    }
}

pub fn prepare(
    asset: &AssetRef<'_>,
    settings: &JobSettings,
) -> Result<(Vec<Img2ImgRequest>, StyleState), JobError> {
    match asset.kind {
        SourceKind::Image => {
            let original = load_image(asset.path)?;
            let frame = Frame::new(original.dimensions(), settings.size);
            let input = frame.input(&original);
            let condition = match asset.mask {
                Some(path) => Condition::Inpaint(Arc::new(
                    frame.mask(&load_mask(path, original.dimensions())?),
                )),
                None => Condition::None,
            };
            let requests = vec![request(
                settings,
                input,
                settings.prompt.clone(),
                0,
                condition,
            )];
            Ok((requests, StyleState::Image { original, frame }))
        }
        SourceKind::Mesh => {
            if asset.mask.is_some() {
                return Err(JobError::MaskOnMesh {
                    path: asset.path.to_path_buf(),
                });
            }
            let mesh = MeshAsset::load(asset.path)?;
            let texture_size = settings.size.for_texture();
            let slots: Vec<(usize, RgbaImage, Frame)> = mesh
                .base_color_slots()
                .into_iter()
                .map(|s| {
                    let frame = Frame::new(s.image.dimensions(), texture_size);
                    (s.slot, s.image, frame)
                })
                .collect();
            if slots.is_empty() {
                return Err(JobError::NoBaseColorSlot {
                    path: asset.path.to_path_buf(),
                });
            }
            if settings.size == super::settings::ModelSize::Native {
                return Err(JobError::MeshNeedsSize {
                    path: asset.path.to_path_buf(),
                });
            }
            let requests = slots
                .iter()
                .map(|(slot, img, frame)| {
                    let input = frame.input(img);
                    request(
                        settings,
                        input,
                        settings.prompt.clone(),
                        *slot as u64,
                        Condition::None,
                    )
                })
                .collect();
            let state = StyleState::Mesh {
                asset: Box::new(mesh),
                slots,
            };
            Ok((requests, state))
        }
    }
}

pub fn complete(state: StyleState, outputs: Vec<RgbImage>) -> Result<Retextured, JobError> {
    match state {
        StyleState::Image { original, frame } => Ok(Retextured::Image {
            image: frame.image_back(&outputs, &original)?,
            depth_source: None,
        }),
        StyleState::Mesh { asset, slots } => {
            if outputs.len() != slots.len() {
                return Err(JobError::OutputCount {
                    got: outputs.len(),
                    expected: slots.len(),
                    what: "base-color slots".into(),
                });
            }
            let textures = slots
                .iter()
                .zip(&outputs)
                .map(|((slot, original, frame), out)| (*slot, frame.back(out, original)))
                .collect();
            Ok(Retextured::Mesh(Box::new(RetexturedMesh {
                asset: *asset,
                textures,
                views: None,
                coverage: None,
                view_consistency_db: None,
                depth_source: None,
            })))
        }
    }
}
