//! A LoRA layer merged into its weight: `W += scale · (up · down)`, the product reshaped to `W` (linear
//! `[out, in]`, convolution `[out, in, kh, kw]` from a LoCon `down` of `[r, in, kh, kw]` and `up` of
//! `[out, r, 1, 1]`, or a 1×1 convolution adapted by a linear LoRA). Computed in float32, as diffusers' `fuse_lora`.

use std::collections::BTreeMap;

use tch::nn::VarStore;
use tch::{Kind, Tensor};

use super::{Lora, LoraError, LoraLayer, Network};

/// `up · down` in the shape of `weight`, or the shapes that do not fit.
fn delta(layer: &LoraLayer, weight: &Tensor) -> Option<Tensor> {
    let (down, up) = (&layer.down, &layer.up);
    let w = weight.size();
    let rank = *down.size().first()?;
    let out = *up.size().first()?;
    let up_numel: i64 = up.size().iter().product();
    let down_numel: i64 = down.size().iter().product();
    let w_numel: i64 = w.iter().product();
    if rank == 0
        || out != *w.first()?
        || up_numel != out * rank
        || down_numel / rank * out != w_numel
    {
        return None;
    }
    let product = up.reshape([out, rank]).matmul(&down.reshape([rank, -1]));
    Some(product.reshape(&w))
}

/// Adds every layer of `loras` that adapts `network` to its variable in `store` (float32 at this point).
pub fn merge(store: &VarStore, network: Network, loras: &[Lora]) -> Result<usize, LoraError> {
    let vars: BTreeMap<String, Tensor> = store.variables().into_iter().collect();
    let mut merged = 0;
    for lora in loras {
        for layer in lora.layers.iter().filter(|l| l.network == network) {
            let Some(var) = vars.get(&layer.weight) else {
                continue;
            };
            let d = delta(layer, var).ok_or_else(|| LoraError::Shape {
                path: lora.path.clone(),
                layer: layer.weight.trim_end_matches(".weight").to_owned(),
                weight: layer.weight.clone(),
                down: layer.down.size(),
                up: layer.up.size(),
                shape: var.size(),
            })?;
            let mut dst = var.shallow_clone();
            tch::no_grad(|| {
                let updated = dst.to_kind(Kind::Float) + d * layer.scale;
                dst.copy_(&updated);
            });
            merged += 1;
        }
    }
    Ok(merged)
}
