//! A LoRA layer merged into its weight: `W += scale · (up · down)`, the product reshaped to `W` (linear
//! `[out, in]`, convolution `[out, in, kh, kw]` from a LoCon `down` of `[r, in, kh, kw]` and `up` of
//! `[out, r, 1, 1]`, or a 1×1 convolution adapted by a linear LoRA). Computed in float32, as diffusers' `fuse_lora`.
//! A stage's LoRA set is switched in and out exactly: the first time a set changes a weight, its value is kept,
//! and the next switch puts it back before merging the next set ([`AdapterState`]).

use std::collections::BTreeMap;

use tch::nn::VarStore;
use tch::{Kind, Tensor};

use crate::diffusion::mapped;

use super::{read_set, Lora, LoraError, LoraLayer, LoraSpec, Network};

/// `up · down` in the shape of `weight`, or `None` when the shapes do not fit.
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
    Some(product.reshape(&w).to_device(weight.device()))
}

/// Adds every layer of `loras` that adapts `network` to its variable in `store`. With `originals`, each weight's
/// value before its first change is kept there (by variable name).
pub fn merge(
    store: &VarStore,
    network: Network,
    loras: &[Lora],
    mut originals: Option<&mut BTreeMap<String, Tensor>>,
) -> Result<usize, LoraError> {
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
                shapes: format!(
                    "down {:?} and up {:?}, but the model's {} is {:?}",
                    layer.down.size(),
                    layer.up.size(),
                    layer.weight,
                    var.size()
                ),
            })?;
            if let Some(o) = originals.as_deref_mut() {
                o.entry(layer.weight.clone())
                    .or_insert_with(|| tch::no_grad(|| var.copy()));
            }
            let mut dst = var.shallow_clone();
            let updated = tch::no_grad(|| dst.to_kind(Kind::Float) + d * layer.scale);
            mapped::overwrite(&mut dst, &updated);
            merged += 1;
        }
    }
    Ok(merged)
}

/// The LoRA set a loaded pipeline carries beyond the model's own, and what it changed.
#[derive(Default)]
pub struct AdapterState {
    current: Vec<LoraSpec>,
    originals: BTreeMap<(Network, String), Tensor>,
}

impl AdapterState {
    /// Puts `specs` in place of the current set: every weight the current set changed gets its kept value back,
    /// then the new set merges. Nothing happens when the set is the current one.
    pub fn switch(
        &mut self,
        specs: &[LoraSpec],
        text: &[(Network, &VarStore)],
        unet: &VarStore,
        unet_ldm_key: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(), LoraError> {
        if specs == self.current.as_slice() {
            return Ok(());
        }
        let mut stores = text.to_vec();
        stores.push((Network::Unet, unet));
        self.restore(&stores);
        let loras = read_set(specs, text, unet, unet_ldm_key)?;
        for &(network, store) in &stores {
            let mut kept = BTreeMap::new();
            let merged = merge(store, network, &loras, Some(&mut kept));
            self.originals
                .extend(kept.into_iter().map(|(name, t)| ((network, name), t)));
            if let Err(e) = merged {
                // A set that fails partway leaves the model as loaded, not half-merged.
                self.restore(&stores);
                return Err(e);
            }
        }
        self.current = specs.to_vec();
        Ok(())
    }

    /// Puts back every weight the current set changed; the model is then as loaded.
    fn restore(&mut self, stores: &[(Network, &VarStore)]) {
        for (network, store) in stores {
            let vars: BTreeMap<String, Tensor> = store.variables().into_iter().collect();
            for ((net, name), kept) in &self.originals {
                if net == network {
                    if let Some(var) = vars.get(name) {
                        let mut dst = var.shallow_clone();
                        mapped::overwrite(&mut dst, kept);
                    }
                }
            }
        }
        self.originals.clear();
        self.current.clear();
    }
}
