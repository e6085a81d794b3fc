//! texaug-stages: the work one texaug job does.
//!
//! - [`source`]: images and glTF/GLB meshes in, re-textured assets out.
//! - [`diffusion`]: Stable Diffusion (img2img, depth-conditioned) in tch, numerically equal to diffusers.
//! - [`depth`]: the mesh rasterizer (depth, uv, normal·view, mask) and image depth.
//! - [`texture`]: back-projection of generated views into the UV texture.
//! - [`render`]: labeled training views of a mesh (seeded cameras, Lambert shading, mask, depth, box).
//! - [`score`]: a CLIP image–text score per sample or view, numerically equal to transformers' `CLIPModel`.
//! - [`job`]: the work of one job on one asset (style or depth), built from the above; [`job::retexture`]
//!   re-textures an asset with a loaded model in one call.
//! - [`files`]: atomic writes and file digests; [`file_read`]: the capped, regular-file-only read of every input.
//!
//! Layer rule: this crate never depends on the pipeline; `diffusion` never depends on `source`, `depth`,
//! `texture` or `job`; only `job` combines them (see docs/ARCHITECTURE.md).

pub mod depth;
pub mod diffusion;
pub mod file_read;
pub mod files;
pub mod job;
pub mod random;
pub mod render;
pub mod score;
pub mod source;
pub mod texture;
