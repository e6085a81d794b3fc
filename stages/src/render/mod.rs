//! Rendering labeled training views of a (re-textured) mesh: seeded cameras framed to its bounds
//! ([`cameras`]), a Lambert-shaded, supersampled render over a seeded background with its mask and depth
//! ([`shade`], [`background`]), from the settings a render stage gives ([`settings`]). Built on the depth
//! room's rasterizer; knows nothing of diffusion or jobs.

pub mod background;
pub mod cameras;
pub mod settings;
pub mod shade;

pub use background::{cover_crop, view_background};
pub use cameras::{render_cameras, view_seed, RenderCamera};
pub use settings::{Background, RenderSettings};
pub use shade::{mask_box, render_view, RenderedView, ViewBackground};
