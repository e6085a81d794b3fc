//! What `texaug validate` checks beyond the recipe itself: its source manifest, every source file, the depth
//! inputs and the model folder, without running anything. Every problem is a `file:line:col` diagnostic with a fix,
//! so one pass fixes them all.

use std::path::Path;

use texaug_stages::diffusion::config::{AutoencoderKLConfig, ClipTextConfig};
use texaug_stages::diffusion::hub;
use texaug_stages::diffusion::lora::looks_like_lora;
use texaug_stages::diffusion::model_dir::ModelSource;
use texaug_stages::diffusion::pipeline_source::{ConfigSet, Weights};
use texaug_stages::diffusion::single_file::is_single_file;
use texaug_stages::diffusion::unet_config::UNet2DConditionConfig;
use texaug_stages::render::settings::DEFAULT_RENDER_VIEWS;
use texaug_stages::source::{MeshAsset, IMAGE_EXTS};

use super::check_masks;
use super::diagnostic::Diagnostic;
use super::recipe::{estimator_hub_id_refusal, DepthSpec, LoadedRecipe, Recipe, StageKind};
use super::recipe_load::check;
use super::recipe_schema::Key;
use super::sources::{load_manifest, walk_dir, Source, SourceKind};
use crate::model::loading;

/// Every problem, and a one-line summary of what was checked.
pub fn collect(recipe_path: &Path) -> (Vec<Diagnostic>, String) {
    let (loaded, mut diags) = check(recipe_path);
    let Some(loaded) = loaded else {
        return (diags, String::new());
    };
    let r = &loaded.recipe;
    let sources = match (&r.sources.manifest, &r.sources.dir) {
        (Some(m), None) => match load_manifest(m) {
            Ok(s) => s,
            Err(e) => {
                diags.extend(e.0);
                Vec::new()
            }
        },
        (None, Some(d)) => match walk_dir(d, r.sources.label.as_deref()) {
            Ok(s) => s,
            Err(e) => {
                diags.extend(e.0);
                Vec::new()
            }
        },
        _ => Vec::new(),
    };
    if sources.is_empty() && (r.sources.manifest.is_some() ^ r.sources.dir.is_some()) {
        let key = if r.sources.manifest.is_some() {
            "manifest"
        } else {
            "dir"
        };
        diags.push(loaded.diagnostic_at(
            &[Key::Name("sources"), Key::Name(key)],
            "the sources list no image or mesh".into(),
            "add rows (id, path, label) to the manifest, or images/meshes to the folder",
        ));
    }
    diags.extend(check_depth(&loaded, &sources));
    for s in &sources {
        diags.extend(check_source(s));
    }
    diags.extend(check_model(&loaded, &sources));
    diags.extend(check_loras(&loaded));
    diags.extend(check_embeddings(&loaded));
    diags.extend(check_backgrounds(&loaded));
    let (jobs, views) = planned_counts(r, &sources);
    let views = if views > 0 {
        format!(", {views} rendered views")
    } else {
        String::new()
    };
    let summary = format!(
        "{} sources, {} stages, {jobs} jobs{views}",
        sources.len(),
        r.stages.len()
    );
    (diags, summary)
}

/// Render stages with `background = "images"`: the folder holds at least one image (each is read at run start).
fn check_backgrounds(loaded: &LoadedRecipe) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (i, s) in loaded.recipe.stages.iter().enumerate() {
        let Some(dir) = &s.backgrounds else { continue };
        let has_image = std::fs::read_dir(dir).is_ok_and(|entries| {
            entries.flatten().any(|e| {
                e.path()
                    .extension()
                    .and_then(|x| x.to_str())
                    .is_some_and(|x| IMAGE_EXTS.contains(&x.to_ascii_lowercase().as_str()))
            })
        });
        if !has_image {
            out.push(loaded.diagnostic_at(
                &[Key::Name("stage"), Key::Index(i), Key::Name("backgrounds")],
                format!("the backgrounds folder {} holds no images", dir.display()),
                "put PNG, JPEG or WebP photos there, or use background = \"random\"",
            ));
        }
    }
    out
}

