//! A glTF 2.0 asset (.glb, or .gltf with embedded or external buffers and images) as texaug reads it.
//!
//! Loading resolves every buffer and image into memory, so a missing external file fails here, naming its URI and
//! resolved path, and writing a self-contained GLB later cannot fail on input files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use image::RgbaImage;
use serde_json::Value;

use super::accessor::AccessorReader;
use super::error::SourceError;
use super::glb::parse_container;
use super::gltf_io::{array, get_usize};
use super::image_file::{decode_image_bytes, image_dimensions, read_source_file, DecodeError};
use super::limits::{human_bytes, SourceLimits};
use super::material::{base_color_info, texture_image, uv_set};
use super::uri::resolve_uri;

/// Side of the solid texture made for a material that has only `baseColorFactor`.
pub const CREATED_TEXTURE_SIZE: u32 = 512;

/// Geometry compression texaug cannot read: accessors would look empty.
const COMPRESSION_EXTENSIONS: [&str; 2] = ["KHR_draco_mesh_compression", "EXT_meshopt_compression"];

/// A parsed glTF asset with every buffer and image resolved into memory.
#[derive(Debug, Clone)]
pub struct MeshAsset {
    pub(crate) path: PathBuf,
    /// The document as read; unknown extensions and extras survive a round trip.
    pub(crate) json: Value,
    pub(crate) buffers: Vec<Vec<u8>>,
    /// The encoded bytes of every image, in image order.
    pub(crate) images: Vec<Vec<u8>>,
    pub(crate) slots: Vec<BaseColorSlot>,
    /// For each slot, the image it replaces; `None` for a created slot.
    pub(crate) slot_image: Vec<Option<usize>>,
    /// For each material, its slot.
    pub(crate) material_slot: Vec<Option<usize>>,
    /// The limits it was loaded with; [`MeshAsset::triangles`] keeps to them too.
    pub(crate) limits: SourceLimits,
}

/// One distinct base-color image to re-texture.
#[derive(Debug, Clone)]
pub struct BaseColorSlot {
    pub slot: usize,
    /// The current texels, or a solid texture from `baseColorFactor` when the material has no texture.
    pub image: RgbaImage,
    /// Indices of the materials whose base color this image is.
    pub materials: Vec<usize>,
    /// True when the material had no base-color texture and writing adds one.
    pub created: bool,
}

/// Materials a primitive may show: its own and those `KHR_materials_variants` maps it to.
fn primitive_materials(prim: &Value) -> Vec<usize> {
    let mut out: Vec<usize> = get_usize(prim, "material").into_iter().collect();
    let mappings = prim
        .get("extensions")
        .and_then(|e| e.get("KHR_materials_variants"))
        .map(|v| array(v, "mappings"))
        .unwrap_or(&[]);
    out.extend(mappings.iter().filter_map(|m| get_usize(m, "material")));
    out
}

fn mesh_name(mesh: &Value, index: usize) -> String {
    match mesh.get("name").and_then(Value::as_str) {
        Some(name) => format!("{index} (\"{name}\")"),
        None => index.to_string(),
    }
}

fn has_attribute(prim: &Value, name: &str) -> bool {
    prim.get("attributes").and_then(|a| a.get(name)).is_some()
}

/// A solid sRGB texture showing a linear `baseColorFactor`.
fn solid_texture(material: &Value) -> RgbaImage {
    let factor: Vec<f64> = material
        .get("pbrMetallicRoughness")
        .map(|p| array(p, "baseColorFactor"))
        .unwrap_or(&[])
        .iter()
        .filter_map(Value::as_f64)
        .collect();
    let f = |i: usize| factor.get(i).copied().unwrap_or(1.0).clamp(0.0, 1.0);
    let srgb = |c: f64| {
        let s = if c <= 0.003_130_8 {
            12.92 * c
        } else {
            1.055 * c.powf(1.0 / 2.4) - 0.055
        };
        (s * 255.0).round() as u8
    };
    let pixel = image::Rgba([
        srgb(f(0)),
        srgb(f(1)),
        srgb(f(2)),
        (f(3) * 255.0).round() as u8,
    ]);
    RgbaImage::from_pixel(CREATED_TEXTURE_SIZE, CREATED_TEXTURE_SIZE, pixel)
}

