//! The GLB container: a JSON chunk and a BIN chunk, parsed with every offset checked, and assembled.

use std::path::Path;

use serde_json::Value;

use super::error::SourceError;
use super::gltf_io::canonical_json;

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

/// The GLB container: header, JSON chunk padded with spaces, BIN chunk padded with zeros.
pub(crate) fn assemble_glb(doc: &Value, mut bin: Vec<u8>) -> Result<Vec<u8>, String> {
    // Sorted keys: the same bytes whichever serde_json map features the build unifies.
    let mut json = canonical_json(doc);
    while !json.len().is_multiple_of(4) {
        json.push(b' ');
    }
    while !bin.len().is_multiple_of(4) {
        bin.push(0);
    }
    let bin_chunk = if bin.is_empty() { 0 } else { 8 + bin.len() };
    let total = 12 + 8 + json.len() + bin_chunk;
    let total = u32::try_from(total)
        .map_err(|_| format!("the GLB would be {total} bytes, over the 4 GiB limit"))?;
    let mut out = Vec::with_capacity(total as usize);
    out.extend_from_slice(b"glTF");
    out.extend_from_slice(&2u32.to_le_bytes());
    out.extend_from_slice(&total.to_le_bytes());
    out.extend_from_slice(&(json.len() as u32).to_le_bytes());
    out.extend_from_slice(&0x4E4F_534Au32.to_le_bytes());
    out.extend_from_slice(&json);
    if !bin.is_empty() {
        out.extend_from_slice(&(bin.len() as u32).to_le_bytes());
        out.extend_from_slice(&0x004E_4942u32.to_le_bytes());
        out.extend_from_slice(&bin);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
