//! The style stage's CPU work. Images: resize to the model's size, img2img, resize back to the source's size (alpha
//! kept). Meshes: every base-color texture is one request; when all are done the GLB and a PNG per texture are
//! written. Files land in `samples/<sample_id>/`, each atomically.

use crate::plan::Job;
use crate::pool::{Condition, Finished, ModelRequest, Prepared, StageWork};
use crate::recipe::StageKind;
use crate::source_manifest::SourceKind;
use image::imageops::FilterType;
use image::{RgbImage, RgbaImage};
use std::any::Any;
use std::path::{Path, PathBuf};
use texaug_stages::source::{load_image, write_png_atomic, write_retextured_glb, MeshAsset};

/// The folder of one sample, relative to the output folder.
pub fn sample_rel_dir(sample_id: &str) -> String {
    format!("samples/{sample_id}")
}

pub struct StyleWork {
    pub output: PathBuf,
}

enum State {
    Image {
        original: RgbaImage,
    },
    Mesh {
        asset: Box<MeshAsset>,
        /// (slot, original texels) in request order.
        slots: Vec<(usize, RgbaImage)>,
    },
}

/// RGB at the model's size (alpha dropped: the model sees colors only).
pub(crate) fn to_model_input(image: &RgbaImage, size: u32) -> RgbImage {
    let rgb = image::DynamicImage::ImageRgba8(image.clone()).to_rgb8();
    image::imageops::resize(&rgb, size, size, FilterType::Lanczos3)
}

/// The model's output at the original's size, with the original's alpha (cut-outs stay cut out).
pub(crate) fn back_to_source(output: &RgbImage, original: &RgbaImage) -> RgbaImage {
    let (w, h) = original.dimensions();
    let resized = image::imageops::resize(output, w, h, FilterType::Lanczos3);
    let mut out = RgbaImage::new(w, h);
    for (x, y, px) in out.enumerate_pixels_mut() {
        let c = resized.get_pixel(x, y).0;
        px.0 = [c[0], c[1], c[2], original.get_pixel(x, y).0[3]];
    }
    out
}

impl StyleWork {
    fn request(&self, job: &Job, image: RgbImage, slot: usize) -> ModelRequest {
        ModelRequest {
            image,
            prompt: job.prompt.clone(),
            negative_prompt: job.negative_prompt.clone(),
            strength: job.strength,
            guidance: job.guidance,
            steps: job.steps,
            // Each texture of a mesh gets its own noise; slot 0 uses the job's seed as an image would.
            seed: (job.seed + slot as u64) & (u64::MAX >> 1),
            scheduler: job.scheduler.clone(),
            condition: Condition::None,
        }
    }

    fn write(&self, job: &Job, state: State, outputs: Vec<RgbImage>) -> Result<Finished, String> {
        let rel = sample_rel_dir(&job.sample_id);
        let dir = self.output.join(&rel);
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        match state {
            State::Image { original } => {
                let out = outputs
                    .first()
                    .ok_or("the model returned no image for this sample")?;
                let img = back_to_source(out, &original);
                let sha =
                    write_png_atomic(&img, &dir.join("image.png")).map_err(|e| e.to_string())?;
                Ok(Finished {
                    width: Some(i64::from(img.width())),
                    height: Some(i64::from(img.height())),
                    image_path: Some(format!("{rel}/image.png")),
                    output_sha256: Some(sha),
                    ..Finished::default()
                })
            }
            State::Mesh { asset, slots } => {
                if outputs.len() != slots.len() {
                    return Err(format!(
                        "the model returned {} textures for {} base-color slots",
                        outputs.len(),
                        slots.len()
                    ));
                }
                let mut textures = Vec::new();
                let mut paths = Vec::new();
                for ((slot, original), out) in slots.iter().zip(&outputs) {
                    let img = back_to_source(out, original);
                    let name = format!("texture_{slot}.png");
                    write_png_atomic(&img, &dir.join(&name)).map_err(|e| e.to_string())?;
                    paths.push(format!("{rel}/{name}"));
                    textures.push((*slot, img));
                }
                let sha = write_retextured_glb(&asset, &textures, &dir.join("asset.glb"))
                    .map_err(|e| e.to_string())?;
                let (w, h) = textures.first().map_or((0, 0), |(_, t)| t.dimensions());
                Ok(Finished {
                    width: Some(i64::from(w)),
                    height: Some(i64::from(h)),
                    texture_path: Some(paths.join(";")),
                    asset_path: Some(format!("{rel}/asset.glb")),
                    output_sha256: Some(sha),
                    ..Finished::default()
                })
            }
        }
    }
}

impl StageWork for StyleWork {
    fn prepare(&self, job: &Job) -> Result<Prepared, String> {
        if job.stage_kind != StageKind::Style {
            return Err(format!(
                "internal: stage `{}` ({}) reached the style stage",
                job.stage,
                job.stage_kind.as_str()
            ));
        }
        let path: &Path = &job.source.path;
        match job.source.kind {
            SourceKind::Image => {
                let original = load_image(path).map_err(|e| e.to_string())?;
                let input = to_model_input(&original, job.size);
                Ok(Prepared {
                    requests: vec![self.request(job, input, 0)],
                    state: Box::new(State::Image { original }),
                    one_batch: false,
                })
            }
            SourceKind::Mesh => {
                let asset = MeshAsset::load(path).map_err(|e| e.to_string())?;
                let slots: Vec<(usize, RgbaImage)> = asset
                    .base_color_slots()
                    .into_iter()
                    .map(|s| (s.slot, s.image))
                    .collect();
                if slots.is_empty() {
                    return Err(format!(
                        "{}: the mesh has no base-color texture slot to re-texture",
                        path.display()
                    ));
                }
                let requests = slots
                    .iter()
                    .map(|(slot, img)| self.request(job, to_model_input(img, job.size), *slot))
                    .collect();
                Ok(Prepared {
                    requests,
                    one_batch: false,
                    state: Box::new(State::Mesh {
                        asset: Box::new(asset),
                        slots,
                    }),
                })
            }
        }
    }

    fn finish(
        &self,
        job: &Job,
        state: Box<dyn Any + Send>,
        outputs: Vec<RgbImage>,
    ) -> Result<Finished, String> {
        let state = *state
            .downcast::<State>()
            .map_err(|_| "internal: the style stage got another stage's state".to_string())?;
        let result = self.write(job, state, outputs);
        if result.is_err() {
            // A failed sample leaves no files: its row says why, and a resumed run starts it afresh.
            let _ = std::fs::remove_dir_all(self.output.join(sample_rel_dir(&job.sample_id)));
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resizing_back_restores_size_and_alpha() {
        let mut original = RgbaImage::new(10, 6);
        original.put_pixel(3, 2, image::Rgba([1, 2, 3, 40]));
        let model = to_model_input(&original, 8);
        assert_eq!(model.dimensions(), (8, 8));
        let back = back_to_source(
            &RgbImage::from_pixel(8, 8, image::Rgb([200, 100, 50])),
            &original,
        );
        assert_eq!(back.dimensions(), (10, 6));
        assert_eq!(back.get_pixel(3, 2).0, [200, 100, 50, 40]);
        assert_eq!(back.get_pixel(0, 0).0[3], 0);
    }
}
