//! Assembles a tiny model's single-file (LDM) checkpoint from its diffusers folder by the recipe in
//! `tests/fixtures/single_file/<model>.json`. The recipe was written by `ci/reference/single_file.py`, and the file
//! it describes was loaded back by diffusers to exactly the folder's weights; each tensor built here must have the
//! recipe's SHA-256, so this file is the one diffusers checked, tensor for tensor.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use tch::{Kind, Tensor};
use texaug_stages::files::sha256_hex;

use super::fixtures::{fixtures, read_json, read_tensors};

/// The tensors of `model`'s single file, in `kind` (their digests are checked in float32).
pub fn assemble(model: &str, kind: Kind) -> Vec<(String, Tensor)> {
    let dir = fixtures().join("models").join(model);
    let recipe = read_json(&fixtures().join("single_file").join(format!("{model}.json")));
    let parts: HashMap<&str, HashMap<String, Tensor>> = [
        ("unet", "unet/diffusion_pytorch_model.safetensors"),
        ("vae", "vae/diffusion_pytorch_model.safetensors"),
        ("text_encoder", "text_encoder/model.safetensors"),
        ("text_encoder_2", "text_encoder_2/model.safetensors"),
    ]
    .into_iter()
    .filter(|(_, f)| dir.join(f).is_file())
    .map(|(c, f)| (c, read_tensors(&dir.join(f))))
    .collect();
    let entries = recipe["entries"].as_array().expect("entries");
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        let key = e["key"].as_str().expect("key").to_owned();
        let sources: Vec<&Tensor> = e["src"]
            .as_array()
            .expect("src")
            .iter()
            .map(|s| {
                let (c, k) = s.as_str().expect("src").split_once(':').expect("c:k");
                parts[c]
                    .get(k)
                    .unwrap_or_else(|| panic!("{model}: {k} not in {c}"))
            })
            .collect();
        let t = match e["op"].as_str().expect("op") {
            "same" => sources[0].shallow_clone(),
            "unsqueeze" => sources[0].unsqueeze(-1).unsqueeze(-1),
            "cat" => Tensor::cat(&sources, 0),
            "transpose" => sources[0].tr(),
            op => panic!("unknown op {op}"),
        }
        .to_kind(Kind::Float)
        .contiguous();
        let bytes: Vec<f32> = Vec::try_from(t.flatten(0, -1)).expect("floats");
        let raw: Vec<u8> = bytes.iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(
            sha256_hex(&raw),
            e["sha256"].as_str().expect("sha256"),
            "{model}: {key} differs from the tensor diffusers checked"
        );
        out.push((key, t.to_kind(kind)));
    }
    out
}

/// Writes `model`'s single file into `dir` and returns its path.
pub fn write(model: &str, dir: &Path, kind: Kind) -> PathBuf {
    let path = dir.join(format!("{model}.safetensors"));
    Tensor::write_safetensors(&assemble(model, kind), &path).expect("write single file");
    path
}

/// A copy of `model`'s folder with its configs and tokenizer only, no weights: a `[model] config` folder.
pub fn config_only(model: &str, dir: &Path) -> PathBuf {
    let src = fixtures().join("models").join(model);
    let out = dir.join(format!("{model}-config"));
    for entry in walk(&src) {
        let rel = entry.strip_prefix(&src).expect("inside");
        if entry.extension().is_some_and(|e| e == "safetensors") {
            continue;
        }
        let to = out.join(rel);
        std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
        std::fs::copy(&entry, &to).expect("copy");
    }
    out
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
