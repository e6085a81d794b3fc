//! A glTF 2.0 asset (.glb, or .gltf with embedded or external buffers and images) as texaug reads it.
//!
//! Loading resolves every buffer and image into memory, so a missing external file fails here, naming its URI and
//! resolved path, and writing a self-contained GLB later cannot fail on input files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use image::RgbaImage;
use serde_json::Value;

use super::gltf_io::{array, get_usize, parse_container, resolve_uri, AccessorReader};
use super::image_file::decode_image_bytes;
use super::SourceError;

/// Marks a triangle whose material has no base-color slot (no material, or a factor-only one without UVs).
pub const NO_SLOT: u32 = u32::MAX;

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

/// World-space triangles of the default scene, ready for rendering.
#[derive(Debug, Clone, Default)]
pub struct WorldTriangles {
    pub positions: Vec<[f32; 3]>,
    pub normals: Vec<[f32; 3]>,
    /// The texCoord set each material's base color uses, with `KHR_texture_transform` applied, so that a texel at
    /// `uv` of the slot image is where a glTF viewer shows it.
    pub uvs: Vec<[f32; 2]>,
    pub indices: Vec<[u32; 3]>,
    /// The slot index of each triangle, or [`NO_SLOT`].
    pub slot_of_triangle: Vec<u32>,
}

/// The base-color `textureInfo` of a material, if any.
pub(crate) fn base_color_info(material: &Value) -> Option<&Value> {
    material
        .get("pbrMetallicRoughness")?
        .get("baseColorTexture")
}

/// The UV set a base-color texture reads: `KHR_texture_transform`'s `texCoord` overrides the textureInfo's.
fn uv_set(info: &Value) -> u32 {
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

impl MeshAsset {
    /// Reads a .glb or .gltf file with everything it refers to.
    pub fn load(path: &Path) -> Result<Self, SourceError> {
        let bytes = std::fs::read(path).map_err(|source| SourceError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let bad = |cause: String| SourceError::BadGltf {
            path: path.to_path_buf(),
            cause,
        };
        let container = parse_container(path, &bytes)?;
        let json = container.json;
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

        let mut buffers = Vec::new();
        for (i, buffer) in array(&json, "buffers").iter().enumerate() {
            let declared = get_usize(buffer, "byteLength").unwrap_or(0);
            let data = match buffer.get("uri").and_then(Value::as_str) {
                Some(uri) => resolve_uri(path, uri, &format!("buffer {i}"))?,
                None if i == 0 && container.bin.is_some() => {
                    let bin = container.bin.clone().unwrap_or_default();
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
            buffers.push(data);
        }

        let reader = AccessorReader {
            path,
            json: &json,
            buffers: &buffers,
        };
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
                (Some(uri), _) => resolve_uri(path, uri, &what)?,
                (None, Some(view)) => reader.buffer_view(view)?.to_vec(),
                (None, None) => return Err(bad(format!("{what} has neither uri nor bufferView"))),
            };
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
        };
        asset.check_primitives()?;
        asset.find_slots()?;
        Ok(asset)
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
                        let pixels = decode_image_bytes(bytes).map_err(|cause| {
                            SourceError::UnsupportedTexture {
                                path: self.path.clone(),
                                what: format!("image {image} (base color of material {mat})"),
                                cause,
                            }
                        })?;
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
        }
        .buffer_view(index)
    }

    /// The encoded bytes of image `index` (PNG, JPEG, WebP, or whatever the asset holds).
    pub fn image_bytes(&self, index: usize) -> Option<&[u8]> {
        self.images.get(index).map(Vec::as_slice)
    }

    /// World-space geometry of every mesh instance in the default scene.
    pub fn triangles(&self) -> Result<WorldTriangles, SourceError> {
        super::mesh_geometry::world_triangles(self)
    }
}
