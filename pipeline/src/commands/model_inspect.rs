//! `texaug model inspect PATH`: what a model file or folder holds, read from safetensors headers and configs
//! only, so a user knows what they have before a run (and what to write in `[model]`).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use serde_json::{json, Value};
use texaug_stages::diffusion::single_file::kind::{
    CLIP_PREFIX, OPEN_CLIP_PREFIX, UNET_PREFIX, VAE_PREFIX, XL_CLIP_PREFIX, XL_OPEN_CLIP_PREFIX,
    XL_REFINER_OPEN_CLIP_PREFIX,
};
use texaug_stages::diffusion::single_file::{builtin, SingleFile};
use texaug_stages::diffusion::weights::{find_weights, TensorIndex};

use crate::cli::ModelInspectArgs;

pub fn inspect(args: &ModelInspectArgs) -> Result<ExitCode> {
    let report = describe(&args.path)?;
    if args.json {
        let obj: serde_json::Map<String, Value> = report.into_iter().collect();
        println!("{}", serde_json::to_string_pretty(&obj)?);
    } else {
        for (k, v) in &report {
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            println!("{k:14} {text}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What `inspect` prints, in order.
type Report = Vec<(String, Value)>;

/// The report of a file or folder.
pub fn describe(path: &Path) -> Result<Report> {
    if path.is_dir() {
        return describe_folder(path);
    }
    let index = TensorIndex::open(&[path.to_path_buf()])
        .with_context(|| format!("reading the header of {}", path.display()))?;
    let mut out = Report::new();
    out.push(("path".into(), json!(path.display().to_string())));
    out.push(("tensors".into(), json!(index.names().count())));
    out.push(("dtypes".into(), json!(dtypes(&index))));
    match SingleFile::open(path, None) {
        Ok(file) => {
            let d = &file.detected;
            out.push((
                "format".into(),
                json!("single-file checkpoint (original SD layout)"),
            ));
            match d.kind {
                Some(k) => {
                    let scheduler = builtin::scheduler(k);
                    out.push(("kind".into(), json!(k.as_str())));
                    out.push(("describes".into(), json!(k.describe())));
                    out.push(("prediction".into(), scheduler["prediction_type"].clone()));
                    out.push((
                        "resolution".into(),
                        json!(builtin::vae(k)["sample_size"].clone()),
                    ));
                    if d.guessed {
                        out.push((
                            "note".into(),
                            json!("SD 2 weights do not say 512² epsilon or 768² v; taken as sd2-v (as diffusers); write `kind = \"sd2\"` for a base model"),
                        ));
                    }
                }
                None => {
                    out.push((
                        "kind".into(),
                        json!("unknown: give `[model] kind` or `config`"),
                    ));
                }
            }
            out.push(("unet_in".into(), json!(d.in_channels)));
            out.push(("context_dim".into(), json!(d.context_dim)));
            out.push(("text_encoder".into(), json!(d.text.describe())));
            let mut params = serde_json::Map::new();
            for (name, prefix) in [
                ("unet", UNET_PREFIX),
                ("vae", VAE_PREFIX),
                ("text_encoder", CLIP_PREFIX),
                ("text_encoder_open_clip", OPEN_CLIP_PREFIX),
                ("text_encoder_xl_clip", XL_CLIP_PREFIX),
                ("text_encoder_xl_open_clip", XL_OPEN_CLIP_PREFIX),
                ("text_encoder_xl_refiner", XL_REFINER_OPEN_CLIP_PREFIX),
                ("ema", "model_ema."),
            ] {
                let n = parameters(&index, prefix);
                if n > 0 {
                    params.insert(name.into(), json!(n));
                }
            }
            out.push(("parameters".into(), Value::Object(params)));
        }
        Err(e) => {
            out.push(("format".into(), json!(other_format(&index))));
            if let Some(lora) = lora_summary(&index) {
                out.push(("lora".into(), lora));
            }
            out.push(("parameters".into(), json!(parameters(&index, ""))));
            out.push(("note".into(), json!(e.to_string())));
        }
    }
    out.push(("metadata".into(), json!(index.metadata())));
    Ok(out)
}

fn describe_folder(dir: &Path) -> Result<Report> {
    let read = |rel: &str| -> Option<Value> {
        serde_json::from_str(&std::fs::read_to_string(dir.join(rel)).ok()?).ok()
    };
    let mut out = Report::new();
    out.push(("path".into(), json!(dir.display().to_string())));
    out.push(("format".into(), json!("diffusers folder")));
    if let Some(index) = read("model_index.json") {
        out.push(("pipeline".into(), index["_class_name"].clone()));
    }
    if let Some(unet) = read("unet/config.json") {
        out.push(("unet_in".into(), unet["in_channels"].clone()));
        out.push(("context_dim".into(), unet["cross_attention_dim"].clone()));
        out.push(("sample_size".into(), unet["sample_size"].clone()));
    }
    if let Some(s) = read("scheduler/scheduler_config.json") {
        out.push(("scheduler".into(), s["_class_name"].clone()));
        out.push((
            "prediction".into(),
            s.get("prediction_type")
                .cloned()
                .unwrap_or(json!("epsilon")),
        ));
    }
    let mut params = serde_json::Map::new();
    let mut kinds = BTreeMap::new();
    for (part, stem) in [
        ("unet", "diffusion_pytorch_model"),
        ("vae", "diffusion_pytorch_model"),
        ("text_encoder", "model"),
        ("controlnet", "diffusion_pytorch_model"),
    ] {
        let Ok(files) = find_weights(&dir.join(part), stem, None) else {
            continue;
        };
        if let Ok(index) = TensorIndex::open(&files) {
            params.insert(part.into(), json!(parameters(&index, "")));
            for (k, n) in dtypes(&index) {
                *kinds.entry(k).or_insert(0) += n;
            }
        }
    }
    out.push(("parameters".into(), Value::Object(params)));
    out.push(("dtypes".into(), json!(kinds)));
    Ok(out)
}

fn parameters(index: &TensorIndex, prefix: &str) -> i64 {
    index
        .names()
        .filter(|n| n.starts_with(prefix))
        .filter_map(|n| index.shape(n))
        .map(|s| s.iter().fold(1i64, |a, &d| a.saturating_mul(d)))
        .fold(0i64, i64::saturating_add)
}

fn dtypes(index: &TensorIndex) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for n in index.names() {
        if let Some(d) = index.dtype(n) {
            *out.entry(d.to_owned()).or_insert(0) += 1;
        }
    }
    out
}

fn other_format(index: &TensorIndex) -> &'static str {
    let any = |part: &str| index.names().any(|k| k.contains(part));
    if any("lora_down") || any("lora_A") {
        "LoRA"
    } else if any("emb_params") || any("string_to_param") {
        "textual-inversion embedding"
    } else if any("encoder.down.") && any("decoder.up.") {
        "VAE (original layout)"
    } else if any("encoder.down_blocks.") && any("decoder.up_blocks.") {
        "VAE (diffusers layout)"
    } else {
        "not a Stable Diffusion checkpoint"
    }
}

/// Rank(s), alpha and targets of a kohya or PEFT LoRA.
fn lora_summary(index: &TensorIndex) -> Option<Value> {
    let downs: Vec<&str> = index
        .names()
        .filter(|k| k.ends_with("lora_down.weight") || k.ends_with("lora_A.weight"))
        .collect();
    if downs.is_empty() {
        return None;
    }
    let mut ranks = BTreeMap::new();
    for k in &downs {
        if let Some(r) = index.shape(k).and_then(|s| s.first().copied()) {
            *ranks.entry(r).or_insert(0) += 1;
        }
    }
    let count = |p: &str| downs.iter().filter(|k| k.contains(p)).count();
    Some(json!({
        "modules": downs.len(),
        "ranks": ranks.iter().map(|(r, n)| format!("{r} ({n} modules)")).collect::<Vec<_>>(),
        "unet_modules": count("unet"),
        "text_encoder_modules": count("lora_te") + count("text_encoder"),
        "has_alpha": index.names().any(|k| k.ends_with(".alpha")),
    }))
}
