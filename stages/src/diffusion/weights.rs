//! Loading diffusers/transformers safetensors into a `VarStore`: one file or a sharded set
//! (`*.safetensors.index.json`), any float dtype into the store's dtype, with errors that name the key and the
//! file. Pickle checkpoints are refused. (The run hashes the model once, in the pipeline's digest cache.)

use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use tch::nn::VarStore;
use tch::{Kind, Tensor};

#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error("cannot read weights {path}: {source}; check the file exists and is readable")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "refusing to load {path}: pickle checkpoints (.bin, .ckpt, .pt, .pth) can run arbitrary code when loaded; \
         convert it to safetensors, e.g. in Python: `DiffusionPipeline.from_pretrained(dir).save_pretrained(out, \
         safe_serialization=True)`"
    )]
    Pickle { path: PathBuf },
    #[error("{path} is not a valid safetensors file: {reason}; re-download it (a partial download looks like this)")]
    Format { path: PathBuf, reason: String },
    #[error("shard index {path} is malformed: {reason}; re-download the model folder")]
    Index { path: PathBuf, reason: String },
    #[error("no weights in {dir}: looked for {tried}; download the model's {dir_name}/ folder completely")]
    NotFound {
        dir: PathBuf,
        dir_name: String,
        tried: String,
    },
    #[error(
        "weight {key:?} is missing from {files} ({count} missing in all); the checkpoint does not match the \
         config.json next to it — check that both come from the same model"
    )]
    MissingKey {
        key: String,
        count: usize,
        files: String,
    },
    #[error(
        "weight {key:?} in {file} has shape {found:?} but the config.json describes {expected:?}; \
         the config and the weights come from different models"
    )]
    Shape {
        key: String,
        file: PathBuf,
        expected: Vec<i64>,
        found: Vec<i64>,
    },
    #[error("weight {key:?} in {file} has dtype {dtype}, which texaug cannot load; re-save it as float16/32 or bfloat16")]
    Dtype {
        key: String,
        file: PathBuf,
        dtype: String,
    },
    #[error("cannot write weights {path}: {reason}; check free space and permissions")]
    Write { path: PathBuf, reason: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> WeightsError + '_ {
    move |source| WeightsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

const PICKLE_EXTS: [&str; 4] = ["bin", "ckpt", "pt", "pth"];

pub fn is_pickle(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| PICKLE_EXTS.contains(&e))
}

/// The safetensors files of one component: `dir/<stem>[.<variant>].safetensors`, or the shards listed by
/// `<stem>.safetensors.index[.<variant>].json`. With a variant, its files win and plain ones are the fallback,
/// as diffusers does. A pickle-only folder is an error explaining how to convert it.
pub fn find_weights(
    dir: &Path,
    stem: &str,
    variant: Option<&str>,
) -> Result<Vec<PathBuf>, WeightsError> {
    let mut tried = Vec::new();
    let mut singles = Vec::new();
    let mut indexes = Vec::new();
    if let Some(v) = variant {
        singles.push(format!("{stem}.{v}.safetensors"));
        indexes.push(format!("{stem}.safetensors.index.{v}.json"));
    }
    singles.push(format!("{stem}.safetensors"));
    indexes.push(format!("{stem}.safetensors.index.json"));
    for (single, index) in singles.iter().zip(&indexes) {
        let p = dir.join(single);
        if p.is_file() {
            return Ok(vec![p]);
        }
        let idx = dir.join(index);
        if idx.is_file() {
            return shards_of(&idx);
        }
        tried.push(single.clone());
        tried.push(index.clone());
    }
    // No variant asked for and no plain file: a folder holding only one variant (e.g. `.fp16.safetensors`,
    // as some repositories ship) is used as it is; its tensors convert to the store's dtype.
    if variant.is_none() {
        let mut variants: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| {
                        let n = p
                            .file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default();
                        n.starts_with(&format!("{stem}."))
                            && n.ends_with(".safetensors")
                            && n.matches('.').count() == 2
                    })
                    .collect()
            })
            .unwrap_or_default();
        variants.sort();
        if let Some(first) = variants.into_iter().next() {
            return Ok(vec![first]);
        }
    }
    for ext in PICKLE_EXTS {
        for name in [
            format!("{stem}.{ext}"),
            format!("{stem}.{}.{ext}", variant.unwrap_or("fp16")),
        ] {
            let p = dir.join(&name);
            if p.is_file() {
                return Err(WeightsError::Pickle { path: p });
            }
        }
    }
    Err(WeightsError::NotFound {
        dir: dir.to_path_buf(),
        dir_name: dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        tried: tried.join(", "),
    })
}

