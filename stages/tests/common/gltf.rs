//! glTF sources for the source tests: the demo assets in a temp folder, GLB surgery, re-texturing.

use std::path::{Path, PathBuf};

use image::{Rgba, RgbaImage};
use serde_json::Value;
use texaug_stages::source::{write_demo_sources, write_retextured_glb, DemoSource, MeshAsset};

pub fn demo_dir() -> (tempfile::TempDir, Vec<DemoSource>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let sources = write_demo_sources(dir.path()).expect("demo sources");
    (dir, sources)
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A texture no source has: a diagonal gradient keyed by `seed`, with some translucent texels when `alpha`.
pub fn new_texture(seed: u32, alpha: bool) -> RgbaImage {
    RgbaImage::from_fn(40 + seed * 8, 24 + seed * 4, |x, y| {
        let a = if alpha && (x + y) % 5 == 0 { 128 } else { 255 };
        Rgba([
            (x * 5 + seed * 40) as u8,
            (y * 7) as u8,
            ((x + y) * 3) as u8,
            a,
        ])
    })
}

pub fn glb_parts(bytes: &[u8]) -> (Value, Vec<u8>) {
    let json_len = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
    let json: Value = serde_json::from_slice(&bytes[20..20 + json_len]).unwrap();
    let rest = &bytes[20 + json_len..];
    let bin = if rest.len() >= 8 {
        rest[8..].to_vec()
    } else {
        Vec::new()
    };
    (json, bin)
}

pub fn glb_from_parts(json: &Value, bin: &[u8]) -> Vec<u8> {
    let mut j = serde_json::to_vec(json).unwrap();
    while !j.len().is_multiple_of(4) {
        j.push(b' ');
    }
    let mut out = b"glTF".to_vec();
    out.extend(2u32.to_le_bytes());
    out.extend(((12 + 8 + j.len() + 8 + bin.len()) as u32).to_le_bytes());
    out.extend((j.len() as u32).to_le_bytes());
    out.extend(b"JSON");
    out.extend(&j);
    out.extend((bin.len() as u32).to_le_bytes());
    out.extend(b"BIN\0");
    out.extend(bin);
    out
}

/// Copies a GLB with its JSON edited by `f`.
pub fn edit_glb(src: &Path, dst: &Path, f: impl FnOnce(&mut Value)) {
    let (mut json, bin) = glb_parts(&std::fs::read(src).unwrap());
    f(&mut json);
    std::fs::write(dst, glb_from_parts(&json, &bin)).unwrap();
}

/// A material without the base-color fields (texture and factor), for comparing everything else.
pub fn without_base_color(material: &Value) -> Value {
    let mut m = material.clone();
    if let Some(pbr) = m
        .get_mut("pbrMetallicRoughness")
        .and_then(Value::as_object_mut)
    {
        pbr.remove("baseColorTexture");
        pbr.remove("baseColorFactor");
    }
    m
}

pub fn mesh_paths(dir: &Path, sources: &[DemoSource]) -> Vec<PathBuf> {
    sources
        .iter()
        .filter(|s| s.kind == "mesh")
        .map(|s| dir.join(&s.path))
        .collect()
}

/// Writes each demo mesh re-textured into `out_dir`; returns (source path, written path, new textures).
/// A demo mesh re-textured: its source path, the written GLB and the textures given per slot.
pub type Retextured = (PathBuf, PathBuf, Vec<(usize, RgbaImage)>);

pub fn retexture_all(dir: &Path, sources: &[DemoSource], out_dir: &Path) -> Vec<Retextured> {
    mesh_paths(dir, sources)
        .into_iter()
        .map(|path| {
            let asset = MeshAsset::load(&path).unwrap_or_else(|e| panic!("{e}"));
            let textures: Vec<(usize, RgbaImage)> = asset
                .base_color_slots()
                .iter()
                .map(|s| (s.slot, new_texture(s.slot as u32 + 1, s.slot == 0)))
                .collect();
            let out = out_dir.join(format!(
                "{}.glb",
                path.file_stem().unwrap().to_string_lossy()
            ));
            write_retextured_glb(&asset, &textures, &out).unwrap_or_else(|e| panic!("{e}"));
            (path, out, textures)
        })
        .collect()
}
