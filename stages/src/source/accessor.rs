//! Reading glTF accessors (strided, normalized, sparse, or zeros without a bufferView), every size checked against
//! the bytes that back it and the element cap before anything is allocated.

use std::path::Path;

use serde_json::Value;

use super::error::SourceError;
use super::gltf_io::{array, get_usize};
use super::limits::SourceLimits;

/// Reads accessors as f32 (normalized integers mapped as the specification says) or u32.
pub(crate) struct AccessorReader<'a> {
    pub path: &'a Path,
    pub json: &'a Value,
    pub buffers: &'a [Vec<u8>],
    pub limits: &'a SourceLimits,
}

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

/// One component at byte `at`; the caller has checked that it lies inside `bytes`.
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

/// `count` elements of a bufferView, every byte of them checked to lie inside the view.
#[derive(Clone, Copy)]
struct Run<'a> {
    bytes: &'a [u8],
    offset: usize,
    stride: usize,
}

/// A sparse substitution: `count` (index, value) pairs.
#[derive(Clone, Copy)]
struct Sparse<'a> {
    count: usize,
    indices: Run<'a>,
    index_type: u64,
    values: Run<'a>,
}

/// An accessor with every size and bound checked, nothing read or allocated yet.
struct Layout<'a> {
    what: String,
    ty: &'a str,
    width: usize,
    count: usize,
    component_type: u64,
    size: usize,
    normalized: bool,
    /// `None`: no bufferView, the elements are zeros.
    dense: Option<Run<'a>>,
    sparse: Option<Sparse<'a>>,
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

    /// Checks that `count` elements of `element` bytes from `offset` of bufferView `view` lie inside it.
    /// `strided`: the view's `byteStride` applies (not for sparse indices and values).
    fn run(
        &self,
        what: &str,
        view: usize,
        offset: usize,
        count: usize,
        element: usize,
        strided: bool,
    ) -> Result<Run<'a>, SourceError> {
        let bytes = self.buffer_view(view)?;
        let declared = array(self.json, "bufferViews")
            .get(view)
            .and_then(|v| get_usize(v, "byteStride"))
            .filter(|_| strided);
        // A stride of 0 meant "tightly packed" in glTF 1.0 and some exporters still write it.
        let stride = match declared {
            None | Some(0) => element,
            Some(s) if s < element => {
                return Err(self.bad(format!(
                    "{what} has elements of {element} bytes but bufferView {view} has byteStride {s}; a stride \
                     must be at least the element size"
                )))
            }
            Some(s) => s,
        };
        // Checked: offsets and strides come from the file and may be near usize::MAX.
        let end = stride
            .checked_mul(count.saturating_sub(1))
            .and_then(|last| last.checked_add(offset))
            .and_then(|last| last.checked_add(element));
        if count > 0 && end.is_none_or(|end| end > bytes.len()) {
            return Err(self.bad(format!(
                "{what} reads {count} elements of {element} bytes (stride {stride}) from byte {offset} of \
                 bufferView {view}, which has only {} bytes",
                bytes.len()
            )));
        }
        Ok(Run {
            bytes,
            offset,
            stride,
        })
    }

    /// Accessor `index` with its sizes and bounds checked against the bytes behind it and the limits.
    fn layout(&self, index: usize) -> Result<Layout<'a>, SourceError> {
        let what = format!("accessor {index}");
        let acc = array(self.json, "accessors")
            .get(index)
            .ok_or_else(|| self.bad(format!("{what} does not exist")))?;
        let ty = acc.get("type").and_then(Value::as_str).unwrap_or("");
        let width = type_width(ty).ok_or_else(|| self.bad(format!("{what} has type {ty:?}")))?;
        let count = get_usize(acc, "count").unwrap_or(0);
        let component_type = acc
            .get("componentType")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let size = component_size(component_type)
            .ok_or_else(|| self.bad(format!("{what} has componentType {component_type}")))?;
        let normalized = acc
            .get("normalized")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let view = get_usize(acc, "bufferView");
        // A count no file backs (no bufferView: zeros) is refused before anything is allocated; one with a
        // bufferView is bounded by its bytes as well.
        let max = self.limits.max_accessor_elements;
        if count as u64 > max {
            return Err(SourceError::OverLimit {
                path: self.path.to_path_buf(),
                what,
                cause: format!(
                    "declares {count} elements{}, over the limit of {max}",
                    if view.is_none() {
                        " with no bufferView (all zeros)"
                    } else {
                        ""
                    }
                ),
                limit: "max_accessor_elements",
            });
        }
        let element = size * width;
        let offset = get_usize(acc, "byteOffset").unwrap_or(0);
        let dense = match view {
            Some(view) => Some(self.run(&what, view, offset, count, element, true)?),
            None => None,
        };
        let sparse = match acc.get("sparse") {
            None => None,
            Some(sparse) => {
                let n = get_usize(sparse, "count").unwrap_or(0);
                if n > count {
                    return Err(self.bad(format!(
                        "{what} has a sparse count of {n}, more than its {count} elements"
                    )));
                }
                let idx = sparse.get("indices").unwrap_or(&Value::Null);
                let val = sparse.get("values").unwrap_or(&Value::Null);
                let index_type = idx
                    .get("componentType")
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                let index_size = match index_type {
                    5121 => 1,
                    5123 => 2,
                    5125 => 4,
                    other => {
                        return Err(self.bad(format!(
                            "{what}'s sparse indices have componentType {other}; they must be unsigned byte, short \
                             or int (5121, 5123, 5125)"
                        )))
                    }
                };
                let (Some(idx_view), Some(val_view)) =
                    (get_usize(idx, "bufferView"), get_usize(val, "bufferView"))
                else {
                    return Err(self.bad(format!(
                        "{what}'s sparse indices or values have no bufferView"
                    )));
                };
                let indices = self.run(
                    &format!("{what} sparse indices"),
                    idx_view,
                    get_usize(idx, "byteOffset").unwrap_or(0),
                    n,
                    index_size,
                    false,
                )?;
                let values = self.run(
                    &format!("{what} sparse values"),
                    val_view,
                    get_usize(val, "byteOffset").unwrap_or(0),
                    n,
                    element,
                    false,
                )?;
                Some(Sparse {
                    count: n,
                    indices,
                    index_type,
                    values,
                })
            }
        };
        Ok(Layout {
            what,
            ty,
            width,
            count,
            component_type,
            size,
            normalized,
            dense,
            sparse,
        })
    }

    /// Checks accessor `index` against the bytes behind it and the limits, reading nothing.
    pub fn check(&self, index: usize) -> Result<(), SourceError> {
        self.layout(index).map(drop)
    }

    /// Reads accessor `index` as `count` elements of `width` components, sparse substitution applied.
    pub fn read(&self, index: usize, width: usize) -> Result<Vec<f64>, SourceError> {
        let l = self.layout(index)?;
        if l.width != width {
            return Err(self.bad(format!(
                "{} has type {} where {width} components are required",
                l.what, l.ty
            )));
        }
        let mut out = vec![0.0; l.count * width];
        if let Some(run) = l.dense {
            for (i, element) in out.chunks_exact_mut(width).enumerate() {
                let at = run.offset + i * run.stride;
                for (c, x) in element.iter_mut().enumerate() {
                    *x = component(run.bytes, at + c * l.size, l.component_type, l.normalized);
                }
            }
        }
        if let Some(sparse) = l.sparse {
            let Sparse {
                indices, values, ..
            } = sparse;
            for k in 0..sparse.count {
                let i = component(
                    indices.bytes,
                    indices.offset + k * indices.stride,
                    sparse.index_type,
                    false,
                ) as usize;
                let element = out.get_mut(i * width..(i + 1) * width).ok_or_else(|| {
                    self.bad(format!(
                        "{} has a sparse index {i} ≥ count {}",
                        l.what, l.count
                    ))
                })?;
                let at = values.offset + k * values.stride;
                for (c, x) in element.iter_mut().enumerate() {
                    *x = component(
                        values.bytes,
                        at + c * l.size,
                        l.component_type,
                        l.normalized,
                    );
                }
            }
        }
        Ok(out)
    }

    /// The componentType of accessor `index`.
    pub fn component_type(&self, index: usize) -> Option<u64> {
        array(self.json, "accessors")
            .get(index)?
            .get("componentType")?
            .as_u64()
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
        let limits = SourceLimits::default();
        let reader = AccessorReader {
            path: Path::new("t.gltf"),
            json: &json,
            buffers: &buffers,
            limits: &limits,
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
}
