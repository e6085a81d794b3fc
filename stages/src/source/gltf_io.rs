//! GLB container parsing, URI resolution and accessor reading over the raw glTF JSON.
//!
//! The JSON is kept as a `serde_json::Value` so that writing it back keeps unknown extensions and extras verbatim.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::SourceError;

const GLB_MAGIC: &[u8; 4] = b"glTF";
const CHUNK_JSON: u32 = 0x4E4F_534A;
const CHUNK_BIN: u32 = 0x004E_4942;

/// The JSON document and, for a GLB, its BIN chunk.
pub(crate) struct Container {
    pub json: Value,
    pub bin: Option<Vec<u8>>,
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at + 4)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Parses a .glb or .gltf file's bytes; the kind is recognised by the GLB magic, not the extension.
pub(crate) fn parse_container(path: &Path, bytes: &[u8]) -> Result<Container, SourceError> {
    let truncated = |cause: String| SourceError::TruncatedGlb {
        path: path.to_path_buf(),
        cause,
    };
    let bad = |cause: String| SourceError::BadGltf {
        path: path.to_path_buf(),
        cause,
    };
    if !bytes.starts_with(GLB_MAGIC) {
        let text = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let json: Value = serde_json::from_slice(text)
            .map_err(|e| bad(format!("the JSON does not parse: {e}")))?;
        return Ok(Container { json, bin: None });
    }
    let n = bytes.len();
    if n < 12 {
        return Err(truncated(format!(
            "the file has {n} bytes but the GLB header needs 12"
        )));
    }
    let version = u32_at(bytes, 4).unwrap_or(0);
    if version != 2 {
        return Err(bad(format!(
            "GLB container version {version}; only glTF 2.0 is supported"
        )));
    }
    let declared = u32_at(bytes, 8).unwrap_or(0) as usize;
    if declared > n {
        return Err(truncated(format!(
            "the header declares {declared} bytes but the file ends at byte {n} ({} bytes missing)",
            declared - n
        )));
    }
    let mut json = None;
    let mut bin = None;
    let mut at = 12;
    while at < declared {
        let (Some(len), Some(kind)) = (u32_at(bytes, at), u32_at(bytes, at + 4)) else {
            return Err(truncated(format!(
                "the chunk header at byte offset {at} needs 8 bytes but the GLB ends at byte {declared}"
            )));
        };
        let start = at + 8;
        let end = start + len as usize;
        if end > declared {
            return Err(truncated(format!(
                "the chunk at byte offset {at} declares {len} bytes (up to byte {end}) but the GLB ends at byte {declared}"
            )));
        }
        let data = &bytes[start..end];
        match kind {
            CHUNK_JSON if json.is_none() => {
                json = Some(serde_json::from_slice::<Value>(data).map_err(|e| {
                    bad(format!(
                        "the JSON chunk at byte offset {start} does not parse: {e}"
                    ))
                })?)
            }
            CHUNK_BIN if bin.is_none() && json.is_some() => bin = Some(data.to_vec()),
            // Unknown chunk types are to be ignored, as the specification says.
            _ => {}
        }
        at = end + (4 - end % 4) % 4;
    }
    let json = json.ok_or_else(|| bad("the GLB has no JSON chunk".to_string()))?;
    Ok(Container { json, bin })
}

/// Decodes standard base64 (the padding optional, whitespace ignored).
pub(crate) fn base64_decode(text: &str) -> Result<Vec<u8>, String> {
    fn value(c: u8) -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some((c - b'A') as u32),
            b'a'..=b'z' => Some((c - b'a') as u32 + 26),
            b'0'..=b'9' => Some((c - b'0') as u32 + 52),
            b'+' | b'-' => Some(62),
            b'/' | b'_' => Some(63),
            _ => None,
        }
    }
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for (i, c) in text.bytes().enumerate() {
        if c == b'=' {
            break;
        }
        if c.is_ascii_whitespace() {
            continue;
        }
        let v = value(c).ok_or_else(|| format!("invalid base64 character at position {i}"))?;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
}

