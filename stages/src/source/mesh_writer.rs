//! Writes a [`MeshAsset`] as a self-contained GLB with only its base-color images replaced.
//!
//! The JSON is edited as a `serde_json::Value`, so nodes, meshes, accessors, materials, samplers, extensions and
//! extras pass through untouched. Every bufferView's bytes are copied into one BIN chunk (geometry bytes identical),
//! external buffers and images are embedded, and the new base-color images are PNGs in bufferViews.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use image::RgbaImage;
use serde_json::{json, Map, Value};

use super::accessor::AccessorReader;
use super::error::SourceError;
use super::glb::assemble_glb;
use super::gltf_io::{array, get_usize};
use super::image_file::{encode_png, mime_type, write_bytes_atomic};
use super::material::{base_color_info, texture_image};
use super::mesh::MeshAsset;
use crate::files::sha256_hex;

/// Texture extensions that name their own image; a replaced base color must not keep showing the old one.
const IMAGE_FORMAT_EXTENSIONS: [&str; 4] = [
    "EXT_texture_webp",
    "KHR_texture_basisu",
    "MSFT_texture_dds",
    "EXT_texture_avif",
];

/// The new BIN chunk, built bufferView by bufferView.
#[derive(Default)]
struct Bin {
    bytes: Vec<u8>,
}

impl Bin {
    /// Appends `data` at an offset congruent to `residue` mod 4, so accessor alignment inside a view is kept.
    fn push(&mut self, data: &[u8], residue: usize) -> usize {
        while self.bytes.len() % 4 != residue % 4 {
            self.bytes.push(0);
        }
        let at = self.bytes.len();
        self.bytes.extend_from_slice(data);
        at
    }
}

/// How often each bufferView index is named by a `bufferView` key anywhere in the document.
fn buffer_view_refs(v: &Value, counts: &mut BTreeMap<usize, usize>) {
    match v {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value.as_u64()) {
                    ("bufferView", Some(i)) => *counts.entry(i as usize).or_default() += 1,
                    _ => buffer_view_refs(value, counts),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|x| buffer_view_refs(x, counts)),
        _ => {}
    }
}

