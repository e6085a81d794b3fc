//! Which weight each LoRA layer adapts. kohya names flatten a module path with `_` (`lora_unet_down_blocks_0_…_to_q`,
//! or the original layout's `lora_unet_input_blocks_1_1_proj_in`; `lora_te_text_model_encoder_layers_0_…`), which
//! cannot be split back unambiguously, so the table goes the other way: every variable of the loaded networks is
//! flattened the same way, and a layer is looked up. PEFT names are the module paths under `unet.` /
//! `text_encoder.`. SDXL files name their towers `lora_te1_` / `lora_te2_` (PEFT: `text_encoder.` /
//! `text_encoder_2.`) and their UNet after diffusers' modules or SGM's blocks (the original layout's names).

use std::collections::HashMap;

use crate::diffusion::weights::TensorIndex;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Network {
    Unet,
    TextEncoder,
    /// SDXL's second text encoder (OpenCLIP bigG), `text_encoder_2`.
    TextEncoder2,
}

impl Network {
    /// The diffusers component a network is (`unet`, `text_encoder`, `text_encoder_2`): PEFT's key prefix.
    pub fn component(self) -> &'static str {
        match self {
            Self::Unet => "unet",
            Self::TextEncoder => "text_encoder",
            Self::TextEncoder2 => "text_encoder_2",
        }
    }

    /// The text network of a diffusers component.
    pub fn text(component: &str) -> Network {
        if component == "text_encoder_2" {
            Self::TextEncoder2
        } else {
            Self::TextEncoder
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoraFormat {
    /// kohya / A1111: `lora_unet_*.lora_down.weight`, `.lora_up.weight`, `.alpha`.
    Kohya,
    /// diffusers / PEFT: `unet.<module>.lora_A.weight`, `.lora_B.weight` (or the older `.lora.down/.lora.up`).
    Peft,
}

impl std::fmt::Display for LoraFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Kohya => "kohya/A1111",
            Self::Peft => "diffusers/PEFT",
        })
    }
}

/// One layer's tensors in the file.
#[derive(Clone, Debug, Default)]
pub struct Pair {
    /// The layer's name in the file (the key without its `.lora_*` suffix).
    pub name: String,
    pub format: Option<LoraFormat>,
    pub down: Option<String>,
    pub up: Option<String>,
    pub alpha: Option<String>,
}

impl Pair {
    pub fn format(&self) -> LoraFormat {
        self.format.unwrap_or(LoraFormat::Kohya)
    }
}

const SUFFIXES: [(&str, LoraFormat, u8); 7] = [
    (".lora_down.weight", LoraFormat::Kohya, 0),
    (".lora_up.weight", LoraFormat::Kohya, 1),
    (".lora_A.weight", LoraFormat::Peft, 0),
    (".lora_B.weight", LoraFormat::Peft, 1),
    (".lora.down.weight", LoraFormat::Peft, 0),
    (".lora.up.weight", LoraFormat::Peft, 1),
    (".alpha", LoraFormat::Kohya, 2),
];

/// The file's layers, and the keys that belong to none (LoHa/LoKr/DoRA tensors, or not a LoRA at all).
pub fn pairs(index: &TensorIndex) -> (Vec<Pair>, Vec<String>) {
    let mut by_name: std::collections::BTreeMap<String, Pair> = Default::default();
    let mut others = Vec::new();
    for key in index.names() {
        let Some((name, format, role)) = SUFFIXES
            .iter()
            .find_map(|(s, f, r)| key.strip_suffix(s).map(|n| (n, *f, *r)))
        else {
            others.push(key.to_owned());
            continue;
        };
        let pair = by_name.entry(name.to_owned()).or_insert_with(|| Pair {
            name: name.to_owned(),
            ..Pair::default()
        });
        match role {
            0 => {
                pair.down = Some(key.to_owned());
                pair.format = Some(format);
            }
            1 => {
                pair.up = Some(key.to_owned());
                pair.format = Some(format);
            }
            _ => pair.alpha = Some(key.to_owned()),
        }
    }
    // A lone `.alpha` is no layer.
    let (pairs, lone): (Vec<Pair>, Vec<Pair>) = by_name
        .into_values()
        .partition(|p| p.down.is_some() || p.up.is_some());
    others.extend(lone.into_iter().filter_map(|p| p.alpha));
    (pairs, others)
}

/// Layer names → (network, variable), from the networks' own variables.
pub struct Resolver {
    table: HashMap<String, (Network, String)>,
}

fn flat(s: &str) -> String {
    s.replace('.', "_")
}

impl Resolver {
    /// `vars(network)`: the variable names of a network's store; `unet_ldm_key`: a UNet variable's key in the
    /// original layout (for kohya files named after it), without `model.diffusion_model.`.
    pub fn new(
        vars: &dyn Fn(Network) -> Vec<String>,
        unet_ldm_key: &dyn Fn(&str) -> Option<String>,
    ) -> Self {
        let mut table = HashMap::new();
        for var in vars(Network::Unet) {
            let Some(module) = var.strip_suffix(".weight") else {
                continue;
            };
            let entry = (Network::Unet, var.clone());
            table.insert(format!("lora_unet_{}", flat(module)), entry.clone());
            table.insert(format!("unet.{module}"), entry.clone());
            if let Some(ldm) = unet_ldm_key(&var) {
                if let Some(ldm_module) = ldm.strip_suffix(".weight") {
                    table
                        .entry(format!("lora_unet_{}", flat(ldm_module)))
                        .or_insert(entry);
                }
            }
        }
        for (network, kohya) in [
            (Network::TextEncoder, &["lora_te_", "lora_te1_"][..]),
            (Network::TextEncoder2, &["lora_te2_"][..]),
        ] {
            let peft = network.component();
            for var in vars(network) {
                let Some(module) = var.strip_suffix(".weight") else {
                    continue;
                };
                // Stores name the text model with or without `text_model.` (transformers 4 or 5 files).
                let bare = module.strip_prefix("text_model.").unwrap_or(module);
                let entry = (network, var.clone());
                for prefix in kohya {
                    table.insert(format!("{prefix}text_model_{}", flat(bare)), entry.clone());
                }
                table.insert(format!("{peft}.text_model.{bare}"), entry.clone());
                table.insert(format!("{peft}.{bare}"), entry);
            }
        }
        Self { table }
    }

    pub fn resolve(&self, pair: &Pair) -> Option<(Network, String)> {
        self.table.get(&pair.name).cloned()
    }
}
