//! The run's quality score (`[score]`): every image a run writes — an image sample, a rendered view — scored
//! against the recipe's score prompt for its label, and the stage's `min_clip_score` deciding which are filtered.
//! The engine sees an [`ImageScorer`]; the CLIP model is one, loaded once per run on the CPU.

use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::Context;
use image::RgbImage;
use texaug_stages::diffusion::hub;
use texaug_stages::score::ClipScorer;

use crate::config::recipe::ScoreSpec;
use crate::config::sources::Source;
use crate::plan::jobs::fill_prompt;

/// Scores images against texts, one score per pair, 0..=100.
pub trait ImageScorer: Send + Sync {
    fn score(&self, images: &[RgbImage], texts: &[String]) -> Result<Vec<f64>, String>;
}

/// The CLIP model as an [`ImageScorer`]; one call at a time (its tensors are shared by every finish thread).
pub struct ClipImageScorer(Mutex<ClipScorer>);

impl ImageScorer for ClipImageScorer {
    fn score(&self, images: &[RgbImage], texts: &[String]) -> Result<Vec<f64>, String> {
        let scorer = self.0.lock().unwrap_or_else(|p| p.into_inner());
        scorer.score(images, texts).map_err(|e| e.to_string())
    }
}

/// The scorer and the prompt template images are scored against.
pub struct Scoring {
    pub scorer: Box<dyn ImageScorer>,
    pub prompt: String,
}

impl Scoring {
    /// The CLIP model `[score]` names: its folder, or its hub id from the local Hugging Face cache.
    pub fn load(spec: &ScoreSpec) -> anyhow::Result<Scoring> {
        let dir: PathBuf = match (&spec.path, &spec.id) {
            (Some(p), _) => p.clone(),
            (None, Some(id)) => hub::snapshot_dir(&hub::cache_dir(), id, None)
                .map_err(|e| anyhow::anyhow!("{e}"))
                .with_context(|| {
                    format!(
                        "[score] id = \"{id}\" is not in the local Hugging Face cache: fetch it with \
                         `huggingface-cli download {id} config.json model.safetensors preprocessor_config.json`"
                    )
                })?,
            (None, None) => anyhow::bail!("[score] needs `path` or `id`"),
        };
        let scorer = ClipScorer::load(&dir, tch::Device::Cpu)
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| format!("loading the [score] CLIP model {}", dir.display()))?;
        Ok(Scoring {
            scorer: Box::new(ClipImageScorer(Mutex::new(scorer))),
            prompt: spec.prompt.clone(),
        })
    }

    /// The scores of `images` of one source.
    pub fn score(&self, images: &[RgbImage], source: &Source) -> Result<Vec<f64>, String> {
        let text = fill_prompt(&self.prompt, source, &Default::default());
        let texts = vec![text; images.len()];
        let scores = self.scorer.score(images, &texts)?;
        if scores.len() != images.len() {
            return Err(format!(
                "the scorer returned {} scores for {} images",
                scores.len(),
                images.len()
            ));
        }
        // Four decimals: the same value whichever language re-reads the manifest.
        Ok(scores
            .into_iter()
            .map(|s| (s * 1e4).round() / 1e4)
            .collect())
    }
}