/// Texture indices named by textureInfo objects (keys ending in `Texture`) anywhere below `v`.
fn texture_refs(v: &Value, out: &mut Vec<usize>) {
    match v {
        Value::Object(map) => {
            for (key, value) in map {
                if key.ends_with("Texture") {
                    if let Some(i) = get_usize(value, "index") {
                        out.push(i);
                    }
                }
                texture_refs(value, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|x| texture_refs(x, out)),
        _ => {}
    }
}

/// Texture uses other than the base colors of `materials`.
fn texture_uses_elsewhere(doc: &Value, materials: &BTreeSet<usize>) -> BTreeSet<usize> {
    let mut out = Vec::new();
    if let Value::Object(map) = doc {
        for (key, value) in map {
            match key.as_str() {
                "textures" => {}
                "materials" => {
                    for (m, material) in array(doc, "materials").iter().enumerate() {
                        let mut refs = Vec::new();
                        texture_refs(material, &mut refs);
                        if materials.contains(&m) {
                            // One base-color use is the slot's own.
                            if let Some(t) =
                                base_color_info(material).and_then(|i| get_usize(i, "index"))
                            {
                                if let Some(k) = refs.iter().position(|&r| r == t) {
                                    refs.remove(k);
                                }
                            }
                        }
                        out.extend(refs);
                    }
                }
                _ => texture_refs(value, &mut out),
            }
        }
    }
    out.into_iter().collect()
}

fn obj(v: &mut Value) -> &mut Map<String, Value> {
    if !v.is_object() {
        *v = Value::Object(Map::new());
    }
    match v {
        Value::Object(map) => map,
        _ => unreachable!("just made an object"),
    }
}

/// Points a texture at a PNG image, dropping format extensions that would still show the old one.
fn set_texture_source(texture: &mut Value, image: usize) {
    let t = obj(texture);
    t.insert("source".into(), json!(image));
    if let Some(Value::Object(ext)) = t.get_mut("extensions") {
        for name in IMAGE_FORMAT_EXTENSIONS {
            ext.remove(name);
        }
        if ext.is_empty() {
            t.remove("extensions");
        }
    }
}

/// How a replaced base-color image is written.
#[derive(Debug, Clone, Copy)]
struct ImagePlan {
    /// Something besides this slot's base colors shows the image, so the new one is a new image.
    shared: bool,
    /// The bufferView only the old image used, re-filled with the new PNG.
    own_view: Option<usize>,
}

fn plan_image(
    asset: &MeshAsset,
    slot: usize,
    image: usize,
    bv_refs: &BTreeMap<usize, usize>,
) -> ImagePlan {
    let slot_materials: BTreeSet<usize> = asset.slots[slot].materials.iter().copied().collect();
    let base_textures: BTreeSet<usize> = slot_materials
        .iter()
        .filter_map(|&m| array(&asset.json, "materials").get(m))
        .filter_map(|m| base_color_info(m).and_then(|i| get_usize(i, "index")))
        .collect();
    let elsewhere = texture_uses_elsewhere(&asset.json, &slot_materials);
    // Shared with another texture, or with a non-base-color use of one of the slot's textures.
    let shared = array(&asset.json, "textures")
        .iter()
        .enumerate()
        .any(|(t, tex)| {
            texture_image(tex) == Some(image)
                && (!base_textures.contains(&t) || elsewhere.contains(&t))
        });
    let own_view = array(&asset.json, "images")
        .get(image)
        .and_then(|img| get_usize(img, "bufferView"))
        .filter(|v| !shared && bv_refs.get(v) == Some(&1));
    ImagePlan { shared, own_view }
}

/// Writes `asset` to `out` (atomically) with the given slots' images replaced; returns the sha256 of the bytes.
///
/// Slots not named keep their image; a created slot not named adds nothing. A created slot's material gets a new
/// texture reading TEXCOORD_0 and `baseColorFactor` 1 so it shows the image as given.
pub fn write_retextured_glb(
    asset: &MeshAsset,
    new_textures: &[(usize, RgbaImage)],
    out: &Path,
) -> Result<String, SourceError> {
    let bad_slot = |slot: usize, cause: String| SourceError::BadSlot {
        path: asset.path.clone(),
        slot,
        cause,
    };
    let mut replacement: BTreeMap<usize, Vec<u8>> = BTreeMap::new();
    for (slot, image) in new_textures {
        if *slot >= asset.slots.len() {
            return Err(bad_slot(
                *slot,
                format!("the asset has {} base-color slots", asset.slots.len()),
            ));
        }
        if image.width() == 0 || image.height() == 0 {
            return Err(bad_slot(*slot, "the new texture is empty".into()));
        }
        let png =
            encode_png(image).map_err(|e| bad_slot(*slot, format!("PNG encoding failed: {e}")))?;
        if replacement.insert(*slot, png).is_some() {
            return Err(bad_slot(*slot, "the slot is given twice".into()));
        }
    }

    let missing_view = |view: usize, image: usize| SourceError::BadGltf {
        path: asset.path.clone(),
        cause: format!("image {image} refers to bufferView {view}, which does not exist"),
    };
    let mut doc = asset.json.clone();
    let reader = AccessorReader {
        path: &asset.path,
        json: &asset.json,
        buffers: &asset.buffers,
        limits: &asset.limits,
    };
    let mut bv_refs = BTreeMap::new();
    buffer_view_refs(&asset.json, &mut bv_refs);

    // Decide per replaced slot whether its image is rewritten in place, before any bytes are laid out: a view that
    // only the old image used is re-filled rather than copied, so the old bytes do not linger in the BIN chunk.
    let plans: BTreeMap<usize, ImagePlan> = replacement
        .keys()
        .filter_map(|&slot| {
            asset.slot_image[slot].map(|image| (slot, plan_image(asset, slot, image, &bv_refs)))
        })
        .collect();
    let refilled: BTreeSet<usize> = plans.values().filter_map(|p| p.own_view).collect();

    // Copy every other bufferView as is.
    let mut bin = Bin::default();
    let mut views: Vec<Value> = Vec::new();
    for (i, view) in array(&asset.json, "bufferViews").iter().enumerate() {
        if refilled.contains(&i) {
            views.push(view.clone());
            continue;
        }
        let data = reader.buffer_view(i)?;
        let old_offset = get_usize(view, "byteOffset").unwrap_or(0);
        let at = bin.push(data, old_offset);
        let mut view = view.clone();
        obj(&mut view).insert("buffer".into(), json!(0));
        obj(&mut view).insert("byteOffset".into(), json!(at));
        views.push(view);
    }
    let add_view = |bin: &mut Bin, views: &mut Vec<Value>, data: &[u8]| {
        let at = bin.push(data, 0);
        views.push(json!({"buffer": 0, "byteOffset": at, "byteLength": data.len()}));
        views.len() - 1
    };

    let mut images: Vec<Value> = array(&asset.json, "images").to_vec();
    let mut textures: Vec<Value> = array(&asset.json, "textures").to_vec();
    let mut replaced_images = BTreeSet::new();
    for (&slot, png) in &replacement {
        let info = &asset.slots[slot];
        let slot_materials: BTreeSet<usize> = info.materials.iter().copied().collect();
        let base_textures: BTreeSet<usize> = slot_materials
            .iter()
            .filter_map(|&m| array(&asset.json, "materials").get(m))
            .filter_map(|m| base_color_info(m).and_then(|i| get_usize(i, "index")))
            .collect();
        let materials = obj(&mut doc)
            .entry("materials")
            .or_insert_with(|| json!([]));
        match asset.slot_image[slot] {
            None => {
                let view = add_view(&mut bin, &mut views, png);
                images.push(json!({"bufferView": view, "mimeType": "image/png"}));
                textures.push(json!({"source": images.len() - 1}));
                let texture = textures.len() - 1;
                for &m in &info.materials {
                    if let Some(material) = materials.get_mut(m) {
                        let pbr = obj(material)
                            .entry("pbrMetallicRoughness")
                            .or_insert_with(|| json!({}));
                        obj(pbr).insert("baseColorTexture".into(), json!({"index": texture}));
                        obj(pbr).insert("baseColorFactor".into(), json!([1.0, 1.0, 1.0, 1.0]));
                    }
                }
            }
            Some(image) => {
                let elsewhere = texture_uses_elsewhere(&asset.json, &slot_materials);
                let ImagePlan {
                    shared: image_shared,
                    own_view,
                } = plans
                    .get(&slot)
                    .copied()
                    .unwrap_or_else(|| plan_image(asset, slot, image, &bv_refs));
                let new_image = if image_shared {
                    let view = add_view(&mut bin, &mut views, png);
                    images.push(json!({"bufferView": view, "mimeType": "image/png"}));
                    images.len() - 1
                } else {
                    // The loader checked every bufferView, but the view and image indices come from the file:
                    // a missing one is an error, never an index out of range.
                    let view = match own_view {
                        Some(v) => {
                            let at = bin.push(png, 0);
                            let view = views.get_mut(v).ok_or_else(|| missing_view(v, image))?;
                            let view = obj(view);
                            view.insert("buffer".into(), json!(0));
                            view.insert("byteOffset".into(), json!(at));
                            view.insert("byteLength".into(), json!(png.len()));
                            v
                        }
                        None => add_view(&mut bin, &mut views, png),
                    };
                    let img = obj(images.get_mut(image).ok_or_else(|| {
                        bad_slot(slot, format!("its image {image} does not exist"))
                    })?);
                    img.remove("uri");
                    img.insert("bufferView".into(), json!(view));
                    img.insert("mimeType".into(), json!("image/png"));
                    replaced_images.insert(image);
                    image
                };
                let mut copies: BTreeMap<usize, usize> = BTreeMap::new();
                for &t in &base_textures {
                    if !elsewhere.contains(&t) {
                        if let Some(tex) = textures.get_mut(t) {
                            set_texture_source(tex, new_image);
                        }
                    } else if let Some(tex) = textures.get(t) {
                        let mut copy = tex.clone();
                        set_texture_source(&mut copy, new_image);
                        textures.push(copy);
                        copies.insert(t, textures.len() - 1);
                    }
                }
                for &m in &info.materials {
                    let Some(material) = materials.get_mut(m) else {
                        continue;
                    };
                    let Some(tinfo) = material
                        .get_mut("pbrMetallicRoughness")
                        .and_then(|p| p.get_mut("baseColorTexture"))
                    else {
                        continue;
                    };
                    if let Some(&copy) = get_usize(tinfo, "index").and_then(|t| copies.get(&t)) {
                        obj(tinfo).insert("index".into(), json!(copy));
                    }
                }
            }
        }
    }

    // Everything else that lived in a file or a data URI moves into the BIN chunk.
    for (i, image) in images.iter_mut().enumerate() {
        if replaced_images.contains(&i) || image.get("uri").is_none() {
            continue;
        }
        let Some(bytes) = asset.images.get(i) else {
            continue;
        };
        let view = add_view(&mut bin, &mut views, bytes);
        let img = obj(image);
        let mime = mime_type(bytes)
            .map(str::to_string)
            .or_else(|| {
                img.get("mimeType")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .unwrap_or_else(|| "application/octet-stream".to_string());
        img.remove("uri");
        img.insert("bufferView".into(), json!(view));
        img.insert("mimeType".into(), json!(mime));
    }

    let root = obj(&mut doc);
    let set_or_remove = |root: &mut Map<String, Value>, key: &str, items: Vec<Value>| {
        if items.is_empty() {
            root.remove(key);
        } else {
            root.insert(key.into(), Value::Array(items));
        }
    };
    set_or_remove(root, "bufferViews", views);
    set_or_remove(root, "images", images);
    set_or_remove(root, "textures", textures.clone());
    let mut buffer = array(&asset.json, "buffers")
        .first()
        .cloned()
        .unwrap_or_else(|| json!({}));
    obj(&mut buffer).remove("uri");
    obj(&mut buffer).insert("byteLength".into(), json!(bin.bytes.len()));
    set_or_remove(
        root,
        "buffers",
        if bin.bytes.is_empty() {
            vec![]
        } else {
            vec![buffer]
        },
    );
    drop_unused_format_extensions(root, &textures);

    let glb = assemble_glb(&doc, bin.bytes).map_err(|cause| SourceError::Encode {
        path: out.to_path_buf(),
        cause,
    })?;
    write_bytes_atomic(&glb, out)?;
    Ok(sha256_hex(&glb))
}

/// Removes image-format extensions from `extensionsUsed`/`extensionsRequired` once no texture uses them.
fn drop_unused_format_extensions(root: &mut Map<String, Value>, textures: &[Value]) {
    for name in IMAGE_FORMAT_EXTENSIONS {
        let used = textures
            .iter()
            .any(|t| t.get("extensions").and_then(|e| e.get(name)).is_some());
        if used {
            continue;
        }
        for key in ["extensionsUsed", "extensionsRequired"] {
            if let Some(Value::Array(list)) = root.get_mut(key) {
                list.retain(|x| x.as_str() != Some(name));
                if list.is_empty() {
                    root.remove(key);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::demo::write_demo_sources;

    /// The loader refuses such assets, but the writer must not rely on it for memory safety: an image whose
    /// bufferView is out of range is an error, not an index out of range.
    #[test]
    fn an_out_of_range_image_view_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        write_demo_sources(dir.path()).unwrap();
        let mut asset = MeshAsset::load(&dir.path().join("mug.glb")).unwrap();
        let views = array(&asset.json, "bufferViews").len();
        asset.json["images"][0]["bufferView"] = json!(views + 10);
        let image = RgbaImage::new(4, 4);
        let result = write_retextured_glb(&asset, &[(0, image)], &dir.path().join("out.glb"));
        let err = result.unwrap_err();
        assert!(err.to_string().contains("bufferView"), "{err}");
    }
}
