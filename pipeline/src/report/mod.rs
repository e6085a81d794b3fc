//! `texaug report`: a self-contained HTML contact sheet of an output folder, `OUT/report/index.html`, with its
//! thumbnails beside it. [`model`] (the page's content from the records: counts, failures, grid, turntable
//! strips), [`tile`] (one sample on the page, and the checks on its paths), [`histogram`] (CLIP scores),
//! [`run_info`] (`run.toml`), [`thumbs`] (downscaled images, in parallel), [`html`] (the minijinja template),
//! [`publish`] (built aside, renamed into place) and [`build`] (the whole command).

pub mod build;
pub mod histogram;
pub mod html;
pub mod model;
pub mod publish;
pub mod run_info;
pub mod thumbs;
pub mod tile;
