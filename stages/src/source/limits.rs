//! How much of a source texaug is willing to read, decode and expand, so that a hostile or broken asset from the
//! internet fails with an error naming the limit instead of exhausting a shared machine's memory.
//!
//! Every limit is checked before the memory it bounds is allocated. [`SourceLimits::default`] is what
//! [`MeshAsset::load`](super::mesh::MeshAsset::load) and [`load_image`](super::image_file::load_image) use; callers
//! who need more (or less) pass their own to `MeshAsset::load_with` / `load_image_with`.

/// Caps on what reading one source may cost. Construct with `SourceLimits::default()` and change fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SourceLimits {
    /// The largest single file read: the asset itself, each external buffer or image a `.gltf` names, an image
    /// source. Default 1 GiB.
    pub max_file_bytes: u64,
    /// All buffer and image bytes one mesh asset holds in memory together (files, data URIs, the GLB's BIN chunk,
    /// images cut out of bufferViews). Default 4 GiB, the most a GLB — and so the re-textured output — can hold.
    pub max_asset_bytes: u64,
    /// The largest image decoded, in pixels (width × height), checked from the header before decoding.
    /// Default 8192 × 8192 = 64 Mpx (256 MiB as 8-bit RGBA).
    pub max_image_pixels: u64,
    /// The pixels of all base-color images of one asset decoded together. Default 2^29 = 512 Mpx (2 GiB RGBA).
    pub max_total_pixels: u64,
    /// The most elements one accessor (or its sparse substitution) may declare. Accessors backed by a bufferView
    /// are also bounded by the bytes of that view; this caps those that are not (all zeros, legal glTF).
    /// Default 2^26 (67 million).
    pub max_accessor_elements: u64,
    /// The most world-space vertices, and separately triangles, a scene may expand to with its node instancing.
    /// Default 2^26 (67 million).
    pub max_scene_elements: u64,
}

/// 1 GiB.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 1 << 30;
/// 4 GiB.
pub const DEFAULT_MAX_ASSET_BYTES: u64 = 1 << 32;
/// 8192 × 8192.
pub const DEFAULT_MAX_IMAGE_PIXELS: u64 = 8192 * 8192;
/// 512 Mpx.
pub const DEFAULT_MAX_TOTAL_PIXELS: u64 = 1 << 29;
/// 2^26.
pub const DEFAULT_MAX_ACCESSOR_ELEMENTS: u64 = 1 << 26;
/// 2^26.
pub const DEFAULT_MAX_SCENE_ELEMENTS: u64 = 1 << 26;

impl Default for SourceLimits {
    fn default() -> Self {
        SourceLimits {
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            max_asset_bytes: DEFAULT_MAX_ASSET_BYTES,
            max_image_pixels: DEFAULT_MAX_IMAGE_PIXELS,
            max_total_pixels: DEFAULT_MAX_TOTAL_PIXELS,
            max_accessor_elements: DEFAULT_MAX_ACCESSOR_ELEMENTS,
            max_scene_elements: DEFAULT_MAX_SCENE_ELEMENTS,
        }
    }
}

/// A byte count for messages: "1.5 GiB", "300 MiB", "12 KiB", "17 bytes".
pub(crate) fn human_bytes(n: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if n >= size {
            let v = n as f64 / size as f64;
            return if v.fract() == 0.0 {
                format!("{v:.0} {unit}")
            } else {
                format!("{v:.1} {unit}")
            };
        }
    }
    format!("{n} bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_ones() {
        let l = SourceLimits::default();
        assert_eq!(l.max_file_bytes, 1 << 30);
        assert_eq!(l.max_image_pixels, 8192 * 8192);
        assert_eq!(l.max_accessor_elements, 1 << 26);
        assert_eq!(human_bytes(1 << 30), "1 GiB");
        assert_eq!(human_bytes(3 << 19), "1.5 MiB");
        assert_eq!(human_bytes(17), "17 bytes");
    }
}