/// Encodes standard base64 with padding.
pub(crate) fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn percent_decode(uri: &str) -> String {
    let bytes = uri.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Some(v) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The bytes a glTF `uri` names: a base64 data URI or a file relative to the asset's folder.
pub(crate) fn resolve_uri(path: &Path, uri: &str, what: &str) -> Result<Vec<u8>, SourceError> {
    if let Some(rest) = uri.strip_prefix("data:") {
        let (meta, data) = rest.split_once(',').unwrap_or((rest, ""));
        if !meta.ends_with(";base64") {
            return Err(SourceError::BadGltf {
                path: path.to_path_buf(),
                cause: format!("{what} has a data URI that is not base64 ({meta})"),
            });
        }
        return base64_decode(data).map_err(|e| SourceError::BadGltf {
            path: path.to_path_buf(),
            cause: format!("{what} has a corrupt base64 data URI: {e}"),
        });
    }
    let base = path.parent().unwrap_or(Path::new(""));
    let resolved: PathBuf = base.join(percent_decode(uri));
    std::fs::read(&resolved).map_err(|e| SourceError::MissingExternal {
        path: path.to_path_buf(),
        what: what.to_string(),
        uri: uri.to_string(),
        resolved,
        cause: e.to_string(),
    })
}

/// JSON bytes with every object's keys sorted, so output does not depend on serde_json's map features.
pub(crate) fn canonical_json(v: &Value) -> Vec<u8> {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                Value::Object(
                    keys.into_iter()
                        .map(|k| (k.clone(), sorted(&map[k])))
                        .collect(),
                )
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    serde_json::to_vec(&sorted(v)).unwrap_or_default()
}

/// `json[key]` as an index.
pub(crate) fn get_usize(v: &Value, key: &str) -> Option<usize> {
    v.get(key)?.as_u64().map(|x| x as usize)
}

/// `json[key]` as an array, empty when absent.
pub(crate) fn array<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// Reads accessors as f32 (normalized integers mapped as the specification says) or u32.
pub(crate) struct AccessorReader<'a> {
    pub path: &'a Path,
    pub json: &'a Value,
    pub buffers: &'a [Vec<u8>],
}

/// The most elements one accessor may have (a quarter of a billion: far beyond any mesh texaug re-textures).
const MAX_ELEMENTS: usize = 1 << 28;

fn component_size(component_type: u64) -> Option<usize> {
    match component_type {
        5120 | 5121 => Some(1),
        5122 | 5123 => Some(2),
        5125 | 5126 => Some(4),
        _ => None,
    }
}

fn type_width(ty: &str) -> Option<usize> {
    match ty {
        "SCALAR" => Some(1),
        "VEC2" => Some(2),
        "VEC3" => Some(3),
        "VEC4" | "MAT2" => Some(4),
        "MAT3" => Some(9),
        "MAT4" => Some(16),
        _ => None,
    }
}

fn component(bytes: &[u8], at: usize, component_type: u64, normalized: bool) -> f64 {
    let b = &bytes[at..];
    match (component_type, normalized) {
        (5120, false) => b[0] as i8 as f64,
        (5120, true) => (b[0] as i8 as f64 / 127.0).max(-1.0),
        (5121, false) => b[0] as f64,
        (5121, true) => b[0] as f64 / 255.0,
        (5122, false) => i16::from_le_bytes([b[0], b[1]]) as f64,
        (5122, true) => (i16::from_le_bytes([b[0], b[1]]) as f64 / 32767.0).max(-1.0),
        (5123, false) => u16::from_le_bytes([b[0], b[1]]) as f64,
        (5123, true) => u16::from_le_bytes([b[0], b[1]]) as f64 / 65535.0,
        (5125, _) => u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
        _ => f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
    }
}

impl<'a> AccessorReader<'a> {
    fn bad(&self, cause: String) -> SourceError {
        SourceError::BadGltf {
            path: self.path.to_path_buf(),
            cause,
        }
    }

