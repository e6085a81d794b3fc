//! What a single-file checkpoint holds, told from its header alone (tensor names and shapes), the way diffusers'
//! `infer_diffusers_model_type` tells it: the UNet's input channels (4 plain, 5 depth, 9 inpainting), the
//! cross-attention width (768 for SD 1.x's CLIP, 1024 for SD 2.x's OpenCLIP, 2048 for SDXL's two encoders, 1280
//! for the SDXL refiner's one) and the text encoders' prefixes (`cond_stage_model.*` for SD 1/2, SGM's
//! `conditioner.embedders.*` for SDXL).

use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::diffusion::weights::TensorIndex;

/// The published base models texaug knows the configs of (`[model] kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CheckpointKind {
    /// SD 1.x, 512², epsilon (stable-diffusion-v1-5).
    Sd1,
    /// SD 1.x inpainting, 9 input channels.
    Sd1Inpaint,
    /// SD 2.x base, 512², epsilon (stable-diffusion-2-1-base).
    Sd2,
    /// SD 2.x, 768², v-prediction (stable-diffusion-2-1).
    Sd2V,
    /// SD 2 depth, 5 input channels (stable-diffusion-2-depth).
    Sd2Depth,
    /// SD 2 inpainting, 9 input channels.
    Sd2Inpaint,
    /// SDXL base, 1024², two text encoders (stable-diffusion-xl-base-1.0).
    Sdxl,
    /// SDXL refiner, OpenCLIP bigG only, aesthetic-score conditioning (stable-diffusion-xl-refiner-1.0).
    SdxlRefiner,
}

impl CheckpointKind {
    pub const ALL: [CheckpointKind; 8] = [
        Self::Sd1,
        Self::Sd1Inpaint,
        Self::Sd2,
        Self::Sd2V,
        Self::Sd2Depth,
        Self::Sd2Inpaint,
        Self::Sdxl,
        Self::SdxlRefiner,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sd1 => "sd1",
            Self::Sd1Inpaint => "sd1-inpaint",
            Self::Sd2 => "sd2",
            Self::Sd2V => "sd2-v",
            Self::Sd2Depth => "sd2-depth",
            Self::Sd2Inpaint => "sd2-inpaint",
            Self::Sdxl => "sdxl",
            Self::SdxlRefiner => "sdxl-refiner",
        }
    }

    /// What a user reads in `model inspect` and in errors.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Sd1 => "Stable Diffusion 1.x (512², epsilon)",
            Self::Sd1Inpaint => "Stable Diffusion 1.x inpainting (9 input channels)",
            Self::Sd2 => "Stable Diffusion 2.x base (512², epsilon)",
            Self::Sd2V => "Stable Diffusion 2.x (768², v-prediction)",
            Self::Sd2Depth => "Stable Diffusion 2 depth (5 input channels)",
            Self::Sd2Inpaint => "Stable Diffusion 2 inpainting (9 input channels)",
            Self::Sdxl => "Stable Diffusion XL base (1024², two text encoders)",
            Self::SdxlRefiner => {
                "Stable Diffusion XL refiner (1024², OpenCLIP bigG, aesthetic score)"
            }
        }
    }

    pub fn text_layout(self) -> TextLayout {
        match self {
            Self::Sd1 | Self::Sd1Inpaint => TextLayout::Clip,
            Self::Sdxl => TextLayout::Xl,
            Self::SdxlRefiner => TextLayout::XlRefiner,
            _ => TextLayout::OpenClip,
        }
    }

    /// Whether the kind is SDXL-shaped (a `text_encoder_2`, a `text_time` UNet).
    pub fn is_xl(self) -> bool {
        matches!(self, Self::Sdxl | Self::SdxlRefiner)
    }

    /// The cross-attention width of the published model: what its text encoders give.
    pub fn context_dim(self) -> i64 {
        match self.text_layout() {
            TextLayout::Clip => 768,
            TextLayout::OpenClip => 1024,
            TextLayout::Xl => 2048,
            TextLayout::XlRefiner => 1280,
        }
    }

    pub fn in_channels(self) -> i64 {
        match self {
            Self::Sd2Depth => 5,
            Self::Sd1Inpaint | Self::Sd2Inpaint => 9,
            _ => 4,
        }
    }

    fn names() -> String {
        Self::ALL
            .iter()
            .map(|k| format!("\"{}\"", k.as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl FromStr for CheckpointKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown model kind {s:?}; one of {}", Self::names()))
    }
}

impl std::fmt::Display for CheckpointKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the text encoders are stored in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextLayout {
    /// `cond_stage_model.transformer.[text_model.]…`: transformers' CLIPTextModel keys under a prefix (SD 1.x).
    Clip,
    /// `cond_stage_model.model.…`: open_clip's keys, q/k/v fused in `in_proj` (SD 2.x).
    OpenClip,
    /// SDXL base (SGM): CLIP ViT-L as transformers names it under `conditioner.embedders.0.transformer.`, OpenCLIP
    /// bigG as open_clip names it under `conditioner.embedders.1.model.` (with its `text_projection`).
    Xl,
    /// SDXL refiner (SGM): only OpenCLIP bigG, under `conditioner.embedders.0.model.`.
    XlRefiner,
}

impl TextLayout {
    /// What a user reads in `model inspect` and in errors.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Clip => "CLIP (SD 1.x)",
            Self::OpenClip => "OpenCLIP (SD 2.x)",
            Self::Xl => "CLIP ViT-L + OpenCLIP bigG (SDXL)",
            Self::XlRefiner => "OpenCLIP bigG (SDXL refiner)",
        }
    }
}

