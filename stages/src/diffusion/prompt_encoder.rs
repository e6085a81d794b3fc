//! Prompts → what the UNet reads, as diffusers' pipelines encode them. SD 1/2: one CLIP text encoder, its last
//! hidden state. SDXL (`StableDiffusionXL*Pipeline.encode_prompt`): each encoder's penultimate hidden state,
//! concatenated along the features, and the last encoder's pooled output through its `text_projection` (a refiner
//! has only the second encoder).

use tch::{nn, nn::Module, nn::VarStore, Device, Tensor};

use super::clip::ClipTextTransformer;
use super::tokenizer::ClipTokenizer;

/// One text encoder with its tokenizer and the store that holds its weights.
pub struct TextTower {
    /// The diffusers component it was loaded from: `text_encoder`, or SDXL's `text_encoder_2`.
    pub component: &'static str,
    pub tokenizer: ClipTokenizer,
    pub net: ClipTextTransformer,
    /// `CLIPTextModelWithProjection.text_projection` (SDXL's second encoder).
    pub projection: Option<nn::Linear>,
    pub store: VarStore,
}

/// How the towers' outputs become the UNet's text conditioning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncodeStyle {
    /// SD 1/2: the last hidden state of the one encoder.
    LastHidden,
    /// SDXL: penultimate states concatenated, pooled projection of the last tower. `force_zeros_for_empty_prompt`
    /// (model_index.json): an empty negative prompt is all zeros rather than the encoding of "".
    Xl { force_zeros_for_empty_prompt: bool },
}

/// A batch's text conditioning.
#[derive(Debug)]
pub struct PromptEmbeds {
    /// `[b, 77, cross_attention_dim]`.
    pub context: Tensor,
    /// SDXL: `[b, projection_dim]`, the `text_embeds` of the added conditioning.
    pub pooled: Option<Tensor>,
}

impl PromptEmbeds {
    /// `[first; second]` along the batch (classifier-free guidance puts the negatives first).
    pub fn cat(first: &PromptEmbeds, second: &PromptEmbeds) -> PromptEmbeds {
        PromptEmbeds {
            context: Tensor::cat(&[&first.context, &second.context], 0),
            pooled: match (&first.pooled, &second.pooled) {
                (Some(a), Some(b)) => Some(Tensor::cat(&[a, b], 0)),
                _ => None,
            },
        }
    }
}

/// The pipeline's text encoders, in diffusers' order (`text_encoder`, then `text_encoder_2`).
pub struct PromptEncoder {
    pub towers: Vec<TextTower>,
    pub style: EncodeStyle,
}

impl PromptEncoder {
    /// The tower textual inversion and prompt ids refer to: the first.
    pub fn first(&self) -> &TextTower {
        &self.towers[0]
    }

    pub fn first_mut(&mut self) -> &mut TextTower {
        &mut self.towers[0]
    }

    /// `[b, 77]` ids of `prompts` by `tokenizer`, on `device`.
    fn ids(tokenizer: &ClipTokenizer, prompts: &[String], device: Device) -> Tensor {
        let ids: Vec<i64> = prompts.iter().flat_map(|p| tokenizer.encode(p)).collect();
        Tensor::from_slice(&ids)
            .reshape([prompts.len() as i64, tokenizer.max_length() as i64])
            .to_device(device)
    }

    /// Encodes already-expanded prompts (textual-inversion tokens spelled out).
    pub fn encode(&self, prompts: &[String], device: Device) -> PromptEmbeds {
        match self.style {
            EncodeStyle::LastHidden => {
                let t = self.first();
                PromptEmbeds {
                    context: t.net.forward(&Self::ids(&t.tokenizer, prompts, device)),
                    pooled: None,
                }
            }
            EncodeStyle::Xl { .. } => {
                let mut states = Vec::with_capacity(self.towers.len());
                let mut pooled = None;
                for t in &self.towers {
                    let (penultimate, pool) =
                        t.net
                            .forward_penultimate(&Self::ids(&t.tokenizer, prompts, device));
                    states.push(penultimate);
                    pooled = Some(match &t.projection {
                        Some(p) => p.forward(&pool),
                        None => pool,
                    });
                }
                PromptEmbeds {
                    context: Tensor::cat(&states, -1),
                    pooled,
                }
            }
        }
    }

    /// Negative prompts: as [`encode`](Self::encode), except that under `force_zeros_for_empty_prompt` an empty
    /// negative is zeros (what diffusers gives for `negative_prompt=None`).
    pub fn encode_negative(&self, negatives: &[String], device: Device) -> PromptEmbeds {
        let embeds = self.encode(negatives, device);
        let EncodeStyle::Xl {
            force_zeros_for_empty_prompt: true,
        } = self.style
        else {
            return embeds;
        };
        let empty: Vec<bool> = negatives.iter().map(|n| n.is_empty()).collect();
        if !empty.iter().any(|&e| e) {
            return embeds;
        }
        let keep = Tensor::from_slice(&empty.iter().map(|&e| !e).collect::<Vec<_>>())
            .to_device(device)
            .to_kind(embeds.context.kind());
        let zero_rows = |t: &Tensor| {
            let mut shape = vec![-1i64];
            shape.extend(std::iter::repeat_n(1, t.dim() - 1));
            t * keep.to_kind(t.kind()).reshape(shape.as_slice())
        };
        PromptEmbeds {
            context: zero_rows(&embeds.context),
            pooled: embeds.pooled.as_ref().map(zero_rows),
        }
    }
}
