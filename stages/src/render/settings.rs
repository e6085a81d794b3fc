//! What a render stage asks for: how many views, where the cameras may stand, how the image is lit, what lies
//! behind the object, and at what size and supersampling.

use std::sync::Arc;

use image::RgbImage;

/// The defaults a recipe's render stage starts from.
pub const DEFAULT_RENDER_VIEWS: u32 = 8;
pub const DEFAULT_RENDER_SIZE: u32 = 512;
pub const DEFAULT_AZIMUTH_DEG: [f32; 2] = [0.0, 360.0];
pub const DEFAULT_ELEVATION_DEG: [f32; 2] = [10.0, 40.0];
pub const DEFAULT_FOV_DEG: [f32; 2] = [40.0, 40.0];
pub const DEFAULT_SUPERSAMPLE: u32 = 2;
pub const DEFAULT_AMBIENT: f32 = 0.35;
/// The share of the frame's height the bounding sphere spans.
pub const DEFAULT_FILL: f32 = 0.8;
/// The colour of a solid background unless the recipe names one.
pub const DEFAULT_BACKGROUND: [u8; 3] = [255, 255, 255];

/// What lies behind the object.
#[derive(Debug, Clone, PartialEq)]
pub enum Background {
    Solid([u8; 3]),
    /// A colour drawn per view from the view's seed.
    RandomColor,
    /// One image per view, drawn from the view's seed, each already cropped to the view's size.
    Images(Arc<Vec<RgbImage>>),
}

/// One render stage's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderSettings {
    pub views: u32,
    /// Azimuths are spread evenly over this range (degrees; 0 faces the asset's front, +Z).
    pub azimuth_deg: [f32; 2],
    /// Each view's elevation is drawn from this range (degrees above the horizon).
    pub elevation_deg: [f32; 2],
    /// Each view's vertical field of view is drawn from this range (degrees).
    pub fov_deg: [f32; 2],
    /// Each azimuth moves by up to ± this many degrees, drawn per view.
    pub jitter_deg: f32,
    pub fill: f32,
    /// Square output images of `size` pixels.
    pub size: u32,
    /// Rendered at `size × supersample` and box-filtered down: anti-aliased edges and texture.
    pub supersample: u32,
    /// The light every surface gets; the rest comes from a light at the camera (Lambert).
    pub ambient: f32,
    pub background: Background,
}

impl Default for RenderSettings {
    fn default() -> Self {
        RenderSettings {
            views: DEFAULT_RENDER_VIEWS,
            azimuth_deg: DEFAULT_AZIMUTH_DEG,
            elevation_deg: DEFAULT_ELEVATION_DEG,
            fov_deg: DEFAULT_FOV_DEG,
            jitter_deg: 0.0,
            fill: DEFAULT_FILL,
            size: DEFAULT_RENDER_SIZE,
            supersample: DEFAULT_SUPERSAMPLE,
            ambient: DEFAULT_AMBIENT,
            background: Background::Solid(DEFAULT_BACKGROUND),
        }
    }
}