pub const UNET_PREFIX: &str = "model.diffusion_model.";
pub const VAE_PREFIX: &str = "first_stage_model.";
pub const CLIP_PREFIX: &str = "cond_stage_model.transformer.";
pub const OPEN_CLIP_PREFIX: &str = "cond_stage_model.model.";
/// SDXL base's first text encoder (CLIP ViT-L, transformers' names).
pub const XL_CLIP_PREFIX: &str = "conditioner.embedders.0.transformer.";
/// SDXL base's second text encoder (OpenCLIP bigG, open_clip's names).
pub const XL_OPEN_CLIP_PREFIX: &str = "conditioner.embedders.1.model.";
/// The SDXL refiner's only text encoder (OpenCLIP bigG).
pub const XL_REFINER_OPEN_CLIP_PREFIX: &str = "conditioner.embedders.0.model.";
const IN_CONV: &str = "model.diffusion_model.input_blocks.0.0.weight";

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{path} is {what}, not a Stable Diffusion checkpoint; {fix}")]
    NotACheckpoint {
        path: PathBuf,
        what: String,
        fix: String,
    },
    #[error(
        "{path} holds no Stable Diffusion UNet (no `model.diffusion_model.*` tensors); its first tensors are \
         {found}; texaug reads single-file SD 1.x/2.x (LDM) and SDXL (SGM) checkpoints, or diffusers folders"
    )]
    Unknown { path: PathBuf, found: String },
    #[error("{path}: {what}; {fix}")]
    Unsupported {
        path: PathBuf,
        what: String,
        fix: String,
    },
    #[error(
        "cannot tell what {path} is: {found}; say it in the recipe with `[model] kind = …` (one of {kinds}), or \
         give the diffusers folder of its base model with `[model] config = \"folder\"`"
    )]
    NeedKind {
        path: PathBuf,
        found: String,
        kinds: String,
    },
    #[error(
        "{path}: `[model] kind = \"{kind}\"` says {kind_text} input channels, but the UNet takes {channels}; \
         correct `kind` or leave it out to have it detected"
    )]
    KindMismatch {
        path: PathBuf,
        kind: CheckpointKind,
        kind_text: i64,
        channels: i64,
    },
    #[error(
        "{path}: `[model] kind = \"{kind}\"` says a {says} text encoder, {width} wide, but the file holds {found}; \
         correct `kind` or leave it out to have it detected"
    )]
    KindText {
        path: PathBuf,
        kind: CheckpointKind,
        says: &'static str,
        width: i64,
        found: String,
    },
    #[error(
        "{path} uses texaug's built-in {kind} configs, whose tokenizer is built from CLIP's \
         bpe_simple_vocab_16e6.txt.gz, and none was found ({tried}); set TEXAUG_CLIP_VOCAB to that file (it ships in \
         the PyPI package open-clip-torch: `pip download --no-deps open-clip-torch`, then unzip it), or give the base \
         model's diffusers folder with `[model] config = \"folder\"`"
    )]
    NoVocab {
        path: PathBuf,
        kind: CheckpointKind,
        tried: String,
    },
}

/// What the header says, for detection and for `model inspect`.
#[derive(Clone, Debug)]
pub struct Detected {
    /// The published kind, when the shapes tell it.
    pub kind: Option<CheckpointKind>,
    /// Why SD 2 was taken as v-prediction: only a guess when the file carries no metadata saying so.
    pub guessed: bool,
    pub text: TextLayout,
    pub in_channels: i64,
    pub context_dim: Option<i64>,
    /// Tensors under `model_ema.` (an EMA copy of the UNet).
    pub ema_tensors: usize,
}

