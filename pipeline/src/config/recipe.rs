//! The recipe (DESIGN §3): what to make, from which sources, with which model. Unknown keys and bad values are errors
//! located as `file:line:col`; relative paths resolve against the recipe's folder.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use texaug_stages::job::Fit;

use super::devices::DeviceList;
use super::diagnostic::Diagnostic;
use super::recipe_schema::{Key, Spans};

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
    /// The quality score of samples and views (`[score]`): CLIP image–text similarity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<ScoreSpec>,
    #[serde(rename = "stage")]
    pub stages: Vec<StageSpec>,
}

/// `[score]`: the CLIP model that scores every image a run writes against a prompt (`clip_score` column); a stage's
/// `min_clip_score` then filters its samples.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreSpec {
    /// A folder in the `openai/clip-vit-large-patch14` layout (config.json, model.safetensors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// A hub id in the local Hugging Face cache (`texaug model fetch ID` puts it there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// What each image is scored against; `{label}` is the source's label (default "a photo of a {label}").
    #[serde(default = "default_score_prompt")]
    pub prompt: String,
}

/// ALIA's and DA-Fusion's class prompt: the score says whether the image still shows its class.
pub const DEFAULT_SCORE_PROMPT: &str = "a photo of a {label}";

fn default_score_prompt() -> String {
    DEFAULT_SCORE_PROMPT.into()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DepthSpec {
    /// A TorchScript monocular depth estimator (MiDaS/DPT, output larger = nearer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimator: Option<PathBuf>,
    /// `estimator` as the recipe wrote it, before it was resolved against the recipe's folder.
    #[serde(skip)]
    pub estimator_written: Option<String>,
    /// The estimator's square input size (a multiple of 32): 384 for DPT, 256 for `MiDaS_small`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u32>,
    /// Per-channel RGB mean and std of its input normalization: DPT's 0.5 / 0.5 by default; ImageNet's
    /// [0.485, 0.456, 0.406] / [0.229, 0.224, 0.225] for `MiDaS_small`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean: Option<[f32; 3]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub std: Option<[f32; 3]>,
}

impl DepthSpec {
    /// The estimator as written, when it names nothing that exists and has the shape of a hub id (`org/name`, no
    /// extension): texaug refuses it, since an estimator is code and texaug downloads none.
    pub fn estimator_hub_id(&self) -> Option<&str> {
        let written = self.estimator_written.as_deref()?;
        let resolved = self.estimator.as_ref()?;
        (looks_like_hub_id(written) && !resolved.exists() && !Path::new(written).exists())
            .then_some(written)
    }
}

/// `org/name`: two parts of letters, digits, `-`, `_`, `.` (neither starting with `.` or `-`), and no extension.
pub fn looks_like_hub_id(s: &str) -> bool {
    let mut parts = s.split('/');
    let (Some(org), Some(name), None) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let part = |p: &str| {
        !p.is_empty()
            && !p.starts_with(['.', '-'])
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    part(org) && part(name) && Path::new(name).extension().is_none()
}

/// Why a hub id is refused as `[depth] estimator`.
pub fn estimator_hub_id_refusal(id: &str) -> String {
    format!(
        "[depth] estimator = \"{id}\" looks like a hub id, but the estimator is a local TorchScript file; texaug \
         does not download code: export the estimator yourself (see README) and give its path"
    )
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
    /// Weight files `<name>.<variant>.safetensors` first (e.g. "fp16"), as diffusers' `variant`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// For a single-file `path`: the diffusers folder (or cached hub id) whose configs, tokenizer and scheduler
    /// it uses instead of the built-in published ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
    /// For a single-file `path` whose header cannot tell: sd1, sd1-inpaint, sd2, sd2-v, sd2-depth, sd2-inpaint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// A replacement VAE: a diffusers AutoencoderKL folder or one `.safetensors` file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vae: Option<PathBuf>,
    /// For a single-file `path`: use the UNet's EMA weights (`model_ema.*`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ema: bool,
    /// `[[model.lora]]`: LoRAs merged into the UNet and text encoder at load, in order.
    #[serde(default, rename = "lora", skip_serializing_if = "Vec::is_empty")]
    pub loras: Vec<LoraEntry>,
    /// `[[model.embedding]]`: textual-inversion embeddings whose tokens prompts may use.
    #[serde(default, rename = "embedding", skip_serializing_if = "Vec::is_empty")]
    pub embeddings: Vec<EmbeddingEntry>,
    /// fp32 | fp16 | bf16 | auto (fp32 on CPU, fp16 on CUDA).
    #[serde(default = "default_dtype")]
    pub dtype: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler: Option<String>,
}

/// One `[[model.lora]]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoraEntry {
    /// A kohya/A1111 or diffusers/PEFT LoRA `.safetensors`.
    pub path: PathBuf,
    /// diffusers' `lora_scale`: 1 applies the LoRA as trained (kohya's alpha/rank included), 0 not at all.
    #[serde(default = "one_scale")]
    pub scale: f64,
}

/// One `[[model.embedding]]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddingEntry {
    /// A diffusers `learned_embeds.safetensors` or an A1111 embedding `.safetensors`.
    pub path: PathBuf,
    /// The token prompts write (a diffusers file names its own; an A1111 file needs one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// A class label this embedding stands for: `{label}` in prompts becomes `token` for that label's sources
    /// (one learned token per class, as DA-Fusion trains them). Needs `token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

fn one_scale() -> f64 {
    1.0
}

fn default_dtype() -> String {
    "auto".into()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevicesSpec {
    #[serde(rename = "use", default = "default_devices")]
    pub use_: DeviceList,
    #[serde(default = "one")]
    pub batch: usize,
    /// The most memory, in MiB, that prepared jobs may hold while they wait for a device and for their finish
    /// (decoded sources, rasterized views, mesh buffers). Prepare pauses while the jobs in flight hold more.
    #[serde(default = "default_queue_mib")]
    pub queue_mib: u64,
    /// Intra-op threads of the CPU device's kernels. A recipe setting with a fixed default, not the machine's
    /// core count, because CPU kernels may round differently with another thread count: the same recipe gives the
    /// same bytes on every machine. Raise it for speed on a larger CPU (outputs may then differ by rounding).
    #[serde(default = "default_threads")]
    pub threads: usize,
}

/// Two: every CI and laptop machine has them.
pub const DEFAULT_CPU_THREADS: usize = 2;

fn default_threads() -> usize {
    DEFAULT_CPU_THREADS
}

/// 4 GiB: a few hundred 1024² textures, or dozens of large meshes with their views.
pub const DEFAULT_QUEUE_MIB: u64 = 4096;

fn default_queue_mib() -> u64 {
    DEFAULT_QUEUE_MIB
}

impl Default for DevicesSpec {
    fn default() -> Self {
        DevicesSpec {
            use_: default_devices(),
            batch: 1,
            queue_mib: DEFAULT_QUEUE_MIB,
            threads: DEFAULT_CPU_THREADS,
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
    /// Labeled training views of each mesh (image, mask, depth, box), after another stage or of the sources.
    Render,
}

impl StageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StageKind::Style => "style",
            StageKind::Depth => "depth",
            StageKind::Render => "render",
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Strength {
    Fixed(f64),
    Range([f64; 2]),
}

/// A value or a `[lo, hi]` range a render draws from per view (degrees).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Span {
    Fixed(f64),
    Range([f64; 2]),
}

impl Span {
    pub fn bounds(self) -> [f64; 2] {
        match self {
            Span::Fixed(v) => [v, v],
            Span::Range(r) => r,
        }
    }
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
    /// LoRAs merged on top of the model's for this stage's jobs (the device switches between stages' sets).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub loras: Vec<LoraEntry>,
    #[serde(default = "default_steps")]
    pub steps: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler: Option<String>,
    #[serde(default = "default_guidance")]
    pub guidance: f64,
    #[serde(default = "one_u32")]
    pub variants: u32,
    /// The model's resolution (multiple of 8): an image's long side (see `fit`), a mesh's views and textures.
    #[serde(default = "default_size")]
    pub size: u32,
    /// How an image that is not square meets `size`: "keep" (its aspect, default), "crop", "pad" or "stretch".
    #[serde(default, skip_serializing_if = "Fit::is_default")]
    pub fit: Fit,
    /// Depth stages: azimuths around a mesh (top and bottom views come on top), default 8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub views: Option<u32>,
    /// Depth stages: k of the (normal·view)^k weight when views are baked into the texture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sharpness: Option<f64>,
    /// Depth stages: texels of gutter dilated around the UV islands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gutter: Option<u32>,
    /// Depth stages: a mesh's views denoised in step through its UV space (default true); false runs them
    /// independently and only the bake brings them together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync: Option<bool>,
    /// Depth stages: a ControlNet folder; the model is then SD 1.x and the control image is the depth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controlnet: Option<PathBuf>,
    /// Depth stages with a ControlNet: `controlnet_conditioning_scale`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditioning_scale: Option<f64>,
    /// The stage whose mesh samples are rendered; without it, the source meshes themselves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// Degrees; the views spread evenly over it (default the full turn [0, 360]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azimuth: Option<Span>,
    /// Degrees above the horizon, drawn per view (default [10, 40]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elevation: Option<Span>,
    /// Vertical field of view in degrees, drawn per view (default 40).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fov: Option<Span>,
    /// Each azimuth moves by up to ± this many degrees (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter: Option<f64>,
    /// The share of the frame the object's bounding sphere spans (default 0.8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fill: Option<f64>,
    /// Rendered at size × supersample and filtered down (default 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supersample: Option<u32>,
    /// Light every surface gets; the rest comes from a light at the camera (default 0.35).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ambient: Option<f64>,
    /// "solid" (default, `background_color`), "random" (a colour per view) or "images" (`backgrounds`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background_color: Option<[u8; 3]>,
    /// A folder of background images, one drawn per view.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backgrounds: Option<PathBuf>,
    /// "png" (default) or "jpeg" (`quality`, default 90).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<u8>,
    /// Samples (or a render's views) scoring below this under `[score]` are marked `status = "filtered"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_clip_score: Option<f64>,
    /// Keep the files of filtered samples (their rows say `filtered` either way).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keep_filtered: bool,
}

impl StageSpec {
    /// The render keys set, by name, for "applies to render stages only".
    pub fn render_keys_set(&self) -> Vec<&'static str> {
        [
            ("after", self.after.is_some()),
            ("azimuth", self.azimuth.is_some()),
            ("elevation", self.elevation.is_some()),
            ("fov", self.fov.is_some()),
            ("jitter", self.jitter.is_some()),
            ("fill", self.fill.is_some()),
            ("supersample", self.supersample.is_some()),
            ("ambient", self.ambient.is_some()),
            ("background", self.background.is_some()),
            ("background_color", self.background_color.is_some()),
            ("backgrounds", self.backgrounds.is_some()),
            ("format", self.format.is_some()),
            ("quality", self.quality.is_some()),
        ]
        .into_iter()
        .filter_map(|(k, set)| set.then_some(k))
        .collect()
    }
}

pub use texaug_stages::job::settings::{
    DEFAULT_AZIMUTHS, DEFAULT_CONDITIONING_SCALE, DEFAULT_GUTTER, DEFAULT_SHARPNESS,
};

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
    /// A diagnostic pointing at the value at `keys` in the recipe file.
    pub fn diagnostic_at(&self, keys: &[Key<'_>], message: String, fix: &str) -> Diagnostic {
        let (spans, _) = Spans::parse(&self.path, &self.text);
        let span = spans.span(keys);
        Diagnostic::at_offset(&self.path, &self.text, span.start, message, fix)
    }

    /// `output` as the recipe resolves it, or `output/<name>` under the working directory.
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

impl Recipe {
    /// The ControlNet a run attaches to its model: the one its depth stages name (one per run, as one model loads).
    pub fn controlnet(&self) -> Result<Option<PathBuf>, String> {
        let mut named = self.stages.iter().filter_map(|s| s.controlnet.as_ref());
        let first = named.next().cloned();
        if let Some(other) = named.find(|c| Some(*c) != first.as_ref()) {
            return Err(format!(
                "stages name two ControlNets ({} and {}); a run loads one model: split the recipe in two",
                first.as_ref().map_or(String::new(), |p| p.display().to_string()),
                other.display()
            ));
        }
        Ok(first)
    }
}
