//! Textual-inversion embeddings, as diffusers' `load_textual_inversion` loads them: a file's vectors become new
//! tokens past the vocabulary (`<tok>`, then `<tok>_1`, `<tok>_2`, … for a multi-vector embedding), and a prompt
//! naming `<tok>` is rewritten to name all of them. Files: diffusers' (`learned_embeds.safetensors`: one tensor,
//! named by its token) and A1111's (`emb_params`, or `string_to_param.*`), `[dim]` or `[n, dim]`.

use std::path::PathBuf;

use tch::{Kind, Tensor};

use super::weights::{TensorIndex, WeightsError};

/// An embedding the recipe names: its file and, where the file does not name it (A1111), its token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmbeddingSpec {
    pub path: PathBuf,
    pub token: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum EmbeddingError {
    #[error(transparent)]
    Weights(#[from] WeightsError),
    #[error(
        "embedding {path}: {reason}; give a diffusers `learned_embeds.safetensors` (one tensor named by its token) or \
         an A1111 embedding (`emb_params`) as .safetensors"
    )]
    Format { path: PathBuf, reason: String },
    #[error(
        "embedding {path} names no token (an A1111 file stores none); give one in the recipe: token = \"<my-style>\""
    )]
    NoToken { path: PathBuf },
    #[error(
        "embedding {path} has vectors of {found} values, the text encoder takes {expected}; the embedding was \
         trained for another base model (SD 1.x embeddings are 768 wide, SD 2.x 1024)"
    )]
    Width {
        path: PathBuf,
        found: i64,
        expected: i64,
    },
    #[error("embedding {path}: {reason}")]
    Token { path: PathBuf, reason: String },
}

/// One embedding read: its token and its vectors `[n, dim]`.
pub struct Embedding {
    pub path: PathBuf,
    pub token: String,
    pub vectors: Tensor,
}

impl Embedding {
    pub fn read(spec: &EmbeddingSpec) -> Result<Self, EmbeddingError> {
        let path = spec.path.clone();
        if super::weights::is_pickle(&path) {
            return Err(WeightsError::Pickle { path }.into());
        }
        let index = TensorIndex::open(std::slice::from_ref(&path))?;
        let names: Vec<&str> = index.names().collect();
        let a1111 = names
            .iter()
            .copied()
            .find(|n| *n == "emb_params" || n.starts_with("string_to_param."));
        let (key, file_token) = match (a1111, names.as_slice()) {
            (Some(k), _) => (k.to_owned(), None),
            (None, [only]) => ((*only).to_owned(), Some((*only).to_owned())),
            (None, _) => {
                return Err(EmbeddingError::Format {
                    path,
                    reason: format!(
                        "{} tensors and no `emb_params` (first: {})",
                        names.len(),
                        names.first().copied().unwrap_or("none")
                    ),
                })
            }
        };
        let token = spec
            .token
            .clone()
            .or(file_token)
            .ok_or_else(|| EmbeddingError::NoToken { path: path.clone() })?;
        let t = index.read(&key)?.to_kind(Kind::Float);
        let vectors = match t.dim() {
            1 => t.unsqueeze(0),
            2 => t,
            _ => {
                return Err(EmbeddingError::Format {
                    path,
                    reason: format!(
                        "tensor {key:?} has shape {:?}, not [dim] or [n, dim]",
                        t.size()
                    ),
                })
            }
        };
        if vectors.size()[0] == 0 {
            return Err(EmbeddingError::Format {
                path,
                reason: "no vectors".into(),
            });
        }
        Ok(Self {
            path,
            token,
            vectors,
        })
    }

    /// The tokens the vectors become: `<tok>`, `<tok>_1`, … (diffusers' names).
    pub fn tokens(&self) -> Vec<String> {
        (0..self.vectors.size()[0])
            .map(|i| {
                if i == 0 {
                    self.token.clone()
                } else {
                    format!("{}_{i}", self.token)
                }
            })
            .collect()
    }
}

/// Rewrites `<tok>` to `<tok> <tok>_1 …` for each multi-vector embedding (diffusers' `maybe_convert_prompt`).
pub fn expand_prompt(prompt: &str, embeddings: &[(String, usize)]) -> String {
    let mut out = prompt.to_owned();
    for (token, n) in embeddings.iter().filter(|(_, n)| *n > 1) {
        let all: Vec<String> = std::iter::once(token.clone())
            .chain((1..*n).map(|i| format!("{token}_{i}")))
            .collect();
        out = out.replace(token.as_str(), &all.join(" "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_vector_tokens_expand_as_diffusers_expands_them() {
        let e = [("<mug>".to_owned(), 3), ("<one>".to_owned(), 1)];
        assert_eq!(
            expand_prompt("a <mug> and <one>", &e),
            "a <mug> <mug>_1 <mug>_2 and <one>"
        );
    }
}
