//! Why a CLIP scorer could not be loaded or could not score. Every message names the file and the fix.

use std::path::PathBuf;

use crate::diffusion::error::DiffusionError;
use crate::diffusion::hub::HubError;
use crate::diffusion::tokenizer::TokenizerError;
use crate::diffusion::weights::WeightsError;

/// What a transformers `CLIPModel` folder holds, for messages that tell a user what to point at.
pub(crate) const LAYOUT: &str = "a transformers CLIPModel folder in the layout of openai/clip-vit-large-patch14 \
     (config.json with text_config and vision_config, model.safetensors with text_model.*, vision_model.*, \
     text_projection.weight, visual_projection.weight and logit_scale)";

#[derive(Debug, thiserror::Error)]
pub enum ScoreError {
    #[error("CLIP model folder {path} does not exist; give {LAYOUT}, or a hub id in the local Hugging Face cache")]
    NoFolder { path: PathBuf },
    #[error("cannot read {path}: {source}; the CLIP model folder must hold it ({LAYOUT})")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} is not a CLIPModel config at line {line}, column {column}: {message}; save the model with \
         transformers' `CLIPModel.save_pretrained(dir)` or download it whole"
    )]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: `{field}` {message}; {fix}")]
    Field {
        path: PathBuf,
        field: String,
        message: String,
        fix: String,
    },
    #[error(
        "weight {key} is missing from {file} ({count} missing in all); the file is not the CLIPModel its \
         config.json describes: give {LAYOUT}, with config and weights from the same model"
    )]
    MissingKey {
        key: String,
        count: usize,
        file: String,
    },
    #[error(transparent)]
    Weights(WeightsError),
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    #[error(
        "{dir} has no tokenizer (vocab.json + merges.txt or tokenizer.json) and no CLIP BPE vocabulary was found \
         (looked at {tried}); copy the model's tokenizer files into the folder or set TEXAUG_CLIP_VOCAB to \
         bpe_simple_vocab_16e6.txt.gz"
    )]
    NoVocab { dir: PathBuf, tried: String },
    #[error(transparent)]
    Hub(#[from] HubError),
    #[error(
        "{images} images but {texts} texts: CLIP scores pairs, one text per image, in order; pass lists of \
         equal length"
    )]
    Pairs { images: usize, texts: usize },
    #[error("image {index} is empty ({width}x{height}); score only decoded images with pixels")]
    EmptyImage {
        index: usize,
        width: u32,
        height: u32,
    },
    #[error(
        "text {index} tokenizes to an id past the model's vocabulary ({vocab} ids in {config}); the tokenizer \
         and the model come from different CLIP models: use the model folder's own vocab.json and merges.txt"
    )]
    Vocab {
        index: usize,
        vocab: i64,
        config: PathBuf,
    },
    #[error(transparent)]
    Write(#[from] DiffusionError),
}

impl From<WeightsError> for ScoreError {
    fn from(e: WeightsError) -> Self {
        match e {
            WeightsError::MissingKey { key, count, files } => ScoreError::MissingKey {
                key,
                count,
                file: files,
            },
            other => ScoreError::Weights(other),
        }
    }
}

impl ScoreError {
    pub(crate) fn field(
        path: impl Into<PathBuf>,
        field: &str,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        ScoreError::Field {
            path: path.into(),
            field: field.to_owned(),
            message: message.into(),
            fix: fix.into(),
        }
    }
}

/// A JSON file of a CLIP folder (`config.json`, `preprocessor_config.json`), a parse error located at its line.
pub fn read_json(path: &std::path::Path) -> Result<serde_json::Value, ScoreError> {
    let text = std::fs::read_to_string(path).map_err(|source| ScoreError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| ScoreError::Parse {
        path: path.to_path_buf(),
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })
}
