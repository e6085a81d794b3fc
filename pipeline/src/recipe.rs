//! The recipe (DESIGN §3): what to make, from which sources, with which model. Unknown keys and bad values are errors
//! located as `file:line:col`; relative paths resolve against the recipe's folder.

use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::recipe_schema::{Key, Spans};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

pub const SCHEDULERS: &[&str] = &[
    "ddim",
    "euler",
    "euler_a",
    "dpmpp2m",
    "dpmpp2m_karras",
    "pndm",
];

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    pub name: String,
    #[serde(default)]
    pub seed: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<PathBuf>,
    pub sources: SourcesSpec,
    pub model: ModelSpec,
    #[serde(default)]
    pub devices: DevicesSpec,
    /// Depth for image sources without a depth file (depth stages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depth: Option<DepthSpec>,
    #[serde(rename = "stage")]
    pub stages: Vec<StageSpec>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DepthSpec {
    /// A TorchScript monocular depth estimator (MiDaS/DPT, output larger = nearer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimator: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourcesSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    /// With `dir`: "parent-dir" (the default) labels each file by its folder; any other text labels every file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// fp32 | fp16 | bf16 | auto (fp32 on CPU, fp16 on CUDA).
    #[serde(default = "default_dtype")]
    pub dtype: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler: Option<String>,
}

fn default_dtype() -> String {
    "auto".into()
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum DeviceList {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevicesSpec {
    #[serde(rename = "use", default = "default_devices")]
    pub use_: DeviceList,
    #[serde(default = "one")]
    pub batch: usize,
}

impl Default for DevicesSpec {
    fn default() -> Self {
        DevicesSpec {
            use_: default_devices(),
            batch: 1,
        }
    }
}

fn default_devices() -> DeviceList {
    DeviceList::One("auto".into())
}

fn one() -> usize {
    1
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum StageKind {
    /// img2img on the image, or on every base-color texture of a mesh.
    Style,
    /// Depth-conditioned, multi-view for meshes.
    Depth,
}

impl StageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StageKind::Style => "style",
            StageKind::Depth => "depth",
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Strength {
    Fixed(f64),
    Range([f64; 2]),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageSpec {
    pub kind: StageKind,
    /// Names the stage in sample ids; defaults to the kind. Two stages of one kind need distinct names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default)]
    pub prompts: Vec<String>,
    #[serde(default)]
    pub negative_prompt: String,
    #[serde(default = "default_strength")]
    pub strength: Strength,
    #[serde(default = "default_steps")]
    pub steps: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler: Option<String>,
    #[serde(default = "default_guidance")]
    pub guidance: f64,
    #[serde(default = "one_u32")]
    pub variants: u32,
    /// The model resolution that images and textures are resized to (multiple of 8).
    #[serde(default = "default_size")]
    pub size: u32,
    /// Depth stages: azimuths around a mesh (top and bottom views come on top), default 8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub views: Option<u32>,
    /// Depth stages: k of the (normal·view)^k weight when views are baked into the texture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sharpness: Option<f64>,
    /// Depth stages: texels of gutter dilated around the UV islands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gutter: Option<u32>,
    /// Depth stages: a ControlNet folder; the model is then SD 1.x and the control image is the depth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controlnet: Option<PathBuf>,
    /// Depth stages with a ControlNet: `controlnet_conditioning_scale`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditioning_scale: Option<f64>,
}

pub const DEFAULT_AZIMUTHS: u32 = 8;
pub const DEFAULT_SHARPNESS: f64 = 4.0;
pub const DEFAULT_GUTTER: u32 = 4;
pub const DEFAULT_CONDITIONING_SCALE: f64 = 1.0;

fn default_strength() -> Strength {
    Strength::Fixed(0.6)
}
fn default_steps() -> u32 {
    30
}
fn default_guidance() -> f64 {
    7.5
}
fn one_u32() -> u32 {
    1
}
fn default_size() -> u32 {
    512
}

impl StageSpec {
    pub fn stage_name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| self.kind.as_str().to_string())
    }
}

/// A recipe read from disk, its paths resolved.
#[derive(Debug, Clone)]
pub struct LoadedRecipe {
    pub path: PathBuf,
    pub text: String,
    /// Hex sha256 of the recipe file's bytes.
    pub hash: String,
    pub recipe: Recipe,
}

impl LoadedRecipe {
    /// `output` as the recipe resolves it, or `output/<name>` under the working directory.
    /// A diagnostic pointing at the value at `keys` in the recipe file.
    pub fn diagnostic_at(&self, keys: &[Key<'_>], message: String, fix: &str) -> Diagnostic {
        let (spans, _) = Spans::parse(&self.path, &self.text);
        let span = spans.span(keys);
        Diagnostic::at_offset(&self.path, &self.text, span.start, message, fix)
    }

    pub fn output_dir(&self) -> PathBuf {
        self.recipe
            .output
            .clone()
            .unwrap_or_else(|| Path::new("output").join(&self.recipe.name))
    }
}

/// The canonical scheduler name for what a user wrote (`dpm++2m`, `DPMPP2M`, `euler-a` are accepted), if any.
pub fn canonical_scheduler(name: &str) -> Option<&'static str> {
    let n = name
        .trim()
        .to_ascii_lowercase()
        .replace("++", "pp")
        .replace('-', "_");
    let n = match n.as_str() {
        "dpmpp_2m" | "dpm_solver_multistep" | "dpmsolvermultistep" => "dpmpp2m",
        "dpmpp_2m_karras" => "dpmpp2m_karras",
        "euler_ancestral" => "euler_a",
        other => other,
    };
    SCHEDULERS.iter().copied().find(|s| *s == n)
}

/// Reads, checks and resolves a recipe; any problem is an error listing all of them.
pub fn load(path: &Path) -> Result<LoadedRecipe, Diagnostics> {
    let (loaded, diags) = check(path);
    match loaded {
        Some(l) if diags.is_empty() => Ok(l),
        _ => Err(Diagnostics(diags)),
    }
}

/// Reads and checks a recipe, returning it (when it parses) and every problem found.
pub fn check(path: &Path) -> (Option<LoadedRecipe>, Vec<Diagnostic>) {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            let d = Diagnostic::new(
                path,
                0,
                0,
                format!("cannot read the recipe: {e}"),
                "check the path; recipes are TOML files such as recipes/demo.toml",
            );
            return (None, vec![d]);
        }
    };
    let (spans, mut diags) = Spans::parse(path, &text);
    if !diags.is_empty() {
        return (None, diags);
    }
    diags.extend(spans.unknown_keys(path, &text));
    for (key, example) in [
        ("name", "name = \"mugs-wood\""),
        ("sources", "[sources]\nmanifest = \"manifests/x.csv\""),
        ("model", "[model]\npath = \"models/sd\""),
        (
            "stage",
            "[[stage]]\nkind = \"style\"\nprompts = [\"a {label} carved from oak\"]",
        ),
    ] {
        if !spans.has_top(key) {
            diags.push(Diagnostic::new(
                path,
                1,
                1,
                format!("missing required key `{key}`"),
                format!("add:\n{example}"),
            ));
        }
    }
    if !diags.is_empty() {
        return (None, diags);
    }
    let mut recipe: Recipe = match toml::from_str(&text) {
        Ok(r) => r,
        Err(e) => {
            let offset = e.span().map_or(0, |s| s.start);
            diags.push(Diagnostic::at_offset(
                path,
                &text,
                offset,
                e.message().trim().to_string(),
                "see recipes/demo.toml for the expected keys and types",
            ));
            return (None, diags);
        }
    };
    diags.extend(semantic_checks(path, &text, &spans, &recipe));
    // In file order, as a reader fixes them.
    diags.sort_by_key(|d| (d.line, d.col));
    let base = path.parent().unwrap_or(Path::new("."));
    resolve_paths(&mut recipe, base);
    let hash = hex::encode(Sha256::digest(text.as_bytes()));
    let loaded = LoadedRecipe {
        path: path.to_path_buf(),
        text,
        hash,
        recipe,
    };
    (Some(loaded), diags)
}

