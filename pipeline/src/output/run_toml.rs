//! `run.toml`: the recipe as resolved, with the hash of every file the run loads, beside the samples: `[model]`
//! (the folder's files; its `hash` is the `model_hash` every row carries, combining all components), and where
//! the recipe names them `[controlnet]`, `[estimator]`, `[model_config]` (a single file's config folder) and
//! `[vae]` (a replacement VAE), each with its own files and hash.

use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;
use texaug_stages::files;

use super::disk::OutputUnwritable;
use super::layout::RUN_TOML;
use crate::config::recipe::{LoadedRecipe, Recipe};
use crate::model::info::{ComponentInfo, ModelInfo};

#[derive(Serialize)]
struct RunToml<'a> {
    texaug_version: &'a str,
    recipe_file: String,
    recipe_hash: &'a str,
    recipe: &'a Recipe,
    model: &'a ModelInfo,
    #[serde(skip_serializing_if = "Option::is_none")]
    controlnet: Option<&'a ComponentInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    estimator: Option<&'a ComponentInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    model_config: Option<&'a ComponentInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    vae: Option<&'a ComponentInfo>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    lora: &'a [ComponentInfo],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    embedding: &'a [ComponentInfo],
}

pub fn write_run_toml(output: &Path, loaded: &LoadedRecipe, model: &ModelInfo) -> Result<()> {
    let doc = RunToml {
        texaug_version: env!("CARGO_PKG_VERSION"),
        recipe_file: loaded.path.display().to_string(),
        recipe_hash: &loaded.hash,
        recipe: &loaded.recipe,
        model,
        controlnet: model.controlnet.as_ref(),
        estimator: model.estimator.as_ref(),
        model_config: model.config.as_ref(),
        vae: model.vae.as_ref(),
        lora: &model.loras,
        embedding: &model.embeddings,
    };
    let text = toml::to_string_pretty(&doc).context("encoding run.toml")?;
    let path = output.join(RUN_TOML);
    files::write_atomic(&path, text.as_bytes()).map_err(|e| {
        OutputUnwritable::classify(&e, "run.toml", &path)
            .map(anyhow::Error::new)
            .unwrap_or_else(|| anyhow::Error::new(e).context(format!("writing {}", path.display())))
    })?;
    Ok(())
}
