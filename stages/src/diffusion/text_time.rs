//! SDXL's extra conditioning (`addition_embed_type = "text_time"`): the pooled text embedding and six size/crop
//! ids (five with an aesthetic score, refiner-style), embedded as diffusers' `add_time_proj` + `add_embedding`
//! and added to the timestep embedding.

use super::embeddings::{timestep_embedding, TimestepEmbedding};
use tch::{nn, nn::Module, Tensor};

/// What an SDXL UNet (or its ControlNet) takes besides the text states, one row per sample of the batch.
#[derive(Debug)]
pub struct AddedCond {
    /// `[b, projection_dim]`: the second text encoder's projected pooled output.
    pub text_embeds: Tensor,
    /// `[b, n]`: original size, crop corner and target size (or aesthetic score) as floats.
    pub time_ids: Tensor,
}

impl AddedCond {
    /// Both parts doubled along the batch, `[first; second]`, for classifier-free guidance.
    pub fn cat(first: &AddedCond, second: &AddedCond) -> AddedCond {
        AddedCond {
            text_embeds: Tensor::cat(&[&first.text_embeds, &second.text_embeds], 0),
            time_ids: Tensor::cat(&[&first.time_ids, &second.time_ids], 0),
        }
    }
}

/// `add_time_proj` (sinusoidal, per id) and `add_embedding` (two linears) of a `UNet2DConditionModel`.
#[derive(Debug)]
pub struct TextTimeEmbedding {
    add_embedding: TimestepEmbedding,
    time_dim: i64,
    in_features: i64,
    flip_sin_to_cos: bool,
    freq_shift: f64,
}

impl TextTimeEmbedding {
    /// `vs` is the UNet's root: the linears live at `add_embedding.linear_{1,2}`.
    pub fn new(
        vs: &nn::Path,
        time_dim: i64,
        in_features: i64,
        time_embed_dim: i64,
        flip_sin_to_cos: bool,
        freq_shift: f64,
    ) -> Self {
        TextTimeEmbedding {
            add_embedding: TimestepEmbedding::new(
                vs / "add_embedding",
                in_features,
                time_embed_dim,
            ),
            time_dim,
            in_features,
            flip_sin_to_cos,
            freq_shift,
        }
    }

    /// Width of `add_embedding`'s input: `projection_dim + time_dim × ids`.
    pub fn in_features(&self) -> i64 {
        self.in_features
    }

    pub fn time_dim(&self) -> i64 {
        self.time_dim
    }

    /// `[b, time_embed_dim]` to add to the timestep embedding, in `kind`.
    pub fn forward(&self, added: &AddedCond, kind: tch::Kind) -> Tensor {
        let b = added.text_embeds.size()[0];
        let ids = added.time_ids.to_kind(tch::Kind::Float).reshape([-1]);
        let time = timestep_embedding(&ids, self.time_dim, self.flip_sin_to_cos, self.freq_shift)
            .reshape([b, -1]);
        let x = Tensor::cat(&[added.text_embeds.to_kind(tch::Kind::Float), time], -1);
        self.add_embedding.forward(&x.to_kind(kind))
    }
}
