//! Loading diffusers/transformers safetensors into a `VarStore`: one file or a sharded set
//! (`*.safetensors.index.json`), any float dtype into the store's dtype, with errors that name the key and the
//! file. Pickle checkpoints are refused. (The run hashes the model once, in the pipeline's digest cache.)

use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use super::mapped;

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
        "weight {key} is missing from {files} ({count} missing in all); the weights do not match the model's \
         config — check that both come from the same model (for a single-file checkpoint: its `[model] kind` or \
         `config`)"
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
type Header = (u64, Vec<Entry>, BTreeMap<String, String>);

fn read_header(path: &Path, f: &mut std::fs::File) -> Result<Header, WeightsError> {
    let bad = |reason: String| WeightsError::Format {
        path: path.to_path_buf(),
        reason,
    };
    let mut len = [0u8; 8];
    f.read_exact(&mut len).map_err(io(path))?;
    let n = u64::from_le_bytes(len);
    let file_len = f.metadata().map_err(io(path))?.len();
    // Checked before anything is allocated: a header may not claim more than the file holds.
    if n > 100_000_000 || n > file_len.saturating_sub(8) {
        return Err(bad(format!(
            "a header of {n} bytes in a file of {file_len} bytes"
        )));
    }
    let mut header = vec![0u8; n as usize];
    f.read_exact(&mut header).map_err(io(path))?;
    let v: serde_json::Value = serde_json::from_slice(&header).map_err(|e| bad(e.to_string()))?;
    let map = v
        .as_object()
        .ok_or_else(|| bad("header is not an object".into()))?;
    let metadata = map
        .get("__metadata__")
        .and_then(|m| m.as_object())
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    let mut entries = Vec::with_capacity(map.len());
    for (name, e) in map.iter().filter(|(k, _)| *k != "__metadata__") {
        let dtype = e.get("dtype").and_then(|d| d.as_str());
        // Every dimension a non-negative integer and both offsets integers, or the entry is refused (a dropped
        // value would give another shape).
        let shape: Option<Vec<i64>> = e.get("shape").and_then(|s| s.as_array()).and_then(|a| {
            a.iter()
                .map(|d| d.as_i64().filter(|v| *v >= 0))
                .collect::<Option<Vec<_>>>()
        });
        let offsets: Option<Vec<u64>> = e
            .get("data_offsets")
            .and_then(|s| s.as_array())
            .and_then(|a| a.iter().map(serde_json::Value::as_u64).collect());
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
    Ok((8 + n, entries, metadata))
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
    Ok(TensorIndex::open(files)?
        .names()
        .map(str::to_owned)
        .collect())
}

/// What a load did besides filling every variable.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// Checkpoint keys no variable asked for (e.g. `text_model.embeddings.position_ids`); harmless.
    pub unexpected: Vec<String>,
}

/// How a checkpoint tensor becomes a variable when the layouts differ (single-file checkpoints).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transform {
    /// The tensor as it is.
    Same,
    /// A 1×1 convolution `[o, i, 1, 1]` (or `[o, i, 1]`) read as the linear weight `[o, i]`.
    SqueezeConv,
    /// Part `k` of three equal row blocks (OpenCLIP's fused `in_proj` holds q, k and v).
    Third(usize),
    /// A matrix used as `x @ m` (open_clip's `text_projection`) read as the linear weight `mᵀ`.
    Transpose,
}

/// Where a variable's values come from: a checkpoint key and how to read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub key: String,
    pub transform: Transform,
}

impl Source {
    pub fn same(key: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            transform: Transform::Same,
        }
    }

    pub fn with(key: impl Into<String>, transform: Transform) -> Self {
        Self {
            key: key.into(),
            transform,
        }
    }
}

/// The tensors of one or more safetensors files, from their headers: where each one's bytes are. Reading a
/// tensor reads only its bytes, so a 4 GB single-file checkpoint is never held whole.
pub struct TensorIndex {
    files: Vec<PathBuf>,
    handles: Vec<std::fs::File>,
    entries: BTreeMap<String, (usize, u64, Entry)>,
    metadata: BTreeMap<String, String>,
}

impl TensorIndex {
    pub fn open(files: &[PathBuf]) -> Result<Self, WeightsError> {
        let mut index = Self {
            files: files.to_vec(),
            handles: Vec::with_capacity(files.len()),
            entries: BTreeMap::new(),
            metadata: BTreeMap::new(),
        };
        for (i, path) in files.iter().enumerate() {
            let mut f = std::fs::File::open(path).map_err(io(path))?;
            let (data_start, entries, metadata) = read_header(path, &mut f)?;
            for e in entries {
                index.entries.insert(e.name.clone(), (i, data_start, e));
            }
            index.metadata.extend(metadata);
            index.handles.push(f);
        }
        Ok(index)
    }

