//! Image files in and out: decoding by content (never by extension) and atomic, deterministic PNG writes.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use image::{ImageFormat, RgbaImage};
use sha2::{Digest, Sha256};

use super::SourceError;

/// Reads a PNG, JPEG or WebP file as 8-bit RGBA; the format is sniffed from the bytes.
pub fn load_image(path: &Path) -> Result<RgbaImage, SourceError> {
    let bytes = std::fs::read(path).map_err(|source| SourceError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    decode_image_bytes(&bytes).map_err(|cause| SourceError::BadImage {
        path: path.to_path_buf(),
        cause,
    })
}

/// Decodes PNG, JPEG or WebP bytes; the error string says which format was seen and why it failed.
pub(crate) fn decode_image_bytes(bytes: &[u8]) -> Result<RgbaImage, String> {
    let format = sniff_format(bytes).ok_or_else(|| {
        let head: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
        format!(
            "unrecognised format, {} bytes starting with [{}]",
            bytes.len(),
            head.join(" ")
        )
    })?;
    image::load_from_memory_with_format(bytes, format)
        .map(|img| img.to_rgba8())
        .map_err(|e| format!("{format:?} data does not decode: {e}"))
}

/// The formats a source image or glTF texture may have.
pub(crate) fn sniff_format(bytes: &[u8]) -> Option<ImageFormat> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(ImageFormat::Png)
    } else if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        Some(ImageFormat::Jpeg)
    } else if bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some(ImageFormat::WebP)
    } else {
        None
    }
}

/// The glTF `mimeType` of image bytes.
pub(crate) fn mime_type(bytes: &[u8]) -> Option<&'static str> {
    match sniff_format(bytes)? {
        ImageFormat::Png => Some("image/png"),
        ImageFormat::Jpeg => Some("image/jpeg"),
        ImageFormat::WebP => Some("image/webp"),
        _ => None,
    }
}

/// Encodes RGBA as PNG with fixed settings, so equal pixels always give equal bytes.
pub(crate) fn encode_png(image: &RgbaImage) -> Result<Vec<u8>, String> {
    use image::codecs::png::{CompressionType, FilterType, PngEncoder};
    use image::ImageEncoder;
    let mut out = Vec::new();
    // Opaque images are stored as RGB: a third smaller, and readers see the same pixels.
    let opaque = image.pixels().all(|p| p[3] == 255);
    // `Fast` is png's own fdeflate compressor. The other levels go through flate2, whose backend (miniz_oxide or
    // zlib-rs) is chosen by cargo feature unification across the whole build, so the same pixels would encode to
    // different bytes in the `texaug` binary and in a stages-only build: same recipe, same bytes needs this.
    let encoder =
        PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Adaptive);
    if opaque {
        let rgb: Vec<u8> = image.pixels().flat_map(|p| [p[0], p[1], p[2]]).collect();
        encoder.write_image(
            &rgb,
            image.width(),
            image.height(),
            image::ExtendedColorType::Rgb8,
        )
    } else {
        encoder.write_image(
            image.as_raw(),
            image.width(),
            image.height(),
            image::ExtendedColorType::Rgba8,
        )
    }
    .map_err(|e| e.to_string())?;
    Ok(out)
}

/// Writes `image` as PNG via a temp file in the same folder, fsync and rename; returns the sha256 of the bytes.
pub fn write_png_atomic(image: &RgbaImage, path: &Path) -> Result<String, SourceError> {
    let bytes = encode_png(image).map_err(|cause| SourceError::Encode {
        path: path.to_path_buf(),
        cause,
    })?;
    write_bytes_atomic(&bytes, path)?;
    Ok(sha256_hex(&bytes))
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Writes bytes so a reader sees either the old file or the whole new one, never a part.
pub(crate) fn write_bytes_atomic(bytes: &[u8], path: &Path) -> Result<(), SourceError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let err = |source| SourceError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".to_string());
    let tmp = dir.join(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(err(e));
    }
    // The rename is durable only once the folder entry is; not every platform lets a folder be opened.
    if let Ok(d) = File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