/// What one asset's buffers and images may still take of `SourceLimits::max_asset_bytes`.
struct Budget<'a> {
    path: &'a Path,
    left: u64,
    limit: u64,
}

impl Budget<'_> {
    fn take(&mut self, bytes: u64, what: &str) -> Result<(), SourceError> {
        if bytes > self.left {
            return Err(SourceError::OverLimit {
                path: self.path.to_path_buf(),
                what: what.to_string(),
                cause: format!(
                    "would bring the asset's buffers and images over the {} limit on one asset ({} of them \
                     are read already)",
                    human_bytes(self.limit),
                    human_bytes(self.limit - self.left)
                ),
                limit: "max_asset_bytes",
            });
        }
        self.left -= bytes;
        Ok(())
    }
}

impl MeshAsset {
    /// Reads a .glb or .gltf file with everything it refers to, within the default [`SourceLimits`].
    ///
    /// A `.gltf`'s external files are read only when they are regular files inside its folder (see
    /// [`SourceLimits`] for the sizes); every other URI but a data URI is refused without being opened or fetched.
    pub fn load(path: &Path) -> Result<Self, SourceError> {
        Self::load_with(path, &SourceLimits::default())
    }

    /// [`MeshAsset::load`] with the given limits.
    pub fn load_with(path: &Path, limits: &SourceLimits) -> Result<Self, SourceError> {
        let bytes = read_source_file(path, "the asset file", limits)?;
        let bad = |cause: String| SourceError::BadGltf {
            path: path.to_path_buf(),
            cause,
        };
        let container = parse_container(path, &bytes)?;
        drop(bytes);
        let json = container.json;
        let mut bin = container.bin;
        let version = json
            .get("asset")
            .and_then(|a| a.get("version"))
            .and_then(Value::as_str)
            .unwrap_or("");
        if !version.starts_with("2.") {
            return Err(bad(format!(
                "asset.version is {version:?}; only glTF 2.0 is supported (convert glTF 1.0 assets first)"
            )));
        }

        for ext in array(&json, "extensionsRequired")
            .iter()
            .filter_map(Value::as_str)
        {
            if COMPRESSION_EXTENSIONS.contains(&ext) {
                return Err(SourceError::Unsupported {
                    path: path.to_path_buf(),
                    cause: format!(
                    "its geometry is compressed with {ext}, which texaug does not decode. Re-export it without \
                     compression (in Blender: untick Compression in the glTF export options)"
                    ),
                });
            }
        }

        let mut budget = Budget {
            path,
            left: limits.max_asset_bytes,
            limit: limits.max_asset_bytes,
        };
        let mut buffers = Vec::new();
        for (i, buffer) in array(&json, "buffers").iter().enumerate() {
            let what = format!("buffer {i}");
            let declared = get_usize(buffer, "byteLength").unwrap_or(0);
            let data = match buffer.get("uri").and_then(Value::as_str) {
                Some(uri) => resolve_uri(path, uri, &what, limits)?,
                None if i == 0 && bin.is_some() => {
                    let bin = bin.take().unwrap_or_default();
                    if bin.len() < declared {
                        return Err(SourceError::TruncatedGlb {
                            path: path.to_path_buf(),
                            cause: format!(
                                "buffer 0 declares {declared} bytes but the BIN chunk holds {}",
                                bin.len()
                            ),
                        });
                    }
                    bin
                }
                None => {
                    return Err(bad(format!(
                        "buffer {i} has no uri and is not the BIN chunk of a GLB"
                    )))
                }
            };
            if data.len() < declared {
                return Err(bad(format!(
                    "buffer {i} declares {declared} bytes but holds {}",
                    data.len()
                )));
            }
            budget.take(data.len() as u64, &what)?;
            buffers.push(data);
        }

        let reader = AccessorReader {
            path,
            json: &json,
            buffers: &buffers,
            limits,
        };
        // Every bufferView and accessor is checked against the bytes behind it now, so that neither reading the
        // triangles nor writing the re-textured GLB later meets an out-of-range view.
        for v in 0..array(&json, "bufferViews").len() {
            reader.buffer_view(v)?;
        }
        for a in 0..array(&json, "accessors").len() {
            reader.check(a)?;
        }
        let mut images = Vec::new();
        for (i, image) in array(&json, "images").iter().enumerate() {
            let what = match image.get("name").and_then(Value::as_str) {
                Some(name) => format!("image {i} (\"{name}\")"),
                None => format!("image {i}"),
            };
            let data = match (
                image.get("uri").and_then(Value::as_str),
                get_usize(image, "bufferView"),
            ) {
                (Some(_), Some(view)) => {
                    return Err(bad(format!(
                    "{what} has both a uri and bufferView {view}, and glTF allows only one of them"
                )))
                }
                (Some(uri), None) => resolve_uri(path, uri, &what, limits)?,
                (None, Some(view)) => {
                    let bytes = reader.buffer_view(view)?;
                    budget.take(bytes.len() as u64, &what)?;
                    bytes.to_vec()
                }
                (None, None) => return Err(bad(format!("{what} has neither uri nor bufferView"))),
            };
            if image.get("uri").is_some() {
                budget.take(data.len() as u64, &what)?;
            }
            images.push(data);
        }

        let mut asset = MeshAsset {
            path: path.to_path_buf(),
            json,
            buffers,
            images,
            slots: Vec::new(),
            slot_image: Vec::new(),
            material_slot: Vec::new(),
            limits: *limits,
        };
        asset.check_primitives()?;
        asset.find_slots()?;
        Ok(asset)
    }