/// The distinct shard files an index's `weight_map` names, in first-seen order.
fn shards_of(index: &Path) -> Result<Vec<PathBuf>, WeightsError> {
    let bad = |reason: String| WeightsError::Index {
        path: index.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(index).map_err(io(index))?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let map = v
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| bad("no \"weight_map\" object".into()))?;
    let dir = index.parent().unwrap_or(Path::new("."));
    let mut seen = HashSet::new();
    let mut files = Vec::new();
    for (key, f) in map {
        let name = f
            .as_str()
            .ok_or_else(|| bad(format!("the file of {key:?} is not a string")))?;
        if seen.insert(name.to_owned()) {
            let p = dir.join(name);
            if is_pickle(&p) {
                return Err(WeightsError::Pickle { path: p });
            }
            if !p.is_file() {
                return Err(bad(format!(
                    "shard {name} (holding {key:?}) is missing next to the index"
                )));
            }
            files.push(p);
        }
    }
    Ok(files)
}

/// One tensor's entry in a safetensors header.
struct Entry {
    name: String,
    dtype: String,
    shape: Vec<i64>,
    begin: u64,
    end: u64,
}

/// Reads a safetensors header: the entries and where the data section starts.
fn read_header(path: &Path, f: &mut std::fs::File) -> Result<(u64, Vec<Entry>), WeightsError> {
    let bad = |reason: String| WeightsError::Format {
        path: path.to_path_buf(),
        reason,
    };
    let mut len = [0u8; 8];
    f.read_exact(&mut len).map_err(io(path))?;
    let n = u64::from_le_bytes(len);
    if n > 100_000_000 {
        return Err(bad(format!("header of {n} bytes")));
    }
    let mut header = vec![0u8; n as usize];
    f.read_exact(&mut header).map_err(io(path))?;
    let v: serde_json::Value = serde_json::from_slice(&header).map_err(|e| bad(e.to_string()))?;
    let map = v
        .as_object()
        .ok_or_else(|| bad("header is not an object".into()))?;
    let mut entries = Vec::with_capacity(map.len());
    for (name, e) in map.iter().filter(|(k, _)| *k != "__metadata__") {
        let dtype = e.get("dtype").and_then(|d| d.as_str());
        let shape: Option<Vec<i64>> = e
            .get("shape")
            .and_then(|s| s.as_array())
            .map(|a| a.iter().filter_map(|d| d.as_i64()).collect());
        let offsets: Option<Vec<u64>> = e
            .get("data_offsets")
            .and_then(|s| s.as_array())
            .map(|a| a.iter().filter_map(|d| d.as_u64()).collect());
        match (dtype, shape, offsets.as_deref()) {
            (Some(dtype), Some(shape), Some(&[begin, end])) if end >= begin => {
                entries.push(Entry {
                    name: name.clone(),
                    dtype: dtype.to_owned(),
                    shape,
                    begin,
                    end,
                })
            }
            _ => {
                return Err(bad(format!(
                    "entry {name:?} lacks dtype, shape or data_offsets"
                )))
            }
        }
    }
    Ok((8 + n, entries))
}

fn kind_of(dtype: &str) -> Option<Kind> {
    Some(match dtype {
        "F16" => Kind::Half,
        "BF16" => Kind::BFloat16,
        "F32" => Kind::Float,
        "F64" => Kind::Double,
        "I64" => Kind::Int64,
        "I32" => Kind::Int,
        "I16" => Kind::Int16,
        "I8" => Kind::Int8,
        "U8" => Kind::Uint8,
        "BOOL" => Kind::Bool,
        _ => return None,
    })
}

/// Tensor names of safetensors files, from their headers only.
pub fn tensor_names(files: &[PathBuf]) -> Result<Vec<String>, WeightsError> {
    let mut names = Vec::new();
    for path in files {
        let mut f = std::fs::File::open(path).map_err(io(path))?;
        names.extend(read_header(path, &mut f)?.1.into_iter().map(|e| e.name));
    }
    Ok(names)
}

