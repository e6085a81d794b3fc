//! The jobs (pure): recipe × sources → jobs in the sources' order (then stage, variant), each with its seed,
//! prompt and strength.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;
use sha2::{Digest, Sha256};
use texaug_stages::job::Fit;
use texaug_stages::random::SplitMix64;
use texaug_stages::render::settings::DEFAULT_RENDER_VIEWS;

use crate::config::recipe::{
    canonical_scheduler, Recipe, StageKind, StageSpec, Strength, DEFAULT_AZIMUTHS,
};
use crate::config::sources::{Source, SourceKind};

/// One sample to make.
#[derive(Debug, Clone, Serialize)]
pub struct Job {
    pub sample_id: String,
    #[serde(skip)]
    pub source: Arc<Source>,
    pub source_id: String,
    pub stage_index: usize,
    pub stage: String,
    pub stage_kind: StageKind,
    pub variant: u32,
    pub seed: u64,
    pub prompt: String,
    pub negative_prompt: String,
    pub strength: f64,
    pub guidance: f64,
    pub steps: u32,
    /// Canonical scheduler name, or None for the model's own scheduler config.
    pub scheduler: Option<String>,
    pub size: u32,
    #[serde(skip_serializing_if = "Fit::is_default")]
    pub fit: Fit,
    pub views: Option<u32>,
    /// The stage's LoRA set (its index + 1 when it names `loras`, else 0: the model as loaded).
    #[serde(skip_serializing_if = "is_zero")]
    pub lora_set: u32,
    /// The index of its fixed batch in the full plan ([`super::batching::units`]).
    pub unit: usize,
    /// The render stage that renders this job's mesh (after it, or of the source alone), with its view ids.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub render: Option<JobRender>,
    /// Whether the job has a row of its own: a re-textured sample does; a render of a source mesh has only its
    /// views' rows.
    pub own_row: bool,
    /// Already recorded by the run being resumed: it runs again only so that the rest of its unit batches as in
    /// an uninterrupted run; nothing of it is written or recorded.
    #[serde(skip)]
    pub rerun_only: bool,
}

/// What a job renders once its mesh is made: the render stage, the view samples' ids (one row each) and the seed
/// their cameras and backgrounds are drawn from.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct JobRender {
    pub stage_index: usize,
    pub stage: String,
    pub view_ids: Vec<String>,
    pub seed: u64,
}

impl Job {
    /// The ids of every row the job records: its views', then its own. The job is done when all are recorded ok.
    pub fn row_ids(&self) -> impl Iterator<Item = &str> {
        let views = self
            .render
            .iter()
            .flat_map(|r| r.view_ids.iter().map(String::as_str));
        views.chain(self.own_row.then_some(self.sample_id.as_str()))
    }
}

/// `sample_id` = hex(sha256(source id ‖ 0 ‖ stage name ‖ 0 ‖ variant))[..16]. The zero bytes keep ("ab","c") and
/// ("a","bc") apart.
pub fn sample_id(source_id: &str, stage: &str, variant: u32) -> String {
    let mut h = Sha256::new();
    h.update(source_id.as_bytes());
    h.update([0u8]);
    h.update(stage.as_bytes());
    h.update([0u8]);
    h.update(variant.to_string().as_bytes());
    hex::encode(&h.finalize()[..8])
}

/// A job's seed in [0, 2^63) so it fits every signed 64-bit column and `torch.Generator.manual_seed`.
pub fn job_seed(recipe_seed: u64, sample_id: &str) -> u64 {
    let mut h = Sha256::new();
    h.update(recipe_seed.to_le_bytes());
    h.update(sample_id.as_bytes());
    let d = h.finalize();
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    u64::from_le_bytes(b) >> 1
}

fn sample_strength(strength: Strength, seed: u64) -> f64 {
    match strength {
        Strength::Fixed(v) => v,
        Strength::Range([lo, hi]) => {
            let u = SplitMix64::new(seed).next_f64();
            // Four decimals: readable in manifests, and the same value whichever language re-reads it.
            ((lo + u * (hi - lo)) * 1e4).round() / 1e4
        }
    }
}

