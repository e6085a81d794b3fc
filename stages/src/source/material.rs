//! Reading a glTF material: its base-color texture, the image a texture shows, and which texture coordinates
//! (set and `KHR_texture_transform`) a texture reads. The one place texture-coordinate selection is decided.

use serde_json::Value;

use super::gltf_io::{array, get_usize};

/// The base-color `textureInfo` of a material, if any.
pub(crate) fn base_color_info(material: &Value) -> Option<&Value> {
    material
        .get("pbrMetallicRoughness")?
        .get("baseColorTexture")
}

/// The UV set a base-color texture reads: `KHR_texture_transform`'s `texCoord` overrides the textureInfo's.
pub(crate) fn uv_set(info: &Value) -> u32 {
    let own = info.get("texCoord").and_then(Value::as_u64).unwrap_or(0);
    info.get("extensions")
        .and_then(|e| e.get("KHR_texture_transform"))
        .and_then(|t| t.get("texCoord"))
        .and_then(Value::as_u64)
        .unwrap_or(own) as u32
}

/// The image a texture shows: its `source`, or the source of an image-format extension when it has none.
pub(crate) fn texture_image(texture: &Value) -> Option<usize> {
    get_usize(texture, "source").or_else(|| {
        let ext = texture.get("extensions")?.as_object()?;
        ext.values().find_map(|e| get_usize(e, "source"))
    })
}

/// The 2×3 `KHR_texture_transform` of a textureInfo, as offset · rotation · scale.
pub(crate) fn uv_transform(info: Option<&Value>) -> [[f64; 3]; 2] {
    let Some(t) = info
        .and_then(|i| i.get("extensions"))
        .and_then(|e| e.get("KHR_texture_transform"))
    else {
        return [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]];
    };
    let offset = numbers(t, "offset");
    let scale = numbers(t, "scale");
    let rotation = t.get("rotation").and_then(Value::as_f64).unwrap_or(0.0);
    let (ox, oy) = match offset.as_slice() {
        [x, y] => (*x, *y),
        _ => (0.0, 0.0),
    };
    let (sx, sy) = match scale.as_slice() {
        [x, y] => (*x, *y),
        _ => (1.0, 1.0),
    };
    let (sin, cos) = rotation.sin_cos();
    [[cos * sx, sin * sy, ox], [-sin * sx, cos * sy, oy]]
}

/// The numbers of an array field (non-numbers skipped).
pub(crate) fn numbers(v: &Value, key: &str) -> Vec<f64> {
    array(v, key).iter().filter_map(Value::as_f64).collect()
}