/// What a load did besides filling every variable.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// Checkpoint keys no variable asked for (e.g. `text_model.embeddings.position_ids`); harmless.
    pub unexpected: Vec<String>,
}

/// Copies every variable of `vs` from `files`, converting dtypes (fp16/bf16 files into fp32 stores and back).
/// Every variable must be found with its exact shape. Tensors are read one at a time, so memory peaks at
/// the store plus the largest tensor, not the store plus the file.
pub fn load_into(vs: &VarStore, files: &[PathBuf]) -> Result<LoadReport, WeightsError> {
    let vars: BTreeMap<String, Tensor> = vs.variables().into_iter().collect();
    let mut found = HashSet::new();
    let mut report = LoadReport::default();
    for path in files {
        let mut f = std::fs::File::open(path).map_err(io(path))?;
        let (data_start, entries) = read_header(path, &mut f)?;
        let format = |name: &str, reason: String| WeightsError::Format {
            path: path.clone(),
            reason: format!("tensor {name:?}: {reason}"),
        };
        for e in entries {
            let Some(var) = vars.get(&e.name) else {
                report.unexpected.push(e.name);
                continue;
            };
            if e.shape != var.size() {
                return Err(WeightsError::Shape {
                    key: e.name,
                    file: path.clone(),
                    expected: var.size(),
                    found: e.shape,
                });
            }
            let kind = kind_of(&e.dtype).ok_or_else(|| WeightsError::Dtype {
                key: e.name.clone(),
                file: path.clone(),
                dtype: e.dtype.clone(),
            })?;
            let numel: i64 = e.shape.iter().product();
            let len = e.end - e.begin;
            if len != numel as u64 * kind.elt_size_in_bytes() as u64 {
                return Err(format(
                    &e.name,
                    format!("{len} bytes for shape {:?} of {}", e.shape, e.dtype),
                ));
            }
            // Checked: the offsets come from the file; a wrapped sum would read some other tensor's bytes.
            let start = data_start.checked_add(e.begin).ok_or_else(|| {
                format(
                    &e.name,
                    format!("data_offsets start at {}, past any file", e.begin),
                )
            })?;
            let mut bytes = vec![0u8; len as usize];
            f.seek(SeekFrom::Start(start)).map_err(io(path))?;
            f.read_exact(&mut bytes).map_err(io(path))?;
            let src = Tensor::f_from_data_size(&bytes, &e.shape, kind)
                .map_err(|err| format(&e.name, err.to_string()))?;
            let mut dst = var.shallow_clone();
            tch::no_grad(|| dst.f_copy_(&src)).map_err(|err| format(&e.name, err.to_string()))?;
            found.insert(e.name);
        }
    }
    let missing: Vec<&String> = vars.keys().filter(|k| !found.contains(*k)).collect();
    if let Some(first) = missing.first() {
        return Err(WeightsError::MissingKey {
            key: (*first).clone(),
            count: missing.len(),
            files: files
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    report.unexpected.sort();
    Ok(report)
}

/// Writes every variable of `vs` to one safetensors file, optionally cast (e.g. to `Kind::Half`).
pub fn save_varstore(vs: &VarStore, path: &Path, kind: Option<Kind>) -> Result<(), WeightsError> {
    let mut named: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .map(|(k, v)| {
            let t = v.detach().to_device(tch::Device::Cpu);
            (
                k,
                kind.map_or_else(|| t.shallow_clone(), |kd| t.to_kind(kd))
                    .contiguous(),
            )
        })
        .collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    Tensor::write_safetensors(&named, path).map_err(|e| WeightsError::Write {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{nn, Device};

    fn store(kind: Kind) -> VarStore {
        let mut vs = VarStore::new(Device::Cpu);
        let root = vs.root();
        let _ = root.sub("block").var(
            "weight",
            &[2, 3],
            nn::Init::Randn {
                mean: 0.0,
                stdev: 1.0,
            },
        );
        let _ = root.var("bias", &[3], nn::Init::Const(0.5));
        if kind != Kind::Float {
            vs.set_kind(kind);
        }
        vs
    }

    #[test]
    fn round_trip_through_half_precision_file() {
        let dir = tempfile::tempdir().unwrap();
        let a = store(Kind::Float);
        let path = dir.path().join("diffusion_pytorch_model.fp16.safetensors");
        save_varstore(&a, &path, Some(Kind::Half)).unwrap();
        let files = find_weights(dir.path(), "diffusion_pytorch_model", Some("fp16")).unwrap();
        assert_eq!(files, vec![path.clone()]);
        let mut names = tensor_names(&files).unwrap();
        names.sort();
        assert_eq!(names, vec!["bias", "block.weight"]);
        let b = store(Kind::Float);
        load_into(&b, &files).unwrap();
        let (wa, wb) = (
            &a.variables()["block.weight"],
            &b.variables()["block.weight"],
        );
        assert_eq!(wb.kind(), Kind::Float);
        let err = (wa - wb).abs().max().double_value(&[]);
        assert!(err > 0.0 && err < 1e-2, "fp16 rounding only: {err}");
    }

    #[test]
    fn missing_and_misshapen_keys_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.safetensors");
        let w = Tensor::zeros([2, 4], (Kind::Float, Device::Cpu));
        Tensor::write_safetensors(&[("block.weight", &w)], &path).unwrap();
        let err = load_into(&store(Kind::Float), std::slice::from_ref(&path))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("block.weight") && err.contains("[2, 4]") && err.contains("[2, 3]"),
            "{err}"
        );
        let w = Tensor::zeros([2, 3], (Kind::Float, Device::Cpu));
        Tensor::write_safetensors(&[("block.weight", &w), ("extra", &w)], &path).unwrap();
        let err = load_into(&store(Kind::Float), &[path])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("\"bias\"") && err.contains("model.safetensors"),
            "{err}"
        );
    }

    #[test]
    fn offsets_past_any_file_are_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.safetensors");
        let begin = u64::MAX - 12;
        let header = format!(
            r#"{{"bias":{{"dtype":"F32","shape":[3],"data_offsets":[{begin},{}]}}}}"#,
            begin + 12
        );
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend(header.as_bytes());
        bytes.extend([0u8; 12]);
        std::fs::write(&path, bytes).unwrap();
        let vs = VarStore::new(Device::Cpu);
        let _ = vs.root().var("bias", &[3], nn::Init::Const(0.5));
        let err = load_into(&vs, &[path]).unwrap_err().to_string();
        assert!(
            err.contains("bias") && err.contains("model.safetensors"),
            "{err}"
        );
    }

    #[test]
    fn sharded_index_loads_all_shards_and_reports_extras() {
        let dir = tempfile::tempdir().unwrap();
        let w = Tensor::ones([2, 3], (Kind::Float, Device::Cpu));
        let b = Tensor::ones([3], (Kind::Float, Device::Cpu));
        Tensor::write_safetensors(&[("block.weight", &w)], dir.path().join("m-1.safetensors"))
            .unwrap();
        Tensor::write_safetensors(
            &[("bias", &b), ("extra", &b)],
            dir.path().join("m-2.safetensors"),
        )
        .unwrap();
        let index = r#"{"metadata": {}, "weight_map": {"block.weight": "m-1.safetensors", "bias": "m-2.safetensors", "extra": "m-2.safetensors"}}"#;
        std::fs::write(dir.path().join("model.safetensors.index.json"), index).unwrap();
        let files = find_weights(dir.path(), "model", None).unwrap();
        assert_eq!(files.len(), 2);
        let vs = store(Kind::Float);
        let report = load_into(&vs, &files).unwrap();
        assert_eq!(report.unexpected, vec!["extra"]);
        assert_eq!(vs.variables()["bias"].double_value(&[0]), 1.0);
    }

    #[test]
    fn a_lone_variant_is_found_without_asking() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("diffusion_pytorch_model.fp16.safetensors");
        save_varstore(&store(Kind::Float), &p, Some(Kind::Half)).unwrap();
        assert_eq!(
            find_weights(dir.path(), "diffusion_pytorch_model", None).unwrap(),
            vec![p]
        );
        let err = find_weights(dir.path(), "model", None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("model.safetensors"), "{err}");
    }

    #[test]
    fn pickle_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("diffusion_pytorch_model.bin"), b"x").unwrap();
        let err = find_weights(dir.path(), "diffusion_pytorch_model", None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("arbitrary code") && err.contains("safe_serialization=True"),
            "{err}"
        );
    }
}