    /// Decoded pixels: each image at most `max_image_pixels`, all of them together at most `max_total_pixels`.
    fn take_pixels(&self, total: &mut u64, pixels: u64, what: &str) -> Result<(), SourceError> {
        let max = self.limits.max_total_pixels;
        if total.saturating_add(pixels) > max {
            return Err(SourceError::OverLimit {
                path: self.path.clone(),
                what: what.to_string(),
                cause: format!(
                    "would bring the base-color images decoded for this asset to {} pixels, over the limit of {max}",
                    total.saturating_add(pixels)
                ),
                limit: "max_total_pixels",
            });
        }
        *total += pixels;
        Ok(())
    }

    /// Refuses point and line primitives and primitives lacking the UV set their base-color texture reads.
    fn check_primitives(&self) -> Result<(), SourceError> {
        let materials = array(&self.json, "materials");
        for (m, mesh) in array(&self.json, "meshes").iter().enumerate() {
            for (p, prim) in array(mesh, "primitives").iter().enumerate() {
                let mode = prim.get("mode").and_then(Value::as_u64).unwrap_or(4);
                let mode_name = match mode {
                    0 => Some("POINTS"),
                    1 => Some("LINES"),
                    2 => Some("LINE_LOOP"),
                    3 => Some("LINE_STRIP"),
                    4..=6 => None,
                    _ => Some("an unknown mode"),
                };
                if let Some(name) = mode_name {
                    return Err(SourceError::NonTriangle {
                        path: self.path.clone(),
                        mesh: mesh_name(mesh, m),
                        primitive: p,
                        mode: format!("{name} (mode {mode})"),
                    });
                }
                for mat in primitive_materials(prim) {
                    let Some(info) = materials.get(mat).and_then(base_color_info) else {
                        continue;
                    };
                    let set = uv_set(info);
                    if !has_attribute(prim, &format!("TEXCOORD_{set}")) {
                        return Err(SourceError::MissingUvs {
                            path: self.path.clone(),
                            mesh: mesh_name(mesh, m),
                            primitive: p,
                            set,
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// One slot per distinct base-color image, plus one per factor-only material whose primitives all have UVs.
    fn find_slots(&mut self) -> Result<(), SourceError> {
        let materials = array(&self.json, "materials");
        let textures = array(&self.json, "textures");
        // For each material, whether some primitive uses it and whether all that do have TEXCOORD_0.
        let mut used = vec![false; materials.len()];
        let mut all_have_uvs = vec![true; materials.len()];
        let mut first_without_uvs = None;
        for (m, mesh) in array(&self.json, "meshes").iter().enumerate() {
            for (p, prim) in array(mesh, "primitives").iter().enumerate() {
                let uvs = has_attribute(prim, "TEXCOORD_0");
                if !uvs && first_without_uvs.is_none() {
                    first_without_uvs = Some((mesh_name(mesh, m), p));
                }
                for mat in primitive_materials(prim) {
                    if mat < materials.len() {
                        used[mat] = true;
                        all_have_uvs[mat] &= uvs;
                    }
                }
            }
        }

        let mut image_slot: BTreeMap<usize, usize> = BTreeMap::new();
        let mut total_pixels = 0u64;
        self.material_slot = vec![None; materials.len()];
        for (mat, material) in materials.iter().enumerate() {
            if let Some(info) = base_color_info(material) {
                let texture = get_usize(info, "index").unwrap_or(usize::MAX);
                let image = textures.get(texture).and_then(texture_image).ok_or_else(|| {
                    SourceError::BadGltf {
                        path: self.path.clone(),
                        cause: format!(
                            "material {mat}'s base color refers to texture {texture}, which does not exist or has no image"
                        ),
                    }
                })?;
                let bytes = self.images.get(image).ok_or_else(|| SourceError::BadGltf {
                    path: self.path.clone(),
                    cause: format!(
                        "texture {texture} refers to image {image}, which does not exist"
                    ),
                })?;
                let slot = match image_slot.get(&image) {
                    Some(&slot) => slot,
                    None => {
                        let what = format!("image {image} (base color of material {mat})");
                        let max = self.limits.max_image_pixels;
                        let error = |e: DecodeError| match e {
                            DecodeError::Bad(cause) => SourceError::UnsupportedTexture {
                                path: self.path.clone(),
                                what: what.clone(),
                                cause,
                            },
                            DecodeError::TooManyPixels { .. } => SourceError::OverLimit {
                                path: self.path.clone(),
                                what: what.clone(),
                                cause: e.over_limit_cause(max),
                                limit: "max_image_pixels",
                            },
                        };
                        let (w, h) = image_dimensions(bytes).map_err(error)?;
                        if w as u64 * h as u64 <= max {
                            self.take_pixels(&mut total_pixels, w as u64 * h as u64, &what)?;
                        }
                        let pixels = decode_image_bytes(bytes, max).map_err(error)?;
                        let slot = self.slots.len();
                        self.slots.push(BaseColorSlot {
                            slot,
                            image: pixels,
                            materials: Vec::new(),
                            created: false,
                        });
                        self.slot_image.push(Some(image));
                        image_slot.insert(image, slot);
                        slot
                    }
                };
                self.slots[slot].materials.push(mat);
                self.material_slot[mat] = Some(slot);
            } else if used[mat] && all_have_uvs[mat] {
                let side = CREATED_TEXTURE_SIZE as u64;
                self.take_pixels(
                    &mut total_pixels,
                    side * side,
                    &format!("the solid base-color texture made for material {mat}"),
                )?;
                let slot = self.slots.len();
                self.slots.push(BaseColorSlot {
                    slot,
                    image: solid_texture(material),
                    materials: vec![mat],
                    created: true,
                });
                self.slot_image.push(None);
                self.material_slot[mat] = Some(slot);
            }
        }

        if self.slots.is_empty() {
            if let Some((mesh, primitive)) = first_without_uvs {
                return Err(SourceError::MissingUvs {
                    path: self.path.clone(),
                    mesh,
                    primitive,
                    set: 0,
                });
            }
            return Err(SourceError::NothingToRetexture {
                path: self.path.clone(),
                cause: "no primitive has a material. Assign a material to the mesh and re-export"
                    .to_string(),
            });
        }
        Ok(())
    }

    /// The distinct base-color images, in material order.
    pub fn base_color_slots(&self) -> Vec<BaseColorSlot> {
        self.slots.clone()
    }

    /// The path the asset was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The glTF document as read.
    pub fn json(&self) -> &Value {
        &self.json
    }

    /// The bytes of bufferView `index`.
    pub fn buffer_view(&self, index: usize) -> Result<&[u8], SourceError> {
        AccessorReader {
            path: &self.path,
            json: &self.json,
            buffers: &self.buffers,
            limits: &self.limits,
        }
        .buffer_view(index)
    }

    /// The encoded bytes of image `index` (PNG, JPEG, WebP, or whatever the asset holds).
    pub fn image_bytes(&self, index: usize) -> Option<&[u8]> {
        self.images.get(index).map(Vec::as_slice)
    }
}
