//! A recipe's `fit`: how an image that is not square meets the model's square `size`.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How an image that is not square meets a square `size` (a recipe's `fit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fit {
    /// The long side to `size`, the short one in proportion (both multiples of 8).
    #[default]
    Keep,
    /// The centred square of the image.
    Crop,
    /// The whole image on a square, its border repeating the image's edge.
    Pad,
    /// The image squashed to `size × size`.
    Stretch,
}

impl Fit {
    pub const NAMES: [&'static str; 4] = ["keep", "crop", "pad", "stretch"];

    pub fn as_str(self) -> &'static str {
        match self {
            Fit::Keep => "keep",
            Fit::Crop => "crop",
            Fit::Pad => "pad",
            Fit::Stretch => "stretch",
        }
    }

    pub fn is_default(&self) -> bool {
        *self == Fit::default()
    }

    /// How a mesh's texture fits: a crop would lose texels and a pad waste the model's pixels, so a texture keeps
    /// its aspect unless the recipe asks for stretching.
    pub fn for_texture(self) -> Fit {
        match self {
            Fit::Stretch => Fit::Stretch,
            _ => Fit::Keep,
        }
    }
}

impl FromStr for Fit {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "keep" => Ok(Fit::Keep),
            "crop" => Ok(Fit::Crop),
            "pad" => Ok(Fit::Pad),
            "stretch" => Ok(Fit::Stretch),
            _ => Err(format!(
                "unknown fit \"{s}\"; use one of {}",
                Fit::NAMES.join(", ")
            )),
        }
    }
}