    /// Every tensor name, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    pub fn contains(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    pub fn shape(&self, key: &str) -> Option<&[i64]> {
        self.entries.get(key).map(|(_, _, e)| e.shape.as_slice())
    }

    pub fn dtype(&self, key: &str) -> Option<&str> {
        self.entries.get(key).map(|(_, _, e)| e.dtype.as_str())
    }

    /// The header's `__metadata__` strings (e.g. `modelspec.architecture`).
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }

    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    fn file_of(&self, key: &str) -> PathBuf {
        self.entries.get(key).map_or_else(
            || self.files_label().into(),
            |(i, _, _)| self.files[*i].clone(),
        )
    }

    fn files_label(&self) -> String {
        self.files
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Where the bytes of `key` are: its file, their offset and length, its kind; checked against the file.
    fn locate(&self, key: &str) -> Result<Located<'_>, WeightsError> {
        let (i, data_start, e) = self.entries.get(key).ok_or_else(|| WeightsError::Format {
            path: self.files_label().into(),
            reason: format!("no tensor {key:?}"),
        })?;
        let path = &self.files[*i];
        let format = |reason: String| WeightsError::Format {
            path: path.clone(),
            reason: format!("tensor {key:?}: {reason}"),
        };
        let kind = kind_of(&e.dtype).ok_or_else(|| WeightsError::Dtype {
            key: key.to_owned(),
            file: path.clone(),
            dtype: e.dtype.clone(),
        })?;
        let numel = e
            .shape
            .iter()
            .try_fold(1i64, |acc, &d| {
                (d >= 0).then(|| acc.checked_mul(d)).flatten()
            })
            .ok_or_else(|| format(format!("shape {:?} has no element count", e.shape)))?;
        let len = e.end - e.begin;
        if Some(len) != (numel as u64).checked_mul(kind.elt_size_in_bytes() as u64) {
            return Err(format(format!(
                "{len} bytes for shape {:?} of {}",
                e.shape, e.dtype
            )));
        }
        // Checked: the offsets come from the file; a wrapped sum would read some other tensor's bytes.
        let start = data_start
            .checked_add(e.begin)
            .ok_or_else(|| format(format!("data_offsets start at {}, past any file", e.begin)))?;
        let file_len = self.handles[*i].metadata().map_err(io(path))?.len();
        if start.checked_add(len).is_none_or(|end| end > file_len) {
            return Err(format(format!(
                "its bytes end past the file's {file_len} bytes (a partial download?)"
            )));
        }
        Ok(Located {
            file: *i,
            start,
            len,
            kind,
            shape: &e.shape,
        })
    }

    /// One tensor, in its file's dtype, on the CPU, in memory of its own.
    pub fn read(&self, key: &str) -> Result<Tensor, WeightsError> {
        use std::os::unix::fs::FileExt;
        let at = self.locate(key)?;
        let path = &self.files[at.file];
        let mut bytes = vec![0u8; at.len as usize];
        self.handles[at.file]
            .read_exact_at(&mut bytes, at.start)
            .map_err(io(path))?;
        Tensor::f_from_data_size(&bytes, at.shape, at.kind).map_err(|err| WeightsError::Format {
            path: path.clone(),
            reason: format!("tensor {key:?}: {err}"),
        })
    }

    /// One tensor, in its file's dtype, on the CPU, pointing into the file's read-only mapping
    /// ([`super::mapped`]): nothing is copied. Never to be written; a tensor the file does not align for its dtype
    /// is copied instead.
    pub fn read_mapped(&self, key: &str) -> Result<Tensor, WeightsError> {
        let at = self.locate(key)?;
        let path = &self.files[at.file];
        let fail = |reason: String| WeightsError::Format {
            path: path.clone(),
            reason: format!("tensor {key:?}: {reason}"),
        };
        let map = mapped::map(&self.handles[at.file]).map_err(io(path))?;
        let bytes = usize::try_from(at.start)
            .ok()
            .and_then(|s| map.get(s..s.checked_add(at.len as usize)?))
            .ok_or_else(|| {
                fail("its bytes end past the mapped file (changed while read?)".into())
            })?;
        if !(bytes.as_ptr() as usize).is_multiple_of(at.kind.elt_size_in_bytes()) {
            return Tensor::f_from_data_size(bytes, at.shape, at.kind)
                .map_err(|e| fail(e.to_string()));
        }
        let mut strides = vec![1i64; at.shape.len()];
        for d in (0..at.shape.len().saturating_sub(1)).rev() {
            strides[d] = strides[d + 1] * at.shape[d + 1].max(1);
        }
        // SAFETY: `bytes` holds exactly the tensor's elements (checked by `locate`), is aligned for its kind, and
        // lives for the process (mappings are never unmapped).
        unsafe { Tensor::f_from_blob(bytes.as_ptr(), at.shape, &strides, at.kind, Device::Cpu) }
            .map_err(|e| fail(e.to_string()))
    }
}

/// Where one tensor's bytes are (see [`TensorIndex::locate`]).
struct Located<'a> {
    file: usize,
    start: u64,
    len: u64,
    kind: Kind,
    shape: &'a [i64],
}

