//! Reading the diffusers/transformers reference fixtures in `tests/fixtures` (made by
//! `ci/reference/make_fixtures.py`) and comparing tensors against them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tch::{Kind, Tensor};

/// `tests/fixtures`, or `TEXAUG_FIXTURES` when set (fixtures regenerated elsewhere).
pub fn fixtures() -> PathBuf {
    match std::env::var_os("TEXAUG_FIXTURES") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures"),
    }
}

pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

pub fn read_tensors(path: &Path) -> HashMap<String, Tensor> {
    Tensor::read_safetensors(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
        .into_iter()
        .collect()
}

/// max |a - b| / max(max |b|, 1e-3): relative to the tensor's scale, robust to values near zero.
pub fn rel_err(a: &Tensor, b: &Tensor) -> f64 {
    let diff = (a.to_kind(Kind::Double) - b.to_kind(Kind::Double))
        .abs()
        .max()
        .double_value(&[]);
    let scale = b
        .to_kind(Kind::Double)
        .abs()
        .max()
        .double_value(&[])
        .max(1e-3);
    diff / scale
}
