//! Writing a sample: its images, its GLB and (for depth stages) its view list into the sample's folder, each file
//! atomically. The one finish path of every stage; a failed write leaves no folder behind.

use std::path::Path;

use crate::files;
use crate::source::{write_png_atomic, write_retextured_glb};

use super::error::JobError;
use super::render::WrittenView;
use super::retextured::Retextured;
use super::settings::DepthSource;

/// What a written sample holds. File names are relative to the sample's folder.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WrittenSample {
    /// Of the image, or of the mesh's first texture.
    pub width: u32,
    pub height: u32,
    pub image: Option<String>,
    pub textures: Vec<String>,
    pub asset: Option<String>,
    /// sha256 of the image, or of the GLB.
    pub sha256: String,
    pub depth_source: Option<DepthSource>,
    pub views: Option<usize>,
    pub coverage: Option<f64>,
    /// Depth stages on meshes: see [`super::consistency`].
    pub view_consistency_db: Option<f64>,
    /// The views a render stage made of the sample's mesh, each in its own folder.
    pub rendered: Vec<WrittenView>,
    /// Why the render failed, when the sample itself was written.
    pub render_error: Option<String>,
    /// The image's quality score, when the run scores (see the pipeline's `[score]`).
    pub clip_score: Option<f64>,
    /// Below its stage's `min_clip_score` (its files are written only when the stage keeps filtered samples).
    pub filtered: bool,
}

pub const IMAGE_FILE: &str = "image.png";
pub const ASSET_FILE: &str = "asset.glb";
pub const VIEWS_FILE: &str = "views.txt";

pub fn texture_file(slot: usize) -> String {
    format!("texture_{slot}.png")
}

impl Retextured {
    /// Writes the sample into `dir` (created). On any error `dir` is removed, so a failed sample leaves no files:
    /// its row says why, and a resumed run starts it afresh.
    pub fn write(&self, dir: &Path) -> Result<WrittenSample, JobError> {
        let result = self.write_files(dir);
        if result.is_err() {
            let _ = std::fs::remove_dir_all(dir);
        }
        result
    }

    fn write_files(&self, dir: &Path) -> Result<WrittenSample, JobError> {
        std::fs::create_dir_all(dir).map_err(|source| JobError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
        match self {
            Retextured::Image {
                image,
                depth_source,
            } => {
                let sha = write_png_atomic(image, &dir.join(IMAGE_FILE))?;
                Ok(WrittenSample {
                    width: image.width(),
                    height: image.height(),
                    image: Some(IMAGE_FILE.into()),
                    textures: Vec::new(),
                    asset: None,
                    sha256: sha,
                    depth_source: *depth_source,
                    views: None,
                    coverage: None,
                    ..WrittenSample::default()
                })
            }
            Retextured::Mesh(m) => {
                let mut names = Vec::new();
                for (slot, texture) in &m.textures {
                    let name = texture_file(*slot);
                    write_png_atomic(texture, &dir.join(&name))?;
                    names.push(name);
                }
                let sha = write_retextured_glb(&m.asset, &m.textures, &dir.join(ASSET_FILE))?;
                if let Some(views) = &m.views {
                    let path = dir.join(VIEWS_FILE);
                    files::write_atomic(&path, format!("{}\n", views.join(",")).as_bytes())
                        .map_err(|source| JobError::Write { path, source })?;
                }
                let (width, height) = m.textures.first().map_or((0, 0), |(_, t)| t.dimensions());
                Ok(WrittenSample {
                    width,
                    height,
                    image: None,
                    textures: names,
                    asset: Some(ASSET_FILE.into()),
                    sha256: sha,
                    depth_source: m.depth_source,
                    views: m.views.as_ref().map(Vec::len),
                    coverage: m.coverage,
                    view_consistency_db: m.view_consistency_db,
                    ..WrittenSample::default()
                })
            }
        }
    }
}