/// Expands `{label}` (and `{id}`) in a prompt.
pub fn fill_prompt(
    template: &str,
    source: &Source,
    class_tokens: &HashMap<String, String>,
) -> String {
    // A label with an embedding of its own (`[[model.embedding]] label = …`) is written as that token.
    let label = class_tokens.get(&source.label).unwrap_or(&source.label);
    template
        .replace("{label}", label)
        .replace("{id}", &source.id)
}

/// Label → token of the embeddings that stand for a class (DA-Fusion's per-class token).
pub fn class_tokens(recipe: &Recipe) -> HashMap<String, String> {
    recipe
        .model
        .embeddings
        .iter()
        .filter_map(|e| Some((e.label.clone()?, e.token.clone()?)))
        .collect()
}

/// The render of a job's mesh by render stage `index` (`job_id` being the job's sample id): view `i`'s id is
/// [`sample_id`]`(job_id, render stage, i)`.
fn job_render(recipe: &Recipe, index: usize, job_id: &str) -> JobRender {
    let stage = &recipe.stages[index];
    let name = stage.stage_name();
    let views = stage.views.unwrap_or(DEFAULT_RENDER_VIEWS);
    JobRender {
        stage_index: index,
        view_ids: (0..views).map(|i| sample_id(job_id, &name, i)).collect(),
        seed: job_seed(recipe.seed, &format!("{job_id}\0{name}")),
        stage: name,
    }
}

/// The render stage that comes after stage `index` of the recipe, if any.
fn render_after(recipe: &Recipe, index: usize) -> Option<usize> {
    let name = recipe.stages[index].stage_name();
    recipe
        .stages
        .iter()
        .position(|s| s.kind == StageKind::Render && s.after.as_deref() == Some(name.as_str()))
}

/// The cameras a depth stage renders a mesh from: the azimuth ring plus top and bottom.
fn planned_views(stage: &StageSpec, source: &Source) -> Option<u32> {
    (stage.kind == StageKind::Depth && source.kind == SourceKind::Mesh)
        .then(|| stage.views.unwrap_or(DEFAULT_AZIMUTHS) + 2)
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A stage's LoRA set id: its index + 1 when it names `loras`, else 0.
pub fn lora_set(stage_index: usize, stage: &crate::config::recipe::StageSpec) -> u32 {
    if stage.loras.is_empty() {
        0
    } else {
        u32::try_from(stage_index + 1).unwrap_or(u32::MAX)
    }
}

/// A job as batching and sharding see it (about 70 bytes, against ~1 KB for a [`Job`] with its strings): which
/// source, stage and variant it is, its id, seed and strength, and what else its batch key is made of. A shard
/// plans every job in this form and builds full jobs for its own batches only ([`JobBuilder`]).
#[derive(Debug, Clone, PartialEq)]
pub struct JobRef {
    pub source: u32,
    pub stage_index: u32,
    pub variant: u32,
    id: [u8; 16],
    pub seed: u64,
    pub strength: f64,
    pub steps: u32,
    pub guidance: f64,
    pub size: u32,
    /// The index of its fixed batch in the full plan.
    pub unit: usize,
}

impl JobRef {
    pub fn sample_id(&self) -> &str {
        std::str::from_utf8(&self.id).expect("sample ids are ASCII hex")
    }
}

/// Every job of the recipe over the sources, compact, in the sources' order, then stage and variant: the order
/// batches fill in, so rows appended to a manifest leave the batches of the rows before them as they were.
pub fn plan_refs(recipe: &Recipe, sources: &[Source]) -> Vec<JobRef> {
    let per_source: usize = recipe.stages.iter().map(|s| s.variants as usize).sum();
    let mut refs = Vec::with_capacity(sources.len() * per_source);
    for (source_index, source) in sources.iter().enumerate() {
        for (stage_index, stage) in recipe.stages.iter().enumerate() {
            // A render after a stage rides on that stage's jobs; one of the sources renders meshes only.
            if stage.kind == StageKind::Render
                && (stage.after.is_some() || source.kind != SourceKind::Mesh)
            {
                continue;
            }
            let stage_name = stage.stage_name();
            for variant in 0..stage.variants {
                let id = sample_id(&source.id, &stage_name, variant);
                let seed = job_seed(recipe.seed, &id);
                let mut id_bytes = [0u8; 16];
                id_bytes.copy_from_slice(id.as_bytes());
                refs.push(JobRef {
                    source: u32::try_from(source_index).unwrap_or(u32::MAX),
                    stage_index: u32::try_from(stage_index).unwrap_or(u32::MAX),
                    variant,
                    id: id_bytes,
                    seed,
                    strength: sample_strength(stage.strength, seed),
                    steps: stage.steps,
                    guidance: stage.guidance,
                    size: stage.size,
                    unit: 0,
                });
            }
        }
    }
    refs
}

/// Builds full [`Job`]s from [`JobRef`]s of one plan: the prompt filled, the scheduler named, the source shared
/// by all of its jobs.
pub struct JobBuilder<'a> {
    recipe: &'a Recipe,
    sources: &'a [Source],
    shared: HashMap<u32, Arc<Source>>,
    class_tokens: HashMap<String, String>,
}

