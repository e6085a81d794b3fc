//! What a glTF `uri` names: a base64 data URI, or a file inside the asset's own folder — never anything else
//! (no schemes, no absolute paths, no climbing out, no links leading out), read with a size cap.

use std::path::{Path, PathBuf};

use super::error::SourceError;
use super::limits::{human_bytes, SourceLimits};
use crate::file_read::{read_regular, ReadError};

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

/// A URI as messages show it: at most 200 characters.
fn shown(uri: &str) -> String {
    const MAX: usize = 200;
    match uri.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}…", &uri[..at]),
        None => uri.to_string(),
    }
}

/// The scheme of a URI (`^[a-zA-Z][a-zA-Z0-9+.-]*:`), without the colon.
fn scheme(uri: &str) -> Option<&str> {
    let colon = uri.find(':')?;
    let name = &uri[..colon];
    let mut chars = name.chars();
    let first = chars.next()?;
    (first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-')))
    .then_some(name)
}

/// Why a (percent-decoded) URI may not be read as a file, or the path it names relative to the asset's folder.
fn confined_relative(decoded: &str) -> Result<PathBuf, String> {
    if decoded.contains('\0') {
        return Err("contains a NUL character".into());
    }
    if let Some(name) = scheme(decoded) {
        let rest = &decoded[name.len() + 1..];
        return Err(
            if name.len() == 1 && (rest.starts_with('/') || rest.starts_with('\\')) {
                format!("is an absolute Windows path (drive {name}:)")
            } else if ["http", "https", "ftp", "ftps", "ws", "wss"]
                .iter()
                .any(|s| name.eq_ignore_ascii_case(s))
            {
                format!("is a {name}: URL, and texaug never fetches anything over the network")
            } else {
                format!("uses the {name}: scheme, and texaug reads no URI scheme but data:")
            },
        );
    }
    // Backslashes are no URI syntax, but Windows exporters write them as separators: they are treated as such, so
    // `..\x` and `\\server\share` cannot slip past the checks below.
    let normalized = decoded.replace('\\', "/");
    if normalized.starts_with('/') {
        return Err(if normalized.starts_with("//") {
            "is a network (UNC) or absolute path".into()
        } else {
            "is an absolute path".into()
        });
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in normalized.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(
                        "lies outside the asset's folder (its \"..\" climbs above the folder)"
                            .into(),
                    );
                }
            }
            part => parts.push(part),
        }
    }
    if parts.is_empty() {
        return Err("names the asset's folder itself, not a file".into());
    }
    Ok(parts.iter().collect())
}

/// The bytes of a base64 data URI (`rest` follows `data:`).
fn data_uri(
    path: &Path,
    rest: &str,
    what: &str,
    limits: &SourceLimits,
) -> Result<Vec<u8>, SourceError> {
    let (meta, data) = rest.split_once(',').unwrap_or((rest, ""));
    if !meta.ends_with(";base64") {
        return Err(SourceError::BadGltf {
            path: path.to_path_buf(),
            cause: format!("{what} has a data URI that is not base64 ({})", shown(meta)),
        });
    }
    let decoded = data.len() as u64 / 4 * 3;
    if decoded > limits.max_file_bytes {
        return Err(SourceError::OverLimit {
            path: path.to_path_buf(),
            what: format!("{what}'s data URI"),
            cause: format!(
                "holds about {}, over the {} limit on one file",
                human_bytes(decoded),
                human_bytes(limits.max_file_bytes)
            ),
            limit: "max_file_bytes",
        });
    }
    base64_decode(data).map_err(|e| SourceError::BadGltf {
        path: path.to_path_buf(),
        cause: format!("{what} has a corrupt base64 data URI: {e}"),
    })
}

/// The bytes a glTF `uri` names: a base64 data URI, or a regular file inside the asset's folder.
///
/// Anything else is refused before any file is opened: other schemes (`file:`, `http:`, …, nothing is ever
/// fetched), absolute paths (`/x`, `\\server\share`, `C:\x`), paths whose `..` climb out of the folder, targets
/// that a symbolic link places outside it, and what is not a regular file (FIFOs, devices, sockets, folders: their
/// metadata is checked first, so a FIFO never blocks). Files over `limits.max_file_bytes` are not read.
pub(crate) fn resolve_uri(
    path: &Path,
    uri: &str,
    what: &str,
    limits: &SourceLimits,
) -> Result<Vec<u8>, SourceError> {
    if let Some(rest) = uri
        .get(..5)
        .filter(|s| s.eq_ignore_ascii_case("data:"))
        .and_then(|_| uri.get(5..))
    {
        return data_uri(path, rest, what, limits);
    }
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let refuse = |reason: String| SourceError::RefusedUri {
        path: path.to_path_buf(),
        what: what.to_string(),
        uri: shown(uri),
        reason,
    };
    let relative = confined_relative(&percent_decode(uri)).map_err(refuse)?;
    let resolved = folder.join(&relative);
    let missing = |cause: String| SourceError::MissingExternal {
        path: path.to_path_buf(),
        what: what.to_string(),
        uri: shown(uri),
        resolved: resolved.clone(),
        cause,
    };
    // The canonical target must lie inside the canonical folder: a symbolic link may not lead out of it.
    let canonical_folder = std::fs::canonicalize(folder).map_err(|e| missing(e.to_string()))?;
    let canonical = std::fs::canonicalize(&resolved).map_err(|e| missing(e.to_string()))?;
    if !canonical.starts_with(&canonical_folder) || canonical == canonical_folder {
        return Err(refuse(
            "resolves through a symbolic link to something outside the asset's folder".into(),
        ));
    }
    read_regular(&canonical, limits.max_file_bytes).map_err(|e| match e {
        ReadError::Io(e) => missing(e.to_string()),
        ReadError::NotRegular(kind) => refuse(format!("is {kind}, not a regular file")),
        ReadError::Changed => refuse("changed while it was being opened".into()),
        ReadError::TooLarge { size } => SourceError::OverLimit {
            path: path.to_path_buf(),
            what: format!("{what} ({:?})", shown(uri)),
            cause: format!(
                "is {}, over the {} limit on one file",
                human_bytes(size),
                human_bytes(limits.max_file_bytes)
            ),
            limit: "max_file_bytes",
        },
    })
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
    fn percent_decoding_handles_spaces() {
        assert_eq!(percent_decode("a%20b.png"), "a b.png");
        assert_eq!(percent_decode("100%"), "100%");
    }
}
