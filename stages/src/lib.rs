//! texaug-stages: the work one texaug job does.
//!
//! - [`source`]: images and glTF/GLB meshes in, re-textured assets out.
//! - [`diffusion`]: Stable Diffusion (img2img, depth-conditioned) in tch, numerically equal to diffusers.
//! - [`depth`]: the mesh rasterizer (depth, uv, normal·view, mask) and image depth.
//! - [`texture`]: back-projection of generated views into the UV texture.
//!
//! Layer rule: this crate never depends on the pipeline; `diffusion` never depends on `source` or `texture`.

pub mod depth;
pub mod diffusion;
pub mod source;
pub mod texture;