impl<'a> JobBuilder<'a> {
    pub fn new(recipe: &'a Recipe, sources: &'a [Source]) -> Self {
        JobBuilder {
            recipe,
            sources,
            shared: HashMap::new(),
            class_tokens: class_tokens(recipe),
        }
    }

    pub fn build(&mut self, r: &JobRef) -> Job {
        let stage_index = r.stage_index as usize;
        let stage = &self.recipe.stages[stage_index];
        let sources = self.sources;
        let source = self
            .shared
            .entry(r.source)
            .or_insert_with(|| Arc::new(sources[r.source as usize].clone()))
            .clone();
        let scheduler = stage
            .scheduler
            .as_deref()
            .or(self.recipe.model.scheduler.as_deref())
            .and_then(canonical_scheduler)
            .map(str::to_string);
        let prompt = match &source.prompt {
            Some(p) => fill_prompt(p, &source, &self.class_tokens),
            None if stage.prompts.is_empty() => String::new(),
            None => {
                let t = &stage.prompts[r.variant as usize % stage.prompts.len()];
                fill_prompt(t, &source, &self.class_tokens)
            }
        };
        let render_only = stage.kind == StageKind::Render;
        let render = if render_only {
            Some(stage_index)
        } else if source.kind == SourceKind::Mesh {
            render_after(self.recipe, stage_index)
        } else {
            None
        }
        .map(|index| job_render(self.recipe, index, r.sample_id()));
        Job {
            render,
            own_row: !render_only,
            sample_id: r.sample_id().to_string(),
            source_id: source.id.clone(),
            stage_index,
            stage: stage.stage_name(),
            stage_kind: stage.kind,
            variant: r.variant,
            seed: r.seed,
            prompt,
            negative_prompt: fill_prompt(&stage.negative_prompt, &source, &self.class_tokens),
            strength: r.strength,
            guidance: stage.guidance,
            steps: stage.steps,
            scheduler,
            size: stage.size,
            fit: stage.fit,
            views: planned_views(stage, &source),
            lora_set: lora_set(stage_index, stage),
            unit: r.unit,
            rerun_only: false,
            source,
        }
    }
}