/// The jobs and rendered views the plan will hold (as `plan` counts them: a render after a stage rides on that
/// stage's mesh jobs, a render of the sources makes a job per mesh and variant).
fn planned_counts(r: &Recipe, sources: &[Source]) -> (u64, u64) {
    let meshes = sources
        .iter()
        .filter(|s| s.kind == SourceKind::Mesh)
        .count() as u64;
    let all = sources.len() as u64;
    let (mut jobs, mut views) = (0u64, 0u64);
    for stage in &r.stages {
        let variants = u64::from(stage.variants);
        match (stage.kind, &stage.after) {
            (StageKind::Render, Some(_)) => {}
            (StageKind::Render, None) => {
                jobs += meshes * variants;
                views += meshes * variants * u64::from(stage.views.unwrap_or(DEFAULT_RENDER_VIEWS));
            }
            _ => {
                jobs += all * variants;
                let name = stage.stage_name();
                if let Some(render) = r.stages.iter().find(|t| {
                    t.kind == StageKind::Render && t.after.as_deref() == Some(name.as_str())
                }) {
                    views +=
                        meshes * variants * u64::from(render.views.unwrap_or(DEFAULT_RENDER_VIEWS));
                }
            }
        }
    }
    (jobs, views)
}

/// Depth stages: the estimator and ControlNet exist, and every image source has a way to get depth.
fn check_depth(loaded: &LoadedRecipe, sources: &[Source]) -> Vec<Diagnostic> {
    let r = &loaded.recipe;
    let mut out = Vec::new();
    let estimator = r.depth.as_ref().and_then(|d| d.estimator.as_ref());
    if let Some(id) = r.depth.as_ref().and_then(DepthSpec::estimator_hub_id) {
        out.push(loaded.diagnostic_at(
            &[Key::Name("depth"), Key::Name("estimator")],
            estimator_hub_id_refusal(id),
            "export the estimator to TorchScript yourself (README: \"Exporting MiDaS / DPT to TorchScript\") and \
             set estimator to the path of the .pt file",
        ));
    } else if let Some(e) = estimator {
        if !e.is_file() {
            out.push(loaded.diagnostic_at(
                &[Key::Name("depth"), Key::Name("estimator")],
                format!("depth estimator not found: {}", e.display()),
                "point estimator at a TorchScript file (torch.jit.save of a MiDaS/DPT model)",
            ));
        }
    }
    for (i, stage) in r.stages.iter().enumerate() {
        if stage.kind != StageKind::Depth {
            continue;
        }
        if let Some(c) = &stage.controlnet {
            if !c.join("config.json").is_file() {
                out.push(loaded.diagnostic_at(
                    &[Key::Name("stage"), Key::Index(i), Key::Name("controlnet")],
                    format!("ControlNet folder {} has no config.json", c.display()),
                    "point controlnet at a diffusers ControlNet folder (config.json + safetensors)",
                ));
            }
        }
        if estimator.is_none() {
            for s in sources
                .iter()
                .filter(|s| s.kind == SourceKind::Image && s.depth.is_none())
            {
                out.push(Diagnostic::new(
                    &s.origin,
                    s.line,
                    1,
                    format!(
                        "source `{}` is an image without depth, and depth stage `{}` needs depth",
                        s.id,
                        stage.stage_name()
                    ),
                    "add a `depth` column naming a depth image (larger = nearer), or set [depth] estimator = \"midas.pt\" in the recipe",
                ));
            }
        }
    }
    if let Err(e) = r.controlnet() {
        out.push(loaded.diagnostic_at(
            &[Key::Name("stage")],
            e,
            "give every depth stage of one recipe the same controlnet",
        ));
    }
    out
}

/// Whether some stage needs a 5-channel (depth) UNet.
fn needs_depth_unet(r: &Recipe) -> bool {
    r.stages
        .iter()
        .any(|s| s.kind == StageKind::Depth && s.controlnet.is_none())
}