fn resolve(base: &Path, p: &mut PathBuf) {
    if p.is_relative() {
        *p = base.join(&*p);
    }
}

fn resolve_paths(r: &mut Recipe, base: &Path) {
    for p in [
        r.output.as_mut(),
        r.sources.manifest.as_mut(),
        r.sources.dir.as_mut(),
        r.model.path.as_mut(),
        r.depth.as_mut().and_then(|d| d.estimator.as_mut()),
    ]
    .into_iter()
    .flatten()
    {
        resolve(base, p);
    }
    for s in &mut r.stages {
        if let Some(c) = s.controlnet.as_mut() {
            resolve(base, c);
        }
    }
}

fn semantic_checks(file: &Path, text: &str, spans: &Spans<'_>, r: &Recipe) -> Vec<Diagnostic> {
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
    if !matches!(r.model.dtype.as_str(), "auto" | "fp32" | "fp16" | "bf16") {
        at(
            &[Name("model"), Name("dtype")],
            format!("unknown dtype `{}`", r.model.dtype),
            "use one of: auto, fp32, fp16, bf16",
        );
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
        if let Err(e) = crate::devices::DeviceSpec::parse_one(d) {
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
    if r.stages.is_empty() {
        at(
            &[Name("stage")],
            "no [[stage]]".into(),
            "add [[stage]] with kind = \"style\"",
        );
    }
    let mut names = std::collections::HashSet::new();
    for (i, s) in r.stages.iter().enumerate() {
        let p = |k| [Name("stage"), Index(i), Name(k)];
        if !names.insert(s.stage_name()) {
            at(
                &p("kind"),
                format!("two stages are named `{}`", s.stage_name()),
                "give each stage of the same kind a distinct name = \"...\" (sample ids derive from it)",
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
    out
}

#[cfg(test)]
#[path = "recipe_tests.rs"]
mod tests;