fn first_keys(index: &TensorIndex) -> String {
    let keys: Vec<String> = index.names().take(4).map(|k| format!("`{k}`")).collect();
    if keys.is_empty() {
        "none (the file holds no tensors)".into()
    } else {
        format!("{} …", keys.join(", "))
    }
}

/// The text encoders' layout, from their prefixes. SDXL's SGM files are told as diffusers tells them: a base has
/// OpenCLIP at `conditioner.embedders.1.model.`, a refiner at `conditioner.embedders.0.model.`.
fn text_layout(path: &Path, index: &TensorIndex) -> Result<TextLayout, CheckpointError> {
    let has = |prefix: &str| index.names().any(|k| k.starts_with(prefix));
    let unsupported = |what: &str, fix: &str| CheckpointError::Unsupported {
        path: path.into(),
        what: what.into(),
        fix: fix.into(),
    };
    if index.contains("edm_mean") || index.contains("edm_std") {
        return Err(unsupported(
            "a Playground v2.5 checkpoint (SDXL-shaped, EDM noise schedule: `edm_mean`)",
            "texaug runs SD 1.x, 2.x and SDXL models with their DDPM schedules; use an SDXL base or fine-tune",
        ));
    }
    if has(XL_OPEN_CLIP_PREFIX) {
        if !has(XL_CLIP_PREFIX) {
            return Err(unsupported(
                "an SDXL checkpoint with OpenCLIP (`conditioner.embedders.1.model.*`) but no CLIP ViT-L \
                 (`conditioner.embedders.0.transformer.*`)",
                "use the full checkpoint with both text encoders",
            ));
        }
        return Ok(TextLayout::Xl);
    }
    if has(XL_REFINER_OPEN_CLIP_PREFIX) {
        return Ok(TextLayout::XlRefiner);
    }
    if has("conditioner.") {
        return Err(unsupported(
            "an SGM checkpoint whose text encoders (`conditioner.embedders.*`) are neither SDXL base's nor the \
             refiner's",
            "texaug reads SDXL base (CLIP ViT-L + OpenCLIP bigG) and refiner (OpenCLIP bigG) single files",
        ));
    }
    if has(OPEN_CLIP_PREFIX) {
        Ok(TextLayout::OpenClip)
    } else if has(CLIP_PREFIX) {
        Ok(TextLayout::Clip)
    } else {
        Err(unsupported(
            "the file has a UNet but no text encoder (`cond_stage_model.*` or `conditioner.embedders.*`)",
            "use the full checkpoint (UNet, VAE and text encoder), not a UNet-only extract",
        ))
    }
}