/// `in_channels` of the model's UNet config, when it can be read.
fn unet_in_channels(dir: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(dir.join("unet/config.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["in_channels"].as_u64()
}

fn check_source(s: &Source) -> Vec<Diagnostic> {
    let at = |message: String, fix: &str| Diagnostic::new(&s.origin, s.line, 1, message, fix);
    let mut out = Vec::new();
    if !s.path.is_file() {
        out.push(at(
            format!("source `{}`: file not found: {}", s.id, s.path.display()),
            "fix the path (relative paths start at the manifest's folder)",
        ));
        return out;
    }
    match s.kind {
        SourceKind::Image => {
            if let Err(e) = check_masks::image_dimensions(&s.path) {
                out.push(at(
                    format!(
                        "source `{}`: {} is not a readable image: {e}",
                        s.id,
                        s.path.display()
                    ),
                    "use a PNG, JPEG or WebP file; re-export it if it is corrupt",
                ));
            }
        }
        SourceKind::Mesh => match MeshAsset::load(&s.path) {
            Ok(asset) if asset.base_color_slots().is_empty() => out.push(at(
                format!(
                    "source `{}`: {} has no base-color texture to re-texture",
                    s.id,
                    s.path.display()
                ),
                "give its materials a base color (texture or factor) and UVs",
            )),
            Ok(_) => {}
            Err(e) => out.push(at(
                format!("source `{}`: {e}", s.id),
                "fix or remove this row",
            )),
        },
    }
    if let Some(d) = &s.depth {
        if !d.is_file() {
            out.push(at(
                format!("source `{}`: depth image not found: {}", s.id, d.display()),
                "fix the depth path or leave the column empty",
            ));
        }
    }
    out.extend(s.mask.as_deref().and_then(|m| check_masks::mask(s, m)));
    out
}

/// Each stage's kind against the UNet's input channels (5: depth-conditioned, 9: inpainting, which needs a mask
/// for every source).
fn check_unet_kind(
    loaded: &LoadedRecipe,
    sources: &[Source],
    channels: u64,
    model: &str,
) -> Vec<Diagnostic> {
    if channels == 9 {
        return check_masks::inpainting_model(loaded, sources, model);
    }
    let depth_unet = channels == 5;
    let mut out = Vec::new();
    for (i, stage) in loaded.recipe.stages.iter().enumerate() {
        let wants_depth_unet = stage.kind == StageKind::Depth && stage.controlnet.is_none();
        if wants_depth_unet != depth_unet {
            let (message, fix) = match (stage.kind, wants_depth_unet) {
                (StageKind::Depth, true) => (
                    format!("depth stage `{}` needs a depth-conditioned model (SD 2-depth, 5 UNet input channels); {model} has {channels}", stage.stage_name()),
                    "use an SD 2-depth model, or add controlnet = \"<ControlNet folder>\" to the stage for an SD 1.x model",
                ),
                _ => (
                    format!("stage `{}` runs plain or ControlNet img2img, but {model} is depth-conditioned (5 UNet input channels)", stage.stage_name()),
                    "use an SD 1.x/2.x model for this recipe, or make the stage kind = \"depth\" without controlnet",
                ),
            };
            out.push(loaded.diagnostic_at(
                &[Key::Name("stage"), Key::Index(i), Key::Name("kind")],
                message,
                fix,
            ));
        }
    }
    out
}

/// A single-file checkpoint: its header tells a kind (or the recipe does), its `config` folder and `vae` exist.
fn check_single_file(loaded: &LoadedRecipe, sources: &[Source]) -> Vec<Diagnostic> {
    let model = &loaded.recipe.model;
    let key = match (&model.config, &model.vae) {
        (Some(_), _) => "config",
        (None, Some(_)) => "vae",
        _ => "path",
    };
    let at_key = |key: &str, message: String, fix: &str| {
        loaded.diagnostic_at(&[Key::Name("model"), Key::Name(key)], message, fix)
    };
    match loading::resolve(model) {
        Err(e) => {
            let message = format!("{e:#}");
            // The config folder or VAE when the message is about them, else the file itself.
            let key = if message.contains("does not exist") || message.contains("lacks") {
                key
            } else {
                "path"
            };
            vec![at_key(
                key,
                message,
                "see `texaug model inspect FILE` for what the file holds",
            )]
        }
        Ok((_, src)) => {
            let channels = match (&src.configs, &src.weights) {
                (ConfigSet::Folder(_), _) => src.configs.unet().map(|c| c.in_channels).ok(),
                (_, Weights::SingleFile(f)) => Some(f.detected.in_channels),
                _ => None,
            };
            let name = model
                .path
                .as_deref()
                .map_or_else(String::new, |p| p.display().to_string());
            channels
                .and_then(|c| u64::try_from(c).ok())
                .map(|c| check_unet_kind(loaded, sources, c, &name))
                .unwrap_or_default()
        }
    }
}

/// Each `[[model.lora]]` file: there, and a LoRA (its layers are matched to the model when it loads).
fn check_loras(loaded: &LoadedRecipe) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let model = loaded.recipe.model.loras.iter().enumerate().map(|(i, l)| {
        (
            vec![Key::Name("model"), Key::Name("lora"), Key::Index(i)],
            l,
        )
    });
    let stages = loaded.recipe.stages.iter().enumerate().flat_map(|(s, st)| {
        st.loras.iter().enumerate().map(move |(i, l)| {
            (
                vec![
                    Key::Name("stage"),
                    Key::Index(s),
                    Key::Name("loras"),
                    Key::Index(i),
                ],
                l,
            )
        })
    });
    for (mut key, l) in model.chain(stages) {
        key.push(Key::Name("path"));
        let at = |message: String, fix: &str| loaded.diagnostic_at(&key, message, fix);
        if !l.path.is_file() {
            out.push(at(
                format!("LoRA file not found: {}", l.path.display()),
                "fix the path (relative paths start at the recipe's folder)",
            ));
        } else if !looks_like_lora(&l.path) {
            out.push(at(
                format!(
                    "{} holds no LoRA layers (no lora_down/lora_up or lora_A/lora_B pairs)",
                    l.path.display()
                ),
                "give a kohya/A1111 or diffusers/PEFT LoRA .safetensors (`texaug model inspect FILE` says what it is)",
            ));
        }
    }
    out
}

/// Each `[[model.embedding]]` file is there (its width and token are checked when the model loads).
fn check_embeddings(loaded: &LoadedRecipe) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (i, e) in loaded.recipe.model.embeddings.iter().enumerate() {
        if !e.path.is_file() {
            out.push(loaded.diagnostic_at(
                &[
                    Key::Name("model"),
                    Key::Name("embedding"),
                    Key::Index(i),
                    Key::Name("path"),
                ],
                format!("embedding file not found: {}", e.path.display()),
                "fix the path (relative paths start at the recipe's folder)",
            ));
        }
    }
    out
}

