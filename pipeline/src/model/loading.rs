//! The bridge to Stable Diffusion in `texaug-stages`: the model a recipe names, and the per-device model the pool
//! drives (one loaded pipeline per device; each batch brings its own scheduler).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{anyhow, bail, Context, Result};
use image::RgbImage;
use texaug_stages::diffusion::img2img::{Img2ImgRequest, StableDiffusion};
use texaug_stages::diffusion::lora::LoraSpec;
use texaug_stages::diffusion::model_dir::ModelSource;
use texaug_stages::diffusion::pipeline_source::{ConfigSet, ModelRef, PipelineSource, Weights};
use texaug_stages::diffusion::schedulers::SchedulerKind;
use texaug_stages::diffusion::single_file::CheckpointKind;
use texaug_stages::diffusion::textual_inversion::EmbeddingSpec;

use crate::config::devices::DeviceSpec;
use crate::config::recipe::ModelSpec;
use crate::engine::pool::panic_message;
use crate::engine::work::{DeviceModel, ModelLoader};

/// How the recipe names its model: a diffusers folder or single file (`path`) or a hub id (`id`, looked up in the
/// Hugging Face cache), with its `config`, `kind`, `vae`, `variant` and `ema`.
pub fn model_ref(spec: &ModelSpec) -> Result<ModelRef> {
    let source = match (&spec.path, &spec.id) {
        (Some(p), _) => ModelSource::local(p),
        (None, Some(id)) => ModelSource::from_id(id),
        (None, None) => bail!(
            "[model] needs `path` (a diffusers folder or .safetensors file) or `id` (org/name)"
        ),
    };
    let kind = spec
        .kind
        .as_deref()
        .map(CheckpointKind::from_str)
        .transpose()
        .map_err(|e| anyhow!("[model] kind: {e}"))?;
    Ok(ModelRef {
        source,
        config: spec.config.as_deref().map(ModelSource::parse),
        kind,
        vae: spec.vae.clone(),
        variant: spec.variant.clone(),
        ema: spec.ema,
        loras: lora_specs(&spec.loras),
        embeddings: spec
            .embeddings
            .iter()
            .map(|e| EmbeddingSpec {
                path: e.path.clone(),
                token: e.token.clone(),
            })
            .collect(),
    })
}

/// Everything the recipe's model loads, found (single-file headers read, nothing else).
pub fn resolve(spec: &ModelSpec) -> Result<(ModelRef, PipelineSource)> {
    let model = model_ref(spec)?;
    let source = model
        .resolve()
        .with_context(|| format!("finding the model {}", model.id()))?;
    Ok((model, source))
}

/// Says so on stderr when a single file's kind was a guess (SD 2 weights cannot tell 512² epsilon from 768² v).
pub fn warn_if_guessed(src: &PipelineSource) {
    if let Weights::SingleFile(f) = &src.weights {
        if let (true, Some(kind), ConfigSet::Builtin { .. }) =
            (f.detected.guessed, f.detected.kind, &src.configs)
        {
            eprintln!(
                "texaug: warning: {} is a Stable Diffusion 2 checkpoint; taken as {kind} ({}) as diffusers takes \
                 it. For a 512² base model say `[model] kind = \"sd2\"`",
                f.path.display(),
                kind.describe()
            );
        }
    }
}

/// The scheduler a model runs with when the recipe names none: its scheduler config's class, by texaug's name.
pub fn default_scheduler_name(configs: &ConfigSet) -> String {
    let Some(config) = configs.scheduler_json() else {
        return "default".into();
    };
    let class = config["_class_name"].as_str().unwrap_or("default");
    let karras = config["use_karras_sigmas"].as_bool().unwrap_or(false);
    SchedulerKind::ALL
        .into_iter()
        .find(|k| {
            k.class_name() == class
                && (k.overrides().is_empty() || (*k == SchedulerKind::DpmPP2MKarras) == karras)
        })
        .map_or_else(|| class.to_string(), |k| k.as_str().to_string())
}

/// The tensor kind for a recipe's dtype on a device: the CPU always computes in fp32 (DESIGN §5).
pub fn kind_for(dtype: &str, device: DeviceSpec) -> tch::Kind {
    match (device, dtype) {
        (DeviceSpec::Cpu, _) => tch::Kind::Float,
        (_, "fp32") => tch::Kind::Float,
        (_, "bf16") => tch::Kind::BFloat16,
        _ => tch::Kind::Half,
    }
}

pub fn parse_scheduler(name: Option<&str>) -> Result<Option<SchedulerKind>> {
    name.map(|n| SchedulerKind::from_str(n).map_err(|e| anyhow!("{e}")))
        .transpose()
}

/// Loads the pipeline on one device.
pub fn load(
    model: &ModelRef,
    device: DeviceSpec,
    dtype: &str,
    scheduler: Option<SchedulerKind>,
) -> Result<StableDiffusion> {
    let sd = StableDiffusion::load_ref(model, device.to_tch(), kind_for(dtype, device), scheduler)
        .with_context(|| format!("loading model {} on {device}", model.id()))?;
    Ok(sd)
}

/// Runs a batch (its requests share one [`batch_key`](texaug_stages::diffusion::request::batch_key)), turning a
/// libtorch panic (an out-of-memory, a kernel missing on this device) into an error for the batch's samples rather
/// than the end of the run.
pub fn run_guarded(
    sd: &StableDiffusion,
    batch: &[Img2ImgRequest],
) -> Result<Vec<RgbImage>, String> {
    guarded(|| sd.generate(batch))
}