/// Tells a checkpoint's kind from its header. `kind` (the recipe's) wins where given, but must agree with the
/// UNet's input channels and the text encoders.
pub fn detect(
    path: &Path,
    index: &TensorIndex,
    kind: Option<CheckpointKind>,
) -> Result<Detected, CheckpointError> {
    let has = |prefix: &str| index.names().any(|k| k.starts_with(prefix));
    if !has(UNET_PREFIX) {
        return Err(not_a_checkpoint(path, index));
    }
    let in_channels = index
        .shape(IN_CONV)
        .and_then(|s| s.get(1).copied())
        .ok_or_else(|| CheckpointError::Unknown {
            path: path.into(),
            found: format!("no `{IN_CONV}`"),
        })?;
    let text = text_layout(path, index)?;
    // Any cross-attention key gives the text width; diffusers reads input_blocks.2's (there in every SD 1/2
    // model; SDXL's first attention is in input_blocks.4).
    let context_dim = index
        .names()
        .filter(|k| k.starts_with(UNET_PREFIX) && k.ends_with("attn2.to_k.weight"))
        .find_map(|k| index.shape(k).and_then(|s| s.last().copied()));
    let ema_tensors = index
        .names()
        .filter(|k| k.starts_with("model_ema."))
        .count();
    let mut detected = Detected {
        kind: None,
        guessed: false,
        text,
        in_channels,
        context_dim,
        ema_tensors,
    };
    if let Some(k) = kind {
        if k.in_channels() != in_channels {
            return Err(CheckpointError::KindMismatch {
                path: path.into(),
                kind: k,
                kind_text: k.in_channels(),
                channels: in_channels,
            });
        }
        // The text encoders and the cross-attention width tell the families apart; a published-size file must
        // agree.
        let width = k.context_dim();
        let published = matches!(context_dim, Some(768 | 1024 | 1280 | 2048));
        if text != k.text_layout() || (published && context_dim != Some(width)) {
            return Err(CheckpointError::KindText {
                path: path.into(),
                kind: k,
                says: k.text_layout().describe(),
                width,
                found: format!(
                    "a {} text encoder and cross-attention {} wide",
                    text.describe(),
                    context_dim.map_or_else(|| "of unknown width".into(), |d| d.to_string())
                ),
            });
        }
        detected.kind = Some(k);
        return Ok(detected);
    }
    detected.kind = match (text, context_dim, in_channels) {
        (TextLayout::Clip, Some(768), 4) => Some(CheckpointKind::Sd1),
        (TextLayout::Clip, Some(768), 9) => Some(CheckpointKind::Sd1Inpaint),
        (TextLayout::OpenClip, Some(1024), 5) => Some(CheckpointKind::Sd2Depth),
        (TextLayout::OpenClip, Some(1024), 9) => Some(CheckpointKind::Sd2Inpaint),
        (TextLayout::OpenClip, Some(1024), 4) => {
            // The weights cannot tell 512² epsilon from 768² v-prediction. Stability's model-spec metadata can;
            // without it diffusers takes v-prediction (stable-diffusion-2-1), and so does texaug, saying so.
            let spec = |k: &str| index.metadata().get(k).map(|v| v.to_ascii_lowercase());
            let v = match (
                spec("modelspec.prediction_type"),
                spec("modelspec.architecture"),
            ) {
                (Some(p), _) => Some(p.starts_with('v')),
                (None, Some(a)) if a.contains("768") || a.ends_with("-v") => Some(true),
                (None, Some(a)) if a.contains("512") || a.contains("base") => Some(false),
                _ => None,
            };
            detected.guessed = v.is_none();
            Some(if v.unwrap_or(true) {
                CheckpointKind::Sd2V
            } else {
                CheckpointKind::Sd2
            })
        }
        // SGM's prefixes say SDXL whatever the width (diffusers looks for a key alone, too).
        (TextLayout::Xl, _, 4) => Some(CheckpointKind::Sdxl),
        (TextLayout::XlRefiner, _, 4) => Some(CheckpointKind::SdxlRefiner),
        (TextLayout::Xl | TextLayout::XlRefiner, _, channels) => {
            return Err(CheckpointError::Unsupported {
                path: path.into(),
                what: format!(
                    "an SDXL checkpoint whose UNet takes {channels} input channels (SDXL inpainting has 9)"
                ),
                fix: "texaug runs SDXL base and refiner models (4 channels); inpaint with an SD 1.x/2.x \
                      inpainting model"
                    .into(),
            });
        }
        _ => None,
    };
    Ok(detected)
}

impl Detected {
    /// The kind, or the error that asks the user to name it.
    pub fn require_kind(&self, path: &Path) -> Result<CheckpointKind, CheckpointError> {
        self.kind.ok_or_else(|| CheckpointError::NeedKind {
            path: path.into(),
            found: format!(
                "a UNet with {} input channels and cross-attention width {}, a {} text encoder",
                self.in_channels,
                self.context_dim
                    .map_or_else(|| "unknown".into(), |d| d.to_string()),
                self.text.describe()
            ),
            kinds: CheckpointKind::names(),
        })
    }
}

fn not_a_checkpoint(path: &Path, index: &TensorIndex) -> CheckpointError {
    let has = |prefix: &str| index.names().any(|k| k.starts_with(prefix));
    let any = |part: &str| index.names().any(|k| k.contains(part));
    let (what, fix) = if has("control_model.") || has("controlnet_cond_embedding.") {
        (
            "a ControlNet",
            "give a depth stage `controlnet = \"folder\"` with a diffusers ControlNet folder",
        )
    } else if has("lora_unet_") || has("lora_te") || any(".lora_A.") || any(".lora_down.") {
        (
            "a LoRA",
            "give it as `[[model.lora]] path = \"…\"` beside a base model",
        )
    } else if any("emb_params") || any("string_to_param") || index.names().count() <= 2 {
        (
            "a textual-inversion embedding (or another small file)",
            "give it as `[[model.embedding]] path = \"…\"` beside a base model, or point `[model] path` at a full \
             checkpoint",
        )
    } else if has("encoder.down.") && has("decoder.up.") {
        (
            "a VAE in the original layout",
            "use it as `[model] vae = \"file\"` beside a base model",
        )
    } else if has("down_blocks.") || has("encoder.down_blocks.") || has("text_model.") {
        (
            "one diffusers component's weights",
            "point `[model] path` at the diffusers folder that holds model_index.json",
        )
    } else {
        return CheckpointError::Unknown {
            path: path.into(),
            found: first_keys(index),
        };
    };
    CheckpointError::NotACheckpoint {
        path: path.into(),
        what: what.into(),
        fix: fix.into(),
    }
}