/// The model folder: present, with the components and configs a Stable Diffusion pipeline needs.
fn check_model(loaded: &LoadedRecipe, sources: &[Source]) -> Vec<Diagnostic> {
    let model = &loaded.recipe.model;
    if model.path.as_deref().is_some_and(is_single_file) {
        return check_single_file(loaded, sources);
    }
    let key = if model.path.is_some() { "path" } else { "id" };
    let at = |message: String, fix: &str| {
        loaded.diagnostic_at(&[Key::Name("model"), Key::Name(key)], message, fix)
    };
    if let Some(v) = model.vae.as_deref().filter(|v| !v.exists()) {
        return vec![loaded.diagnostic_at(
            &[Key::Name("model"), Key::Name("vae")],
            format!("[model] vae {} does not exist", v.display()),
            "give a diffusers AutoencoderKL folder or a .safetensors VAE file",
        )];
    }
    let dir = match (&model.path, &model.id) {
        (Some(p), _) => p.clone(),
        // validate reads the cache only: a check must not start a multi-gigabyte download.
        (None, Some(id)) => match ModelSource::from_id(id).resolve_cached_in(&hub::cache_dir()) {
            Ok(d) => d.root,
            Err(e) => {
                return vec![at(
                    e.to_string(),
                    &format!(
                        "fetch it into the cache with `texaug model fetch {id}` (validate never downloads; `texaug \
                         run` does unless HF_HUB_OFFLINE=1), or set path = \"<diffusers folder>\""
                    ),
                )]
            }
        },
        (None, None) => return Vec::new(),
    };
    let dir = &dir;
    if !dir.is_dir() {
        return vec![at(
            format!("model folder not found: {}", dir.display()),
            if needs_depth_unet(&loaded.recipe) {
                "set path to an SD 2-depth diffusers folder, or make a tiny one with `texaug model init-tiny --kind sd2-depth --out DIR`"
            } else {
                "set path to a diffusers folder, or make a tiny one with `texaug model init-tiny --kind sd1 --out DIR`"
            },
        )];
    }
    let mut out = Vec::new();
    let need = |rel: &str| dir.join(rel).is_file();
    for rel in [
        "model_index.json",
        "unet/config.json",
        "vae/config.json",
        "text_encoder/config.json",
        "tokenizer/vocab.json",
        "tokenizer/merges.txt",
        "scheduler/scheduler_config.json",
    ] {
        if !need(rel) {
            out.push(at(
                format!("model folder {} lacks {rel}", dir.display()),
                "download the complete diffusers repository (all of its folders)",
            ));
        }
    }
    let fix = "the config does not describe a network texaug can build; use a Stable Diffusion 1.x/2.x model";
    if need("unet/config.json") {
        if let Err(e) = UNet2DConditionConfig::from_file(&dir.join("unet/config.json"))
            .and_then(|c| c.validate())
        {
            out.push(at(e.to_string(), fix));
        }
    }
    if need("vae/config.json") {
        if let Err(e) =
            AutoencoderKLConfig::from_file(&dir.join("vae/config.json")).and_then(|c| c.validate())
        {
            out.push(at(e.to_string(), fix));
        }
    }
    if need("text_encoder/config.json") {
        if let Err(e) = ClipTextConfig::from_file(&dir.join("text_encoder/config.json"))
            .and_then(|c| c.validate())
        {
            out.push(at(e.to_string(), fix));
        }
    }
    if let Some(channels) = unet_in_channels(dir) {
        out.extend(check_unet_kind(
            loaded,
            sources,
            channels,
            &dir.display().to_string(),
        ));
    }
    for part in ["unet", "vae", "text_encoder"] {
        let has_weights = std::fs::read_dir(dir.join(part))
            .map(|rd| {
                rd.flatten()
                    .any(|e| e.file_name().to_string_lossy().ends_with(".safetensors"))
            })
            .unwrap_or(false);
        if dir.join(part).is_dir() && !has_weights {
            out.push(at(
                format!(
                    "model folder {} has no {part}/*.safetensors weights",
                    dir.display()
                ),
                "download the safetensors weights (texaug does not read .bin pickles)",
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::recipe::looks_like_hub_id;

    const RECIPE: &str = r#"
name = "mugs"
seed = 7
[sources]
manifest = "m.csv"
[model]
path = "models/tiny"
[depth]
estimator = "ESTIMATOR"
[[stage]]
kind = "style"
prompts = ["a {label} of oak"]
strength = [0.4, 0.8]
steps = 4
size = 64
"#;

    /// The messages `validate` gives about `[depth] estimator` for a recipe naming `estimator`.
    fn estimator_messages(dir: &Path, estimator: &str) -> Vec<String> {
        let p = dir.join("r.toml");
        std::fs::write(&p, RECIPE.replace("ESTIMATOR", estimator)).unwrap();
        let (diags, _) = collect(&p);
        diags
            .into_iter()
            .map(|d| d.message)
            .filter(|m| m.contains("estimator"))
            .collect()
    }

    #[test]
    fn a_hub_id_as_estimator_is_refused_and_a_missing_file_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let m = estimator_messages(dir.path(), "Intel/dpt-hybrid-midas");
        assert_eq!(m.len(), 1, "{m:?}");
        assert!(
            m[0].contains("\"Intel/dpt-hybrid-midas\" looks like a hub id")
                && m[0].contains("is a local TorchScript file; texaug does not download code")
                && m[0].contains("export the estimator yourself (see README) and give its path"),
            "{}",
            m[0]
        );

        let m = estimator_messages(dir.path(), "models/midas.pt");
        assert_eq!(m.len(), 1, "{m:?}");
        assert!(m[0].starts_with("depth estimator not found"), "{}", m[0]);

        // An existing file of that shape is the user's file, not a hub id.
        std::fs::create_dir_all(dir.path().join("Intel")).unwrap();
        std::fs::write(
            dir.path().join("Intel/dpt-hybrid-midas"),
            b"not torchscript",
        )
        .unwrap();
        let m = estimator_messages(dir.path(), "Intel/dpt-hybrid-midas");
        assert!(m.is_empty(), "{m:?}");
    }

    #[test]
    fn hub_ids_have_the_shape_org_slash_name_without_extension() {
        assert!(looks_like_hub_id("Intel/dpt-hybrid-midas"));
        assert!(looks_like_hub_id("intel-isl/MiDaS"));
        for not in [
            "midas.pt",
            "models/midas.pt",
            "/abs/name",
            "./org/name",
            "../org/name",
            "a/b/c",
            "org/name.pt",
            "org/",
            "/name",
            "org/name with space",
            "C:\\models\\midas",
        ] {
            assert!(!looks_like_hub_id(not), "{not}");
        }
    }
}
