//! The schedulers a recipe can name, and the diffusers class and overrides each one is.

use std::str::FromStr;

use serde_json::Value;

use super::error::SchedulerError;

/// The schedulers a recipe can name. Each maps to a diffusers class plus the overrides that make it that
/// sampler (e.g. `dpmpp2m` is `DPMSolverMultistepScheduler` with `algorithm_type="dpmsolver++"`, order 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SchedulerKind {
    Ddim,
    Euler,
    EulerAncestral,
    DpmPP2M,
    DpmPP2MKarras,
    Pndm,
}

impl SchedulerKind {
    pub const ALL: [SchedulerKind; 6] = [
        Self::Ddim,
        Self::Euler,
        Self::EulerAncestral,
        Self::DpmPP2M,
        Self::DpmPP2MKarras,
        Self::Pndm,
    ];

    /// The canonical name (what `FromStr` accepts first and what manifests record).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ddim => "ddim",
            Self::Euler => "euler",
            Self::EulerAncestral => "euler_a",
            Self::DpmPP2M => "dpmpp2m",
            Self::DpmPP2MKarras => "dpmpp2m_karras",
            Self::Pndm => "pndm",
        }
    }

    pub fn class_name(self) -> &'static str {
        match self {
            Self::Ddim => "DDIMScheduler",
            Self::Euler => "EulerDiscreteScheduler",
            Self::EulerAncestral => "EulerAncestralDiscreteScheduler",
            Self::DpmPP2M | Self::DpmPP2MKarras => "DPMSolverMultistepScheduler",
            Self::Pndm => "PNDMScheduler",
        }
    }

    /// Config keys this kind sets on top of the model's config.
    pub fn overrides(self) -> Vec<(&'static str, Value)> {
        match self {
            Self::DpmPP2M | Self::DpmPP2MKarras => vec![
                ("algorithm_type", Value::from("dpmsolver++")),
                ("solver_order", Value::from(2)),
                (
                    "use_karras_sigmas",
                    Value::from(self == Self::DpmPP2MKarras),
                ),
            ],
            _ => Vec::new(),
        }
    }
}

impl std::fmt::Display for SchedulerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SchedulerKind {
    type Err = SchedulerError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm: String = s
            .trim()
            .to_ascii_lowercase()
            .replace("++", "pp")
            .chars()
            .filter(|c| !matches!(c, '-' | '_' | ' ' | '.'))
            .collect();
        Ok(match norm.as_str() {
            "ddim" => Self::Ddim,
            "euler" => Self::Euler,
            "eulera" | "eulerancestral" => Self::EulerAncestral,
            "dpmpp2m" | "dpmsolverpp" | "dpmsolver" => Self::DpmPP2M,
            "dpmpp2mkarras" | "dpmpp2mk" => Self::DpmPP2MKarras,
            "pndm" | "plms" => Self::Pndm,
            _ => {
                return Err(SchedulerError::UnknownKind {
                    given: s.to_owned(),
                })
            }
        })
    }
}
