//! Re-texturing one asset with a loaded model, in one call: prepare, run its requests batch by batch, complete.

use image::RgbImage;

use crate::diffusion::img2img::StableDiffusion;
use crate::diffusion::request::{batch_key, BatchKey, Img2ImgRequest};

use super::error::JobError;
use super::prepare::{prepare, Stage};
use super::retextured::Retextured;
use super::settings::{AssetRef, JobSettings};

/// Runs requests through `sd`, those with equal batch keys as one batch (in order of first appearance); the
/// images come back in request order.
pub fn run_requests(
    sd: &StableDiffusion,
    requests: &[Img2ImgRequest],
) -> Result<Vec<RgbImage>, JobError> {
    let mut groups: Vec<(BatchKey, Vec<usize>)> = Vec::new();
    for (i, r) in requests.iter().enumerate() {
        let key = batch_key(r);
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, g)) => g.push(i),
            None => groups.push((key, vec![i])),
        }
    }
    let mut out: Vec<Option<RgbImage>> = vec![None; requests.len()];
    for (_, group) in groups {
        let batch: Vec<Img2ImgRequest> = group.iter().map(|&i| requests[i].clone()).collect();
        let images = sd.generate(&batch)?;
        if images.len() != batch.len() {
            return Err(JobError::OutputCount {
                got: images.len(),
                expected: batch.len(),
                what: "one batch".into(),
            });
        }
        for (i, img) in group.into_iter().zip(images) {
            out[i] = Some(img);
        }
    }
    Ok(out.into_iter().flatten().collect())
}

/// Re-textures one asset: the whole job of one sample, without the pipeline. Write the result with
/// [`Retextured::write`].
///
/// ```no_run
/// # use texaug_stages::job::*;
/// # use texaug_stages::diffusion::{img2img::StableDiffusion, model_dir::ModelSource};
/// # use texaug_stages::source::SourceKind;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let source = ModelSource::Dir("models/sd-2-depth".into());
/// let sd = StableDiffusion::load(&source, tch::Device::Cpu, tch::Kind::Float, None)?;
/// let asset = AssetRef { id: "mug", path: "mug.glb".as_ref(), kind: SourceKind::Mesh, depth: None, mask: None };
/// let settings = JobSettings {
///     prompt: "a mug carved from oak".into(),
///     negative_prompt: String::new(),
///     strength: 0.6,
///     guidance: 7.5,
///     steps: 30,
///     seed: 42,
///     scheduler: None,
///     size: ModelSize::Sized { side: 512, fit: Fit::Keep },
///     adapters: 0,
///     xl: Default::default(),
///     denoising_start: None,
/// };
/// let stage = Stage::Depth(DepthStage::default());
/// retexture(&sd, &asset, &stage, &settings)?.write("out/mug".as_ref())?;
/// # Ok(()) }
/// ```
pub fn retexture(
    sd: &StableDiffusion,
    asset: &AssetRef<'_>,
    stage: &Stage<'_>,
    settings: &JobSettings,
) -> Result<Retextured, JobError> {
    let prepared = prepare(asset, stage, settings)?;
    let outputs = run_requests(sd, &prepared.requests)?;
    prepared.complete(outputs)
}
