//! A minimal glTF writer for the procedural demo assets: geometry, materials and PNG textures in one buffer.

use std::path::Path;

use image::RgbaImage;
use serde_json::{json, Value};

use super::error::SourceError;
use super::glb::assemble_glb;
use super::gltf_io::canonical_json;
use super::image_file::{encode_png, write_bytes_atomic};
use super::uri::base64_encode;

/// Indexed triangle geometry with normals and one or two UV sets.
#[derive(Debug, Clone, Default)]
pub(crate) struct Geometry {
    pub positions: Vec<[f32; 3]>,
    pub normals: Vec<[f32; 3]>,
    pub uvs: Vec<[f32; 2]>,
    pub uvs1: Option<Vec<[f32; 2]>>,
    /// xyz along increasing u, w the handedness, for normal-mapped materials.
    pub tangents: Option<Vec<[f32; 4]>>,
    pub indices: Vec<u32>,
}

impl Geometry {
    /// Appends `other`, offsetting its indices.
    pub fn append(&mut self, other: &Geometry) {
        let base = self.positions.len() as u32;
        self.positions.extend_from_slice(&other.positions);
        self.normals.extend_from_slice(&other.normals);
        self.uvs.extend_from_slice(&other.uvs);
        if let (Some(mine), Some(theirs)) = (&mut self.tangents, &other.tangents) {
            mine.extend_from_slice(theirs);
        }
        self.indices.extend(other.indices.iter().map(|i| i + base));
    }
}

/// Where the buffer and images of a written asset live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    /// One .glb file.
    Glb,
    /// A .gltf with base64 data URIs.
    DataUris,
    /// A .gltf next to its .bin and .png files.
    External,
}

#[derive(Default)]
pub(crate) struct Builder {
    bin: Vec<u8>,
    views: Vec<Value>,
    accessors: Vec<Value>,
    pub meshes: Vec<Value>,
    pub materials: Vec<Value>,
    pub textures: Vec<Value>,
    pub samplers: Vec<Value>,
    pub nodes: Vec<Value>,
    images: Vec<(String, Vec<u8>)>,
    extensions_used: Vec<&'static str>,
}

const ARRAY_BUFFER: u32 = 34962;
const ELEMENT_ARRAY_BUFFER: u32 = 34963;

impl Builder {
    fn add_view(&mut self, data: &[u8], target: Option<u32>) -> usize {
        while !self.bin.len().is_multiple_of(4) {
            self.bin.push(0);
        }
        let mut view = json!({"buffer": 0, "byteOffset": self.bin.len(), "byteLength": data.len()});
        if let Some(t) = target {
            view["target"] = json!(t);
        }
        self.bin.extend_from_slice(data);
        self.views.push(view);
        self.views.len() - 1
    }

    fn add_floats(&mut self, items: &[f32], width: usize, bounds: bool) -> usize {
        let bytes: Vec<u8> = items.iter().flat_map(|x| x.to_le_bytes()).collect();
        let view = self.add_view(&bytes, Some(ARRAY_BUFFER));
        let ty = ["SCALAR", "VEC2", "VEC3", "VEC4"][width - 1];
        let mut acc = json!({"bufferView": view, "componentType": 5126, "count": items.len() / width, "type": ty});
        if bounds {
            let (mut lo, mut hi) = (vec![f32::MAX; width], vec![f32::MIN; width]);
            for chunk in items.chunks_exact(width) {
                for k in 0..width {
                    lo[k] = lo[k].min(chunk[k]);
                    hi[k] = hi[k].max(chunk[k]);
                }
            }
            acc["min"] = json!(lo);
            acc["max"] = json!(hi);
        }
        self.accessors.push(acc);
        self.accessors.len() - 1
    }

