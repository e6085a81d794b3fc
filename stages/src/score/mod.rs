//! A CLIP image–text score for every generated sample or rendered view: transformers' `CLIPModel` in tch
//! (`clip_vision` the image tower, the text tower from `diffusion::clip`), `CLIPImageProcessor`'s preprocessing
//! (`preprocess`), the scorer and its loading (`clip_model`), and a tiny random model in the real layout (`tiny`).

pub mod clip_model;
pub mod clip_vision;
pub mod error;
pub mod preprocess;
pub mod tiny;

pub use clip_model::ClipScorer;
pub use error::ScoreError;