/// Copies every variable of `vs` from `files`, converting dtypes (fp16/bf16 files into fp32 stores and back).
/// Every variable must be found with its exact shape. Tensors are read one at a time, so memory peaks at
/// the store plus the largest tensor, not the store plus the file.
pub fn load_into(vs: &VarStore, files: &[PathBuf]) -> Result<LoadReport, WeightsError> {
    let index = TensorIndex::open(files)?;
    load_mapped(vs, &index, |name| vec![Source::same(name)])
}

/// Fills every variable of `vs` from `index`: `sources(name)` lists where the variable may come from, first
/// found wins (e.g. a single-file checkpoint's LDM key; a legacy name as a fallback). A variable none of whose
/// sources is there is an error naming the variable, the keys tried and the file.
pub fn load_mapped(
    vs: &VarStore,
    index: &TensorIndex,
    sources: impl Fn(&str) -> Vec<Source>,
) -> Result<LoadReport, WeightsError> {
    let vars: BTreeMap<String, Tensor> = vs.variables().into_iter().collect();
    let mut used = HashSet::new();
    let mut missing: Vec<(String, Vec<Source>)> = Vec::new();
    for (name, var) in &vars {
        let tried = sources(name);
        let Some(src) = tried.iter().find(|s| index.contains(&s.key)) else {
            missing.push((name.clone(), tried));
            continue;
        };
        let file = index.file_of(&src.key);
        let raw = index.read_mapped(&src.key)?;
        let want = var.size();
        let shape_err = |found: Vec<i64>| WeightsError::Shape {
            key: src.key.clone(),
            file: file.clone(),
            expected: want.clone(),
            found,
        };
        let value = match src.transform {
            Transform::Same => raw,
            Transform::SqueezeConv => {
                let s = raw.size();
                let trailing_ones = s.len() > 2 && s[2..].iter().all(|&d| d == 1);
                if !(trailing_ones || s.len() == 2) || s[..2] != want[..] {
                    return Err(shape_err(s));
                }
                raw.reshape(&want)
            }
            Transform::Third(k) => {
                let s = raw.size();
                if s.is_empty() || s[0] % 3 != 0 {
                    return Err(shape_err(s));
                }
                raw.narrow(0, k as i64 * (s[0] / 3), s[0] / 3)
            }
            Transform::Transpose => {
                let s = raw.size();
                if s.len() != 2 {
                    return Err(shape_err(s));
                }
                raw.tr()
            }
        };
        if value.size() != want {
            return Err(shape_err(
                index.shape(&src.key).unwrap_or_default().to_vec(),
            ));
        }
        let mut dst = var.shallow_clone();
        if dst.device() == Device::Cpu && value.kind() == dst.kind() && value.is_contiguous() {
            // The weight as the file stores it: point at the mapping, copy nothing.
            tch::no_grad(|| dst.set_data(&value));
        } else {
            tch::no_grad(|| dst.f_copy_(&value)).map_err(|err| WeightsError::Format {
                path: file.clone(),
                reason: format!("tensor {:?}: {err}", src.key),
            })?;
        }
        used.insert(src.key.clone());
    }
    if let Some((name, tried)) = missing.first() {
        let direct = tried.len() == 1 && tried[0].key == *name;
        return Err(WeightsError::MissingKey {
            key: if direct {
                format!("{name:?}")
            } else {
                format!(
                    "{name} (looked for {})",
                    tried
                        .iter()
                        .map(|s| format!("{:?}", s.key))
                        .collect::<Vec<_>>()
                        .join(" or ")
                )
            },
            count: missing.len(),
            files: index.files_label(),
        });
    }
    let unexpected = index
        .names()
        .filter(|n| !used.contains(*n))
        .map(str::to_owned)
        .collect();
    Ok(LoadReport { unexpected })
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
    fn same_dtype_cpu_weights_point_into_the_file_and_converted_ones_are_copied() {
        let dir = tempfile::tempdir().unwrap();
        let a = store(Kind::Float);
        let path = dir.path().join("model.safetensors");
        save_varstore(&a, &path, None).unwrap();
        let files = vec![path];
        let same = store(Kind::Float);
        load_into(&same, &files).unwrap();
        let converted = store(Kind::Half);
        load_into(&converted, &files).unwrap();
        for name in ["block.weight", "bias"] {
            let (want, got) = (&a.variables()[name], &same.variables()[name]);
            assert!(super::mapped::is_mapped(got), "{name} points into the file");
            assert_eq!((want - got).abs().max().double_value(&[]), 0.0);
            let half = &converted.variables()[name];
            assert!(
                !super::mapped::is_mapped(half),
                "{name} converted into memory of its own"
            );
            let err = (want - half.to_kind(Kind::Float))
                .abs()
                .max()
                .double_value(&[]);
            assert!(err < 1e-2, "{name}: fp16 rounding only: {err}");
        }
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