fn guarded(
    f: impl FnOnce() -> Result<Vec<RgbImage>, texaug_stages::diffusion::img2img::DiffusionError>,
) -> Result<Vec<RgbImage>, String> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(panic) => Err(format!(
            "libtorch failed during img2img: {}",
            panic_message(panic.as_ref())
        )),
    }
}

pub struct SdLoader {
    model: ModelRef,
    /// Each stage's `loras` (by stage index), the sets a job's `adapters` names.
    stage_loras: Vec<Vec<LoraSpec>>,
    dtype: String,
    default_scheduler: Option<String>,
    controlnet: Option<PathBuf>,
}

impl SdLoader {
    /// `controlnet`: a ControlNet folder attached to every pipeline this loader makes.
    pub fn new(spec: &ModelSpec, model: ModelRef, controlnet: Option<PathBuf>) -> SdLoader {
        SdLoader {
            model,
            stage_loras: Vec::new(),
            dtype: spec.dtype.clone(),
            default_scheduler: spec.scheduler.clone(),
            controlnet,
        }
    }
}

/// [`load`], then the ControlNet attached when one is named.
pub fn load_with(
    model: &ModelRef,
    device: DeviceSpec,
    dtype: &str,
    scheduler: Option<SchedulerKind>,
    controlnet: Option<&Path>,
) -> Result<StableDiffusion> {
    let mut sd = load(model, device, dtype, scheduler)?;
    // A model folder with its own `controlnet/` has it attached already: naming that folder again is a no-op.
    let own = model
        .resolve()
        .ok()
        .and_then(|s| s.own_controlnet())
        .and_then(|d| d.canonicalize().ok());
    let named = controlnet.and_then(|d| d.canonicalize().ok());
    if let Some(dir) =
        controlnet.filter(|_| !(sd.has_controlnet() && own.is_some() && own == named))
    {
        sd.attach_controlnet(dir)
            .with_context(|| format!("attaching the ControlNet {}", dir.display()))?;
    }
    Ok(sd)
}

impl SdLoader {
    /// The recipe's stages' `loras`, switched in for their jobs.
    pub fn with_stage_loras(mut self, stages: &[crate::config::recipe::StageSpec]) -> SdLoader {
        self.stage_loras = stages.iter().map(|s| lora_specs(&s.loras)).collect();
        self
    }
}

/// A recipe's LoRA entries as the library takes them.
pub fn lora_specs(entries: &[crate::config::recipe::LoraEntry]) -> Vec<LoraSpec> {
    entries
        .iter()
        .map(|l| LoraSpec {
            path: l.path.clone(),
            scale: l.scale,
        })
        .collect()
}

/// The pipeline loaded on one device.
struct SdDevice {
    sd: StableDiffusion,
    stage_loras: Vec<Vec<LoraSpec>>,
}

impl DeviceModel for SdDevice {
    fn run(&mut self, requests: &[Img2ImgRequest]) -> Result<Vec<RgbImage>, String> {
        // A batch's requests share one LoRA set (it is part of their batch key): 0 is the model as loaded.
        let set = requests.first().map_or(0, |r| r.adapters as usize);
        let specs = match set.checked_sub(1) {
            None => &[][..],
            Some(i) => self.stage_loras.get(i).map(Vec::as_slice).ok_or_else(|| {
                format!("internal: the batch names LoRA set {set}, which the run does not have")
            })?,
        };
        self.sd
            .use_adapters(specs)
            .map_err(|e| format!("switching to the stage's LoRAs: {e}"))?;
        let t0 = std::time::Instant::now();
        let out = run_guarded(&self.sd, requests);
        if std::env::var_os("TEXAUG_PROFILE").is_some_and(|v| v == "1") {
            // For bench/RESULTS.md: the model's share of a job, beside the stage's own profile lines.
            eprintln!(
                "texaug: profile model_ms={:.1} requests={}",
                t0.elapsed().as_secs_f64() * 1e3,
                requests.len()
            );
        }
        out
    }
}

impl ModelLoader for SdLoader {
    fn load(&self, device: DeviceSpec) -> Result<Box<dyn DeviceModel>> {
        // The recipe's default scheduler loads now, so a broken model stops the run before any job starts.
        let kind = parse_scheduler(self.default_scheduler.as_deref())?;
        let sd = load_with(
            &self.model,
            device,
            &self.dtype,
            kind,
            self.controlnet.as_deref(),
        )?;
        Ok(Box::new(SdDevice {
            sd,
            stage_loras: self.stage_loras.clone(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_scheduler_comes_from_the_config_class() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("scheduler")).unwrap();
        let cfg = dir.path().join("scheduler/scheduler_config.json");
        std::fs::write(&cfg, r#"{"_class_name": "PNDMScheduler"}"#).unwrap();
        let configs = ConfigSet::Folder(dir.path().to_path_buf());
        assert_eq!(default_scheduler_name(&configs), "pndm");
        std::fs::write(
            &cfg,
            r#"{"_class_name": "DPMSolverMultistepScheduler", "use_karras_sigmas": true}"#,
        )
        .unwrap();
        assert_eq!(default_scheduler_name(&configs), "dpmpp2m_karras");
        std::fs::write(&cfg, r#"{"_class_name": "LMSDiscreteScheduler"}"#).unwrap();
        assert_eq!(default_scheduler_name(&configs), "LMSDiscreteScheduler");
    }

    #[test]
    fn recipe_scheduler_names_parse_in_the_library() {
        for name in crate::config::recipe::SCHEDULERS {
            let kind = parse_scheduler(Some(name)).unwrap().unwrap();
            assert_eq!(kind.as_str(), *name);
        }
    }
}