    /// A primitive object for `g` with `material`.
    pub fn primitive(&mut self, g: &Geometry, material: usize) -> Value {
        let flat = |v: &[[f32; 3]]| v.iter().flatten().copied().collect::<Vec<f32>>();
        let flat2 = |v: &[[f32; 2]]| v.iter().flatten().copied().collect::<Vec<f32>>();
        let position = self.add_floats(&flat(&g.positions), 3, true);
        let normal = self.add_floats(&flat(&g.normals), 3, false);
        let uv = self.add_floats(&flat2(&g.uvs), 2, false);
        let mut attributes = json!({"POSITION": position, "NORMAL": normal, "TEXCOORD_0": uv});
        if let Some(tangents) = &g.tangents {
            let flat4: Vec<f32> = tangents.iter().flatten().copied().collect();
            attributes["TANGENT"] = json!(self.add_floats(&flat4, 4, false));
        }
        if let Some(uvs1) = &g.uvs1 {
            attributes["TEXCOORD_1"] = json!(self.add_floats(&flat2(uvs1), 2, false));
        }
        let indices: Vec<u8> = g
            .indices
            .iter()
            .flat_map(|&i| (i as u16).to_le_bytes())
            .collect();
        let view = self.add_view(&indices, Some(ELEMENT_ARRAY_BUFFER));
        self.accessors.push(json!({"bufferView": view, "componentType": 5123, "count": g.indices.len(), "type": "SCALAR"}));
        json!({"attributes": attributes, "indices": self.accessors.len() - 1, "material": material})
    }

    /// Adds a PNG image and a texture showing it; returns the texture index.
    pub fn texture(
        &mut self,
        name: &str,
        image: &RgbaImage,
        sampler: Option<usize>,
    ) -> Result<usize, SourceError> {
        let png = encode_png(image).map_err(|cause| SourceError::Encode {
            path: name.into(),
            cause,
        })?;
        self.images.push((name.to_string(), png));
        let mut texture = json!({"source": self.images.len() - 1});
        if let Some(s) = sampler {
            texture["sampler"] = json!(s);
        }
        self.textures.push(texture);
        Ok(self.textures.len() - 1)
    }

    pub fn uses_extension(&mut self, name: &'static str) {
        if !self.extensions_used.contains(&name) {
            self.extensions_used.push(name);
        }
    }

    /// Writes the asset to `path` (its file stem names the .bin and .png files of an external layout).
    pub fn write(mut self, path: &Path, layout: Layout) -> Result<(), SourceError> {
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let dir = path.parent().unwrap_or(Path::new(""));
        let mut images = Vec::new();
        for (name, png) in std::mem::take(&mut self.images) {
            let image = match layout {
                Layout::Glb => {
                    let view = self.add_view(&png, None);
                    json!({"name": name, "bufferView": view, "mimeType": "image/png"})
                }
                Layout::DataUris => {
                    json!({"name": name, "uri": format!("data:image/png;base64,{}", base64_encode(&png))})
                }
                Layout::External => {
                    let file = format!("{stem}_{name}.png");
                    write_bytes_atomic(&png, &dir.join(&file))?;
                    json!({"name": name, "uri": file})
                }
            };
            images.push(image);
        }
        while !self.bin.len().is_multiple_of(4) {
            self.bin.push(0);
        }
        let mut buffer = json!({"byteLength": self.bin.len()});
        match layout {
            Layout::Glb => {}
            Layout::DataUris => {
                buffer["uri"] = json!(format!(
                    "data:application/octet-stream;base64,{}",
                    base64_encode(&self.bin)
                ));
            }
            Layout::External => {
                let file = format!("{stem}.bin");
                write_bytes_atomic(&self.bin, &dir.join(&file))?;
                buffer["uri"] = json!(file);
            }
        }
        let mut doc = json!({
            "asset": {"version": "2.0", "generator": "texaug demo"},
            "scene": 0,
            "scenes": [{"nodes": (0..self.nodes.len()).filter(|&n| !self.nodes.iter().any(|p| p.get("children").and_then(Value::as_array).is_some_and(|c| c.contains(&json!(n))))).collect::<Vec<_>>()}],
            "nodes": self.nodes,
            "meshes": self.meshes,
            "materials": self.materials,
            "textures": self.textures,
            "images": images,
            "accessors": self.accessors,
            "bufferViews": self.views,
            "buffers": [buffer],
        });
        if !self.samplers.is_empty() {
            doc["samplers"] = json!(self.samplers);
        }
        if !self.extensions_used.is_empty() {
            doc["extensionsUsed"] = json!(self.extensions_used);
        }
        let bytes = match layout {
            Layout::Glb => {
                assemble_glb(&doc, self.bin.clone()).map_err(|cause| SourceError::Unsupported {
                    path: path.to_path_buf(),
                    cause,
                })?
            }
            _ => canonical_json(&doc),
        };
        write_bytes_atomic(&bytes, path)
    }
}