    /// The bytes of a bufferView, bounds-checked.
    pub fn buffer_view(&self, index: usize) -> Result<&'a [u8], SourceError> {
        let view = array(self.json, "bufferViews")
            .get(index)
            .ok_or_else(|| self.bad(format!("bufferView {index} does not exist")))?;
        let buffer = get_usize(view, "buffer").unwrap_or(usize::MAX);
        let data = self.buffers.get(buffer).ok_or_else(|| {
            self.bad(format!(
                "bufferView {index} refers to buffer {buffer}, which does not exist"
            ))
        })?;
        let offset = get_usize(view, "byteOffset").unwrap_or(0);
        let length = get_usize(view, "byteLength").unwrap_or(0);
        data.get(offset..offset.saturating_add(length))
            .ok_or_else(|| {
                self.bad(format!(
                    "bufferView {index} spans bytes {offset}..{} of buffer {buffer}, which has {} bytes",
                    offset.saturating_add(length),
                    data.len()
                ))
            })
    }

    /// Reads `count × width` elements of a (bufferView, offset, stride) run into `out`.
    #[allow(clippy::too_many_arguments)]
    fn read_run(
        &self,
        what: &str,
        view: Option<usize>,
        offset: usize,
        count: usize,
        width: usize,
        component_type: u64,
        normalized: bool,
        out: &mut [f64],
    ) -> Result<(), SourceError> {
        let Some(view) = view else {
            return Ok(());
        };
        let size = component_size(component_type)
            .ok_or_else(|| self.bad(format!("{what} has componentType {component_type}")))?;
        let bytes = self.buffer_view(view)?;
        let stride = array(self.json, "bufferViews")
            .get(view)
            .and_then(|v| get_usize(v, "byteStride"))
            .unwrap_or(size * width);
        let element = size * width;
        // Checked: offsets and strides come from the file and may be near usize::MAX.
        let end = stride
            .checked_mul(count.saturating_sub(1))
            .and_then(|last| last.checked_add(offset))
            .and_then(|last| last.checked_add(element));
        if count > 0 && end.is_none_or(|end| end > bytes.len()) {
            return Err(self.bad(format!(
                "{what} reads {count} elements past the end of bufferView {view} ({} bytes)",
                bytes.len()
            )));
        }
        for i in 0..count {
            for c in 0..width {
                out[i * width + c] = component(
                    bytes,
                    offset + i * stride + c * size,
                    component_type,
                    normalized,
                );
            }
        }
        Ok(())
    }

    /// Reads accessor `index` as `count` elements of `width` components, sparse substitution applied.
    pub fn read(&self, index: usize, width: usize) -> Result<Vec<f64>, SourceError> {
        let what = format!("accessor {index}");
        let acc = array(self.json, "accessors")
            .get(index)
            .ok_or_else(|| self.bad(format!("{what} does not exist")))?;
        let ty = acc.get("type").and_then(Value::as_str).unwrap_or("");
        let actual = type_width(ty).ok_or_else(|| self.bad(format!("{what} has type {ty:?}")))?;
        if actual != width {
            return Err(self.bad(format!(
                "{what} has type {ty} where {width} components are required"
            )));
        }
        let count = get_usize(acc, "count").unwrap_or(0);
        let component_type = acc
            .get("componentType")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let normalized = acc
            .get("normalized")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        // A count no file could back is refused before it is allocated.
        if count > MAX_ELEMENTS {
            return Err(self.bad(format!(
                "{what} declares {count} elements, more than texaug reads ({MAX_ELEMENTS})"
            )));
        }
        let mut out = vec![0.0; count * width];
        self.read_run(
            &what,
            get_usize(acc, "bufferView"),
            get_usize(acc, "byteOffset").unwrap_or(0),
            count,
            width,
            component_type,
            normalized,
            &mut out,
        )?;
        if let Some(sparse) = acc.get("sparse") {
            let n = get_usize(sparse, "count").unwrap_or(0).min(count);
            let idx = sparse.get("indices").unwrap_or(&Value::Null);
            let val = sparse.get("values").unwrap_or(&Value::Null);
            let mut at = vec![0.0; n];
            self.read_run(
                &format!("{what} sparse indices"),
                get_usize(idx, "bufferView"),
                get_usize(idx, "byteOffset").unwrap_or(0),
                n,
                1,
                idx.get("componentType")
                    .and_then(Value::as_u64)
                    .unwrap_or(0),
                false,
                &mut at,
            )?;
            let mut values = vec![0.0; n * width];
            self.read_run(
                &format!("{what} sparse values"),
                get_usize(val, "bufferView"),
                get_usize(val, "byteOffset").unwrap_or(0),
                n,
                width,
                component_type,
                normalized,
                &mut values,
            )?;
            for (k, &i) in at.iter().enumerate() {
                let i = i as usize;
                if i >= count {
                    return Err(self.bad(format!("{what} has a sparse index {i} ≥ count {count}")));
                }
                out[i * width..(i + 1) * width]
                    .copy_from_slice(&values[k * width..(k + 1) * width]);
            }
        }
        Ok(out)
    }

    /// The number of elements of accessor `index`.
    pub fn count(&self, index: usize) -> Result<usize, SourceError> {
        array(self.json, "accessors")
            .get(index)
            .and_then(|a| get_usize(a, "count"))
            .ok_or_else(|| self.bad(format!("accessor {index} does not exist or has no count")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_every_length() {
        for n in 0..10u8 {
            let data: Vec<u8> = (0..n).map(|i| i.wrapping_mul(97).wrapping_add(3)).collect();
            assert_eq!(base64_decode(&base64_encode(&data)).unwrap(), data);
        }
        assert_eq!(base64_encode(b"Man"), "TWFu");
        assert_eq!(base64_encode(b"Ma"), "TWE=");
    }

    #[test]
    fn accessors_read_strided_normalized_and_sparse_data() {
        // View 0: 3 u16-normalized VEC2 elements with a 8-byte stride; view 1: sparse index [2]; view 2: value.
        let mut buf = Vec::new();
        for (u, v) in [(0u16, 65535u16), (32768, 0), (65535, 16384)] {
            buf.extend(u.to_le_bytes());
            buf.extend(v.to_le_bytes());
            buf.extend([0xAA; 4]);
        }
        buf.extend(2u16.to_le_bytes());
        buf.extend([0, 0]);
        buf.extend(0u16.to_le_bytes());
        buf.extend(65535u16.to_le_bytes());
        let json = serde_json::json!({
            "bufferViews": [
                {"buffer": 0, "byteLength": 24, "byteStride": 8},
                {"buffer": 0, "byteOffset": 24, "byteLength": 2},
                {"buffer": 0, "byteOffset": 28, "byteLength": 4}
            ],
            "accessors": [
                {"bufferView": 0, "componentType": 5123, "normalized": true, "count": 3, "type": "VEC2"},
                {"bufferView": 0, "componentType": 5123, "normalized": true, "count": 3, "type": "VEC2",
                 "sparse": {"count": 1, "indices": {"bufferView": 1, "componentType": 5123},
                            "values": {"bufferView": 2}}},
                {"bufferView": 0, "componentType": 5123, "count": 4, "type": "VEC2"}
            ]
        });
        let buffers = vec![buf];
        let reader = AccessorReader {
            path: Path::new("t.gltf"),
            json: &json,
            buffers: &buffers,
        };
        let plain = reader.read(0, 2).unwrap();
        assert_eq!(
            plain,
            vec![0.0, 1.0, 32768.0 / 65535.0, 0.0, 1.0, 16384.0 / 65535.0]
        );
        let sparse = reader.read(1, 2).unwrap();
        assert_eq!(&sparse[..4], &plain[..4]);
        assert_eq!(&sparse[4..], &[0.0, 1.0]);
        // A fourth element would run past the view.
        assert!(matches!(
            reader.read(2, 2),
            Err(SourceError::BadGltf { .. })
        ));
        assert!(matches!(
            reader.read(0, 3),
            Err(SourceError::BadGltf { .. })
        ));
    }

    #[test]
    fn glb_container_errors_name_offsets() {
        let mut glb = b"glTF".to_vec();
        glb.extend(2u32.to_le_bytes());
        glb.extend(100u32.to_le_bytes());
        glb.extend([0; 8]);
        match parse_container(Path::new("x.glb"), &glb) {
            Err(SourceError::TruncatedGlb { cause, .. }) => {
                assert!(cause.contains("100") && cause.contains("20"))
            }
            other => panic!("{:?}", other.err()),
        }
    }

    #[test]
    fn percent_decoding_handles_spaces() {
        assert_eq!(percent_decode("a%20b.png"), "a b.png");
        assert_eq!(percent_decode("100%"), "100%");
    }
}
