//! `texaug validate`'s inpainting checks: a source's mask is a readable image at its image's size, and an
//! inpainting model (9 UNet input channels) gets a mask for every source its style stages run on.

use std::path::Path;

use super::diagnostic::Diagnostic;
use super::recipe::{LoadedRecipe, StageKind};
use super::recipe_schema::Key;
use super::sources::{Source, SourceKind};

/// An inpainting model runs style stages on image sources that each have a mask.
pub fn inpainting_model(loaded: &LoadedRecipe, sources: &[Source], model: &str) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (i, stage) in loaded.recipe.stages.iter().enumerate() {
        if stage.kind == StageKind::Depth {
            out.push(loaded.diagnostic_at(
                &[Key::Name("stage"), Key::Index(i), Key::Name("kind")],
                format!(
                    "depth stage `{}` cannot run on {model}: it is an inpainting model (9 UNet input channels)",
                    stage.stage_name()
                ),
                "inpaint in a style stage (sources with a `mask` column), and run depth stages in a recipe with an \
                 SD 2-depth model or a ControlNet",
            ));
        }
    }
    if !loaded
        .recipe
        .stages
        .iter()
        .any(|s| s.kind == StageKind::Style)
    {
        return out;
    }
    for s in sources.iter().filter(|s| s.mask.is_none()) {
        let (message, fix) = match s.kind {
            SourceKind::Image => (
                format!("source `{}` has no mask, and {model} is an inpainting model that needs one", s.id),
                "add a `mask` column naming a mask image at the source's size (white = repaint), or use a plain model",
            ),
            SourceKind::Mesh => (
                format!("source `{}` is a mesh, and {model} is an inpainting model (it needs a masked image)", s.id),
                "re-texture meshes with a plain or depth model in another recipe",
            ),
        };
        out.push(Diagnostic::new(&s.origin, s.line, 1, message, fix));
    }
    out
}

/// An image file's width and height from its header (format guessed from the content), or why it cannot be read.
pub fn image_dimensions(path: &Path) -> Result<(u32, u32), String> {
    image::ImageReader::open(path)
        .and_then(|r| r.with_guessed_format())
        .map_err(|e| e.to_string())
        .and_then(|r| r.into_dimensions().map_err(|e| e.to_string()))
}

/// A source's `mask`: a readable image at the source image's size, and no mask on a mesh.
pub fn mask(s: &Source, mask: &Path) -> Option<Diagnostic> {
    let at = |message: String, fix: &str| Diagnostic::new(&s.origin, s.line, 1, message, fix);
    if s.kind == SourceKind::Mesh {
        return Some(at(
            format!(
                "source `{}` is a mesh; the `mask` column is for image sources",
                s.id
            ),
            "leave the mask empty on mesh rows",
        ));
    }
    match (image_dimensions(mask), image_dimensions(&s.path)) {
        (Err(e), _) => Some(at(
            format!("source `{}`: mask {} is not a readable image: {e}", s.id, mask.display()),
            "fix the mask path (relative paths start at the manifest's folder); white = repaint, black = keep",
        )),
        (Ok(m), Ok(i)) if m != i => Some(at(
            format!(
                "source `{}`: mask {} is {}x{} but the image is {}x{}",
                s.id,
                mask.display(),
                m.0,
                m.1,
                i.0,
                i.1
            ),
            "give the mask at the image's size",
        )),
        _ => None,
    }
}