/// Every job of the recipe over the sources, in full, in the order of [`plan_refs`].
pub fn plan(recipe: &Recipe, sources: &[Source]) -> Vec<Job> {
    let mut builder = JobBuilder::new(recipe, sources);
    plan_refs(recipe, sources)
        .iter()
        .map(|r| builder.build(r))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::recipe::{DevicesSpec, ModelSpec, SourcesSpec, StageSpec};
    use std::collections::HashSet;
    use std::path::PathBuf;

    fn source(id: &str, label: &str, prompt: Option<&str>) -> Source {
        Source {
            id: id.into(),
            path: PathBuf::from(format!("{id}.png")),
            label: label.into(),
            kind: SourceKind::Image,
            depth: None,
            mask: None,
            prompt: prompt.map(str::to_string),
            split: None,
            origin: PathBuf::from("m.csv"),
            line: 2,
        }
    }

    fn recipe(strength: Strength, variants: u32) -> Recipe {
        Recipe {
            name: "t".into(),
            seed: 5,
            output: None,
            sources: SourcesSpec {
                manifest: Some("m.csv".into()),
                dir: None,
                label: None,
            },
            model: ModelSpec {
                path: Some("m".into()),
                id: None,
                variant: None,
                config: None,
                kind: None,
                vae: None,
                ema: false,
                loras: Vec::new(),
                embeddings: Vec::new(),
                dtype: "auto".into(),
                scheduler: Some("dpm++2m".into()),
            },
            devices: DevicesSpec::default(),
            stages: vec![StageSpec {
                kind: StageKind::Style,
                name: None,
                prompts: vec!["a {label} of oak".into(), "a {label} of tin".into()],
                negative_prompt: "blurry".into(),
                strength,
                steps: 4,
                scheduler: None,
                guidance: 7.5,
                variants,
                size: 64,
                fit: Fit::Keep,
                views: None,
                sharpness: None,
                gutter: None,
                sync: None,
                controlnet: None,
                conditioning_scale: None,
                loras: Vec::new(),
                after: None,
                azimuth: None,
                elevation: None,
                fov: None,
                jitter: None,
                fill: None,
                supersample: None,
                ambient: None,
                background: None,
                background_color: None,
                backgrounds: None,
                format: None,
                quality: None,
                min_clip_score: None,
                keep_filtered: false,
            }],
            depth: None,
            score: None,
        }
    }

    #[test]
    fn jobs_follow_the_sources_are_unique_and_prompted_per_variant() {
        let sources = [
            source("a", "mug", None),
            source("b", "cup", Some("a {label} in gold")),
        ];
        let jobs = plan(&recipe(Strength::Fixed(0.5), 3), &sources);
        assert_eq!(jobs.len(), 6);
        let order: Vec<(&str, u32)> = jobs
            .iter()
            .map(|j| (j.source_id.as_str(), j.variant))
            .collect();
        assert_eq!(
            order,
            [("a", 0), ("a", 1), ("a", 2), ("b", 0), ("b", 1), ("b", 2)]
        );
        let ids: HashSet<_> = jobs.iter().map(|j| &j.sample_id).collect();
        assert_eq!(ids.len(), 6);
        for j in &jobs {
            let expected = match (j.source_id.as_str(), j.variant % 2) {
                ("b", _) => "a cup in gold",
                (_, 0) => "a mug of oak",
                _ => "a mug of tin",
            };
            assert_eq!(j.prompt, expected);
            assert!(j.seed < 1 << 63);
            assert_eq!(j.scheduler.as_deref(), Some("dpmpp2m"));
        }
    }

    /// DA-Fusion's recipe: a label with its own embedding is written as its token wherever `{label}` stands.
    #[test]
    fn a_label_with_an_embedding_is_written_as_its_token() {
        let mut r = recipe(Strength::Fixed(0.5), 2);
        r.model.embeddings = vec![crate::config::recipe::EmbeddingEntry {
            path: "mug.safetensors".into(),
            token: Some("<mug-class>".into()),
            label: Some("mug".into()),
        }];
        r.stages[0].negative_prompt = "a blurry {label}".into();
        let jobs = plan(&r, &[source("a", "mug", None), source("b", "cup", None)]);
        for j in &jobs {
            let word = if j.source_id == "a" {
                "<mug-class>"
            } else {
                "cup"
            };
            assert!(
                j.prompt.starts_with(&format!("a {word} of ")),
                "{}",
                j.prompt
            );
            assert_eq!(j.negative_prompt, format!("a blurry {word}"));
        }
    }

    #[test]
    fn sample_ids_hash_the_documented_fields() {
        let mut h = Sha256::new();
        h.update(b"a\0style\x002");
        assert_eq!(sample_id("a", "style", 2), hex::encode(&h.finalize()[..8]));
        assert_ne!(sample_id("ab", "c", 0), sample_id("a", "bc", 0));
    }

    #[test]
    fn ranged_strength_stays_in_range_and_varies() {
        let sources: Vec<Source> = (0..20)
            .map(|i| source(&format!("s{i}"), "mug", None))
            .collect();
        let jobs = plan(&recipe(Strength::Range([0.4, 0.8]), 2), &sources);
        let values: HashSet<u64> = jobs.iter().map(|j| j.strength.to_bits()).collect();
        assert!(jobs.iter().all(|j| (0.4..=0.8).contains(&j.strength)));
        assert!(values.len() > 20);
    }
}
