//! Image files in and out: decoding by content (never by extension) and atomic, deterministic PNG writes.

use std::io::{Cursor, Write};
use std::path::Path;

use image::{ImageFormat, ImageReader, Limits, RgbaImage};

use super::error::SourceError;
use super::limits::{human_bytes, SourceLimits};
use crate::file_read::{read_regular, ReadError};
use crate::files;

/// Reads a PNG, JPEG or WebP file as 8-bit RGBA; the format is sniffed from the bytes. The default
/// [`SourceLimits`] apply (a 1 GiB file, 64 Mpx).
pub fn load_image(path: &Path) -> Result<RgbaImage, SourceError> {
    load_image_with(path, &SourceLimits::default())
}

/// [`load_image`] with the given limits: the file must be a regular file of at most `max_file_bytes`, and its
/// header's width × height at most `max_image_pixels`, checked before anything is decoded.
pub fn load_image_with(path: &Path, limits: &SourceLimits) -> Result<RgbaImage, SourceError> {
    let bytes = read_source_file(path, "the image file", limits)?;
    decode_image_bytes(&bytes, limits.max_image_pixels).map_err(|e| match e {
        DecodeError::Bad(cause) => SourceError::BadImage {
            path: path.to_path_buf(),
            cause,
        },
        DecodeError::TooManyPixels { .. } => SourceError::OverLimit {
            path: path.to_path_buf(),
            what: "the image".to_string(),
            cause: e.over_limit_cause(limits.max_image_pixels),
            limit: "max_image_pixels",
        },
    })
}

/// Why image bytes were not decoded.
#[derive(Debug)]
pub(crate) enum DecodeError {
    /// Unrecognised, corrupt or unsupported data; the string says which format was seen and why it failed.
    Bad(String),
    /// The header declares more pixels than allowed; nothing was decoded.
    TooManyPixels { width: u32, height: u32 },
}

impl DecodeError {
    /// The cause of an over-limit error: "is 100000×100000 (10000000000 pixels), over the limit of …".
    pub(crate) fn over_limit_cause(&self, max_pixels: u64) -> String {
        match self {
            DecodeError::TooManyPixels { width, height } => format!(
                "is {width}×{height} ({} pixels) by its header, over the limit of {max_pixels} pixels; it was not \
                 decoded",
                *width as u64 * *height as u64
            ),
            DecodeError::Bad(cause) => cause.clone(),
        }
    }
}

/// The width and height image bytes declare in their header, read without decoding any pixels.
pub(crate) fn image_dimensions(bytes: &[u8]) -> Result<(u32, u32), DecodeError> {
    let format = format_of(bytes)?;
    ImageReader::with_format(Cursor::new(bytes), format)
        .into_dimensions()
        .map_err(|e| DecodeError::Bad(format!("{format:?} data does not decode: {e}")))
}

fn format_of(bytes: &[u8]) -> Result<ImageFormat, DecodeError> {
    sniff_format(bytes).ok_or_else(|| {
        let head: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
        DecodeError::Bad(format!(
            "unrecognised format, {} bytes starting with [{}]",
            bytes.len(),
            head.join(" ")
        ))
    })
}

/// Decodes PNG, JPEG or WebP bytes of at most `max_pixels` (checked from the header before decoding).
pub(crate) fn decode_image_bytes(bytes: &[u8], max_pixels: u64) -> Result<RgbaImage, DecodeError> {
    let format = format_of(bytes)?;
    let (width, height) = image_dimensions(bytes)?;
    if width as u64 * height as u64 > max_pixels {
        return Err(DecodeError::TooManyPixels { width, height });
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    // The decoder's own allocation cap, in case a format's header understates what it allocates: 16-bit RGBA
    // is the widest any of these formats decodes to.
    let mut limits = Limits::default();
    limits.max_alloc = Some(max_pixels.saturating_mul(8).max(1 << 20));
    reader.limits(limits);
    reader
        .decode()
        .map(|img| img.to_rgba8())
        .map_err(|e| DecodeError::Bad(format!("{format:?} data does not decode: {e}")))
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
    Ok(files::sha256_hex(&bytes))
}

/// Writes bytes so a reader sees either the old file or the whole new one, never a part.
pub(crate) fn write_bytes_atomic(bytes: &[u8], path: &Path) -> Result<(), SourceError> {
    files::write_atomic_with(path, |f| f.write_all(bytes)).map_err(|source| SourceError::Write {
        path: path.to_path_buf(),
        source,
    })
}
/// Reads a source file itself (an image or a glTF asset): a regular file of at most `max_file_bytes`, every refusal
/// a [`SourceError`] naming the file; `what` names it in the size message ("the image file").
pub(crate) fn read_source_file(
    path: &Path,
    what: &str,
    limits: &SourceLimits,
) -> Result<Vec<u8>, SourceError> {
    read_regular(path, limits.max_file_bytes).map_err(|e| match e {
        ReadError::Io(source) => SourceError::Io {
            path: path.to_path_buf(),
            source,
        },
        ReadError::NotRegular(kind) => SourceError::NotAFile {
            path: path.to_path_buf(),
            kind: kind.to_string(),
        },
        ReadError::Changed => SourceError::NotAFile {
            path: path.to_path_buf(),
            kind: "a path that changed while it was being opened".to_string(),
        },
        ReadError::TooLarge { size } => SourceError::OverLimit {
            path: path.to_path_buf(),
            what: what.to_string(),
            cause: format!(
                "is {}, over the {} limit on one file",
                human_bytes(size),
                human_bytes(limits.max_file_bytes)
            ),
            limit: "max_file_bytes",
        },
    })
}
