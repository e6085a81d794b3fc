//! The recipe's values checked against each other and their ranges, each problem located at its key.

use std::path::Path;

use texaug_stages::diffusion::single_file::{is_single_file, CheckpointKind};

use super::devices::{DeviceList, DeviceSpec};
use super::diagnostic::Diagnostic;
use super::recipe::{canonical_scheduler, Recipe, StageKind, Strength, SCHEDULERS};
use super::recipe_render_checks::render_checks;
use super::recipe_schema::{Key, Spans};

pub fn semantic_checks(file: &Path, text: &str, spans: &Spans<'_>, r: &Recipe) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let mut at = |path: &[Key<'_>], message: String, fix: &str| {
        let span = spans.span(path);
        out.push(Diagnostic::at_offset(file, text, span.start, message, fix));
    };
    use Key::{Index, Name};
    let valid_name = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    if !valid_name(&r.name) {
        at(
            &[Name("name")],
            format!("name `{}` is not a valid folder name", r.name),
            "use letters, digits, '-', '_' or '.', e.g. name = \"mugs-wood\"",
        );
    }
    match (&r.sources.manifest, &r.sources.dir) {
        (Some(_), Some(_)) | (None, None) => at(
            &[Name("sources")],
            "[sources] needs exactly one of `manifest` or `dir`".into(),
            "write manifest = \"manifests/x.csv\" (CSV, JSONL or Parquet) or dir = \"assets/\"",
        ),
        (Some(_), None) if r.sources.label.is_some() => at(
            &[Name("sources"), Name("label")],
            "`label` applies to `dir` sources only; a manifest has a label column".into(),
            "remove `label`, or use dir = \"...\" instead of manifest",
        ),
        _ => {}
    }
    match (&r.model.path, &r.model.id) {
        (Some(_), Some(_)) | (None, None) => at(
            &[Name("model")],
            "[model] needs exactly one of `path` or `id`".into(),
            "write path = \"models/sd\" (a diffusers folder) or id = \"org/name\" (from the Hugging Face cache)",
        ),
        _ => {}
    }
    if let Some(k) = &r.model.kind {
        if let Err(e) = k.parse::<CheckpointKind>() {
            at(
                &[Name("model"), Name("kind")],
                e,
                "name the base model the single file was trained from",
            );
        }
    }
    // Paths are not resolved yet: look where the recipe's folder puts them.
    let base = file.parent().unwrap_or(Path::new("."));
    let single_file = r
        .model
        .path
        .as_deref()
        .is_some_and(|p| is_single_file(&base.join(p)));
    for (key, given) in [
        ("config", r.model.config.is_some()),
        ("kind", r.model.kind.is_some()),
        ("ema", r.model.ema),
    ] {
        if given && !single_file {
            at(
                &[Name("model"), Name(key)],
                format!("`{key}` applies to a single-file checkpoint, and `[model]` names a diffusers folder or hub id"),
                "remove it, or set path = \"model.safetensors\"",
            );
        }
    }
    // Every LoRA, the model's and each stage's, where the recipe writes its scale.
    let model_loras = r.model.loras.iter().enumerate().map(|(i, l)| {
        (
            vec![Name("model"), Name("lora"), Index(i), Name("scale")],
            l,
        )
    });
    let stage_loras = r.stages.iter().enumerate().flat_map(|(s, stage)| {
        stage.loras.iter().enumerate().map(move |(i, l)| {
            (
                vec![
                    Name("stage"),
                    Index(s),
                    Name("loras"),
                    Index(i),
                    Name("scale"),
                ],
                l,
            )
        })
    });
    for (key, l) in model_loras.chain(stage_loras) {
        if !l.scale.is_finite() {
            at(
                &key,
                "a LoRA's scale must be a finite number".into(),
                "write scale = 0.8 (1 applies it as trained)",
            );
        }
    }
    let mut labels = std::collections::HashSet::new();
    for (i, e) in r.model.embeddings.iter().enumerate() {
        if let Some(l) = &e.label {
            if !labels.insert(l.as_str()) {
                at(
                    &[Name("model"), Name("embedding"), Index(i), Name("label")],
                    format!("two embeddings stand for the label `{l}`"),
                    "keep one `[[model.embedding]]` per label",
                );
            }
        }
        if e.label.is_some() && e.token.is_none() {
            at(
                &[Name("model"), Name("embedding"), Index(i), Name("label")],
                "an embedding that stands for a label needs its token, which `{label}` becomes"
                    .into(),
                "add token = \"<mug-class>\" (the token the embedding was trained as)",
            );
        }
    }
    if !matches!(r.model.dtype.as_str(), "auto" | "fp32" | "fp16" | "bf16") {
        at(
            &[Name("model"), Name("dtype")],
            format!("unknown dtype `{}`", r.model.dtype),
            "use one of: auto, fp32, fp16, bf16",
        );
    }
    if let Some(d) = &r.depth {
        if d.size.is_some_and(|n| n == 0 || n % 32 != 0 || n > 2048) {
            at(
                &[Name("depth"), Name("size")],
                "[depth] size must be a multiple of 32 in 32..=2048 (the DPT stride)".into(),
                "write size = 384 (DPT) or size = 256 (MiDaS_small)",
            );
        }
        if d.mean.is_some_and(|m| m.iter().any(|v| !v.is_finite())) {
            at(
                &[Name("depth"), Name("mean")],
                "[depth] mean must be three finite numbers (R, G, B)".into(),
                "write mean = [0.5, 0.5, 0.5] (DPT) or [0.485, 0.456, 0.406] (ImageNet)",
            );
        }
        if d.std
            .is_some_and(|m| m.iter().any(|v| !(v.is_finite() && *v > 0.0)))
        {
            at(
                &[Name("depth"), Name("std")],
                "[depth] std must be three numbers > 0 (R, G, B)".into(),
                "write std = [0.5, 0.5, 0.5] (DPT) or [0.229, 0.224, 0.225] (ImageNet)",
            );
        }
    }
    let sched_fix = format!("use one of: {}", SCHEDULERS.join(", "));
    if let Some(s) = &r.model.scheduler {
        if canonical_scheduler(s).is_none() {
            at(
                &[Name("model"), Name("scheduler")],
                format!("unknown scheduler `{s}`"),
                &sched_fix,
            );
        }
    }
    let devices: Vec<&str> = match &r.devices.use_ {
        DeviceList::One(s) => s.split(',').map(str::trim).collect(),
        DeviceList::Many(v) => v.iter().map(String::as_str).collect(),
    };
    for d in devices {
        if let Err(e) = DeviceSpec::parse_one(d) {
            at(
                &[Name("devices"), Name("use")],
                e,
                "use \"auto\", \"cpu\", \"cuda:0\" or a list [\"cuda:0\", \"cuda:1\"]",
            );
        }
    }
    if r.devices.batch == 0 {
        at(
            &[Name("devices"), Name("batch")],
            "batch must be at least 1".into(),
            "write batch = 1 (or more on a GPU with memory to spare)",
        );
    }
    if r.devices.threads == 0 || r.devices.threads > 1024 {
        at(
            &[Name("devices"), Name("threads")],
            format!("threads = {} is out of range", r.devices.threads),
            "write threads = 2 (the default) up to the CPU's core count",
        );
    }
    if r.devices.queue_mib == 0 {
        at(
            &[Name("devices"), Name("queue_mib")],
            "queue_mib must be at least 1".into(),
            "write queue_mib = 4096 (the default), or less on a machine with little memory",
        );
    }
    if r.stages.is_empty() {
        at(
            &[Name("stage")],
            "no [[stage]]".into(),
            "add [[stage]] with kind = \"style\"",
        );
    }
    if let Some(score) = &r.score {
        if score.path.is_some() == score.id.is_some() {
            at(
                &[Name("score")],
                "[score] needs exactly one of `path` or `id`".into(),
                "write path = \"models/clip-vit-large-patch14\" (a CLIPModel folder) or id = \"openai/clip-vit-large-patch14\"",
            );
        }
    }
    for (i, s) in r.stages.iter().enumerate() {
        let p = |k| [Name("stage"), Index(i), Name(k)];
        if let Some(min) = s.min_clip_score {
            if !(min.is_finite() && (0.0..=100.0).contains(&min)) {
                at(
                    &p("min_clip_score"),
                    format!("min_clip_score must lie in [0, 100], found {min}"),
                    "write min_clip_score = 20 (CLIP scores are 100 × cosine similarity)",
                );
            }
            if r.score.is_none() {
                at(
                    &p("min_clip_score"),
                    "`min_clip_score` needs a [score] table naming the CLIP model".into(),
                    "add [score] with path = \"models/clip\" (or id = \"openai/clip-vit-large-patch14\")",
                );
            }
        }
        if s.keep_filtered && s.min_clip_score.is_none() {
            at(
                &p("keep_filtered"),
                "`keep_filtered` applies to a stage with `min_clip_score`".into(),
                "add min_clip_score = 20, or remove keep_filtered",
            );
        }
    }
    let mut names = std::collections::HashSet::new();
    let mut out_render = Vec::new();
    for (i, s) in r.stages.iter().enumerate() {
        let p = |k| [Name("stage"), Index(i), Name(k)];
        if !names.insert(s.stage_name()) {
            at(
                &p("kind"),
                format!("two stages are named `{}`", s.stage_name()),
                "give each stage of the same kind a distinct name = \"...\" (sample ids derive from it)",
            );
        }
        if s.kind == StageKind::Render {
            out_render.extend(render_checks(r, i, spans));
            continue;
        }
        for key in s.render_keys_set() {
            at(
                &p(key),
                format!("`{key}` applies to render stages only"),
                &format!("remove `{key}`, or move it to a [[stage]] with kind = \"render\""),
            );
        }
        if s.prompts.is_empty() {
            at(
                &p("prompts"),
                "a stage needs at least one prompt".into(),
                "write prompts = [\"a {label} carved from oak\"]",
            );
        }
        let (lo, hi) = match s.strength {
            Strength::Fixed(v) => (v, v),
            Strength::Range([a, b]) => (a, b),
        };
        if !(lo > 0.0 && hi <= 1.0 && lo <= hi) {
            at(
                &p("strength"),
                format!("strength must lie in (0, 1] with lo <= hi, found {lo}..{hi}"),
                "write strength = 0.6 or strength = [0.4, 0.8]",
            );
        }
        if s.steps == 0 || s.steps > 1000 {
            at(
                &p("steps"),
                format!("steps must be in 1..=1000, found {}", s.steps),
                "write steps = 30",
            );
        }
        if let Some(sc) = &s.scheduler {
            if canonical_scheduler(sc).is_none() {
                at(
                    &p("scheduler"),
                    format!("unknown scheduler `{sc}`"),
                    &sched_fix,
                );
            }
        }
        if !(s.guidance.is_finite() && s.guidance >= 0.0) {
            at(
                &p("guidance"),
                format!("guidance must be >= 0, found {}", s.guidance),
                "write guidance = 7.5 (<= 1 disables classifier-free guidance)",
            );
        }
        if s.variants == 0 {
            at(
                &p("variants"),
                "variants must be at least 1".into(),
                "write variants = 1",
            );
        }
        if s.size < 8 || s.size % 8 != 0 || s.size > 4096 {
            at(
                &p("size"),
                format!("size must be a multiple of 8 in 8..=4096, found {}", s.size),
                "write size = 512 (SD 1.x) or 768 (SD 2.x); 64 for tiny test models",
            );
        }
        if s.kind == StageKind::Style {
            for (key, set) in [
                ("views", s.views.is_some()),
                ("sharpness", s.sharpness.is_some()),
                ("gutter", s.gutter.is_some()),
                ("sync", s.sync.is_some()),
                ("controlnet", s.controlnet.is_some()),
                ("conditioning_scale", s.conditioning_scale.is_some()),
            ] {
                if set {
                    at(
                        &p(key),
                        format!("`{key}` applies to depth stages only"),
                        &format!("remove `{key}`, or set kind = \"depth\""),
                    );
                }
            }
        }
        if s.sharpness.is_some_and(|k| !(k.is_finite() && k >= 0.0)) {
            at(
                &p("sharpness"),
                "sharpness must be a number >= 0".into(),
                "write sharpness = 4 (0 weighs every view alike)",
            );
        }
        if s.conditioning_scale
            .is_some_and(|c| !(c.is_finite() && c >= 0.0))
        {
            at(
                &p("conditioning_scale"),
                "conditioning_scale must be a number >= 0".into(),
                "write conditioning_scale = 1.0",
            );
        }
        if s.conditioning_scale.is_some() && s.controlnet.is_none() {
            at(
                &p("conditioning_scale"),
                "`conditioning_scale` needs a `controlnet`".into(),
                "add controlnet = \"models/controlnet-depth\", or remove conditioning_scale",
            );
        }
        if s.views == Some(0) || s.views.is_some_and(|v| v > 64) {
            at(
                &p("views"),
                "views (azimuths around a mesh) must be in 1..=64".into(),
                "write views = 8 (top and bottom views come on top)",
            );
        }
    }
    out.extend(out_render.into_iter().map(|(path, message, fix)| {
        let span = spans.span(&path);
        Diagnostic::at_offset(file, text, span.start, message, &fix)
    }));
    out
}
