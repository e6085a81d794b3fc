//! Sources: every demo asset round-trips through load → re-texture → write with only its base colors changed,
//! the written files are deterministic and valid, and the demo data in the repository is current.

mod common;

use std::path::{Path, PathBuf};

use common::gltf::{
    demo_dir, edit_glb, mesh_paths, new_texture, repo_root, retexture_all, without_base_color,
};
use image::RgbaImage;
use serde_json::Value;
use texaug_stages::source::{
    demo_manifest_csv, write_demo_sources, write_retextured_glb, MeshAsset, SourceError,
};

#[test]
fn every_demo_mesh_round_trips_with_only_base_colors_replaced() {
    let (dir, sources) = demo_dir();
    let out_dir = tempfile::tempdir().unwrap();
    for (path, out, textures) in retexture_all(dir.path(), &sources, out_dir.path()) {
        let before = MeshAsset::load(&path).unwrap();
        let after =
            MeshAsset::load(&out).unwrap_or_else(|e| panic!("re-reading {}: {e}", out.display()));
        let (a, b) = (before.json(), after.json());
        let name = path.display();

        // Structure and geometry: the same nodes, meshes, accessors, samplers, scenes, and accessor bytes.
        for key in [
            "nodes",
            "meshes",
            "accessors",
            "samplers",
            "scenes",
            "scene",
            "extensionsUsed",
        ] {
            assert_eq!(a.get(key), b.get(key), "{name}: `{key}` changed");
        }
        for (i, acc) in a["accessors"].as_array().unwrap().iter().enumerate() {
            let view = acc["bufferView"].as_u64().unwrap() as usize;
            assert_eq!(
                before.buffer_view(view).unwrap(),
                after.buffer_view(view).unwrap(),
                "{name}: accessor {i}'s bytes"
            );
        }
        // Self-contained: nothing refers to a file or a data URI any more.
        for key in ["buffers", "images"] {
            for item in b[key].as_array().unwrap() {
                assert!(
                    item.get("uri").is_none(),
                    "{name}: {key} still has a uri: {item}"
                );
            }
        }

        // Materials: all but the base color identical; the base color's texCoord and transform kept.
        let (ma, mb) = (
            a["materials"].as_array().unwrap(),
            b["materials"].as_array().unwrap(),
        );
        assert_eq!(ma.len(), mb.len());
        for (x, y) in ma.iter().zip(mb) {
            assert_eq!(
                without_base_color(x),
                without_base_color(y),
                "{name}: material changed"
            );
            let info = |m: &Value| m["pbrMetallicRoughness"].get("baseColorTexture").cloned();
            if let (Some(mut ix), Some(mut iy)) = (info(x), info(y)) {
                ix.as_object_mut().unwrap().remove("index");
                iy.as_object_mut().unwrap().remove("index");
                assert_eq!(ix, iy, "{name}: base-color texCoord or extensions changed");
            }
            // Other maps show the very same image bytes.
            for map in ["normalTexture", "occlusionTexture", "emissiveTexture"] {
                if let Some(t) = x.get(map) {
                    assert_eq!(t, &y[map]);
                    let image = |doc: &Value, asset: &MeshAsset| {
                        let src = doc["textures"][t["index"].as_u64().unwrap() as usize]["source"]
                            .as_u64()
                            .unwrap();
                        asset.image_bytes(src as usize).unwrap().to_vec()
                    };
                    assert_eq!(
                        image(a, &before),
                        image(b, &after),
                        "{name}: {map} image changed"
                    );
                }
            }
        }

        // The new images decode to the given pixels, slot for slot, and no slot is left to create.
        let slots = after.base_color_slots();
        assert_eq!(slots.len(), textures.len(), "{name}: slot count");
        for ((slot, given), got) in textures.iter().zip(&slots) {
            assert_eq!(got.slot, *slot);
            assert!(
                !got.created,
                "{name}: slot {slot} still to be created after writing"
            );
            assert_eq!(&got.image, given, "{name}: slot {slot} pixels");
        }
        let created: Vec<usize> = before
            .base_color_slots()
            .iter()
            .filter(|s| s.created)
            .map(|s| s.slot)
            .collect();
        for s in created {
            for &m in &before.base_color_slots()[s].materials {
                assert_eq!(
                    b["materials"][m]["pbrMetallicRoughness"]["baseColorFactor"],
                    serde_json::json!([1.0, 1.0, 1.0, 1.0])
                );
            }
        }

        // The geometry the renderer sees is unchanged.
        let (ta, tb) = (before.triangles().unwrap(), after.triangles().unwrap());
        assert_eq!(ta.positions, tb.positions);
        assert_eq!(ta.uvs, tb.uvs);
        assert_eq!(ta.indices, tb.indices);
        assert_eq!(ta.slot_of_triangle, tb.slot_of_triangle);
    }
}

#[test]
fn writing_is_deterministic_and_returns_the_file_hash() {
    let (dir, _) = demo_dir();
    let asset = MeshAsset::load(&dir.path().join("mug.glb")).unwrap();
    let textures = vec![(0, new_texture(3, true)), (1, new_texture(4, false))];
    let (p1, p2) = (dir.path().join("a.glb"), dir.path().join("b.glb"));
    let h1 = write_retextured_glb(&asset, &textures, &p1).unwrap();
    let h2 = write_retextured_glb(&asset, &textures, &p2).unwrap();
    assert_eq!(h1, h2);
    let bytes = std::fs::read(&p1).unwrap();
    assert_eq!(bytes, std::fs::read(&p2).unwrap());
    use sha2::Digest;
    assert_eq!(h1, hex::encode(sha2::Sha256::digest(&bytes)));
    // No temp files left behind.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn slots_match_the_demo_materials() {
    let (dir, _) = demo_dir();
    let mug = MeshAsset::load(&dir.path().join("mug.glb")).unwrap();
    let slots = mug.base_color_slots();
    assert_eq!(slots.len(), 2);
    assert!(
        !slots[0].created && slots[1].created,
        "the handle has only a baseColorFactor"
    );
    // The handle's factor (0.55, 0.12, 0.08) linear, shown as sRGB.
    let p = slots[1].image.get_pixel(0, 0);
    let srgb = |c: f64| ((1.055 * c.powf(1.0 / 2.4) - 0.055) * 255.0).round() as u8;
    assert_eq!(p.0, [srgb(0.55), srgb(0.12), srgb(0.08), 255]);

    let crate_asset = MeshAsset::load(&dir.path().join("crate.glb")).unwrap();
    let slots = crate_asset.base_color_slots();
    assert_eq!(slots.len(), 1, "two materials share one base-color image");
    assert_eq!(slots[0].materials, vec![0, 1]);
}

#[test]
fn shared_images_stay_shared_and_other_uses_keep_the_old_image() {
    let (dir, _) = demo_dir();
    let asset = MeshAsset::load(&dir.path().join("crate.glb")).unwrap();
    let out = dir.path().join("out.glb");
    write_retextured_glb(&asset, &[(0, new_texture(1, false))], &out).unwrap();
    let after = MeshAsset::load(&out).unwrap();
    let j = after.json();
    let source = |m: usize| {
        let t = j["materials"][m]["pbrMetallicRoughness"]["baseColorTexture"]["index"]
            .as_u64()
            .unwrap() as usize;
        j["textures"][t]["source"].clone()
    };
    assert_eq!(source(0), source(1));
    assert_eq!(
        j["images"].as_array().unwrap().len(),
        asset.json()["images"].as_array().unwrap().len()
    );

    // When the lid's normal map is the planks texture itself, the normal map must keep the old planks image.
    let shared = dir.path().join("shared.glb");
    edit_glb(&dir.path().join("crate.glb"), &shared, |json| {
        json["materials"][1]["normalTexture"]["index"] =
            json["materials"][1]["pbrMetallicRoughness"]["baseColorTexture"]["index"].clone();
    });
    let asset = MeshAsset::load(&shared).unwrap();
    let old_planks = asset.base_color_slots()[0].image.clone();
    write_retextured_glb(&asset, &[(0, new_texture(2, false))], &out).unwrap();
    let after = MeshAsset::load(&out).unwrap();
    let j = after.json();
    let normal_tex = j["materials"][1]["normalTexture"]["index"]
        .as_u64()
        .unwrap() as usize;
    let normal_img = j["textures"][normal_tex]["source"].as_u64().unwrap() as usize;
    let decoded = image::load_from_memory(after.image_bytes(normal_img).unwrap())
        .unwrap()
        .to_rgba8();
    assert_eq!(decoded, old_planks);
    assert_eq!(after.base_color_slots()[0].image, new_texture(2, false));
}

#[test]
fn unknown_extensions_and_extras_pass_through() {
    let (dir, _) = demo_dir();
    let src = dir.path().join("ext.glb");
    edit_glb(&dir.path().join("crate.glb"), &src, |json| {
        json["nodes"][0]["extensions"] =
            serde_json::json!({"EXT_texaug_test": {"weights": [1, 2.5]}});
        json["extras"] = serde_json::json!({"author": "texaug", "nested": {"k": [true, null]}});
        json["extensionsUsed"]
            .as_array_mut()
            .unwrap()
            .push("EXT_texaug_test".into());
        json["textures"][0]["extras"] = serde_json::json!({"keep": "me"});
    });
    let asset = MeshAsset::load(&src).unwrap();
    let out = dir.path().join("out.glb");
    write_retextured_glb(&asset, &[(0, new_texture(1, false))], &out).unwrap();
    let (before, after) = (asset.json(), MeshAsset::load(&out).unwrap().json().clone());
    for key in ["nodes", "extras", "extensionsUsed", "textures", "samplers"] {
        assert_eq!(before[key], after[key], "`{key}` changed");
    }
}

#[test]
fn slots_not_given_keep_their_image_and_bad_slots_are_refused() {
    let (dir, _) = demo_dir();
    let asset = MeshAsset::load(&dir.path().join("mug.glb")).unwrap();
    let out = dir.path().join("out.glb");
    // Only the created slot: the glaze keeps its texels.
    write_retextured_glb(&asset, &[(1, new_texture(2, false))], &out).unwrap();
    let slots = MeshAsset::load(&out).unwrap().base_color_slots();
    assert_eq!(slots[0].image, asset.base_color_slots()[0].image);
    assert_eq!(slots[1].image, new_texture(2, false));
    // Nothing given: the external can still becomes one self-contained GLB showing the same texels.
    let can = MeshAsset::load(&dir.path().join("can/can.gltf")).unwrap();
    let can_out = dir.path().join("can.glb");
    write_retextured_glb(&can, &[], &can_out).unwrap();
    let copy = MeshAsset::load(&can_out).unwrap();
    assert!(
        copy.json()["images"][0].get("uri").is_none()
            && copy.json()["buffers"][0].get("uri").is_none()
    );
    assert_eq!(
        copy.base_color_slots()[0].image,
        can.base_color_slots()[0].image
    );

    let err = write_retextured_glb(&asset, &[(7, new_texture(1, false))], &out).unwrap_err();
    assert!(
        matches!(err, SourceError::BadSlot { slot: 7, .. }),
        "{err:?}"
    );
}

#[test]
fn triangles_are_in_world_space_with_the_base_color_uvs() {
    let (dir, _) = demo_dir();
    // Ball: a sphere of radius 0.5 at the origin, normals radial.
    let ball = MeshAsset::load(&dir.path().join("ball.gltf"))
        .unwrap()
        .triangles()
        .unwrap();
    for (p, n) in ball.positions.iter().zip(&ball.normals) {
        let r = (p[0] * p[0] + p[1] * p[1] + p[2] * p[2]).sqrt();
        assert!((r - 0.5).abs() < 1e-5);
        assert!((p[0] / r - n[0]).abs() < 1e-4 && (p[1] / r - n[1]).abs() < 1e-4);
    }
    // Its base color reads TEXCOORD_1, which spans [0, 1] (TEXCOORD_0 spans [0, 4] × [0, 2]).
    assert!(ball
        .uvs
        .iter()
        .all(|uv| (0.0..=1.0).contains(&uv[0]) && (0.0..=1.0).contains(&uv[1])));
    assert!(ball.uvs.iter().any(|uv| uv[0] > 0.99));

    // Can: a cylinder of radius 0.3 and height 1, moved down 0.5, under a root scaled by 1.2.
    let can = MeshAsset::load(&dir.path().join("can/can.gltf"))
        .unwrap()
        .triangles()
        .unwrap();
    let (lo, hi) = can
        .positions
        .iter()
        .fold((f32::MAX, f32::MIN), |(lo, hi), p| {
            (lo.min(p[1]), hi.max(p[1]))
        });
    assert!(
        (lo + 0.6).abs() < 1e-5 && (hi - 0.6).abs() < 1e-5,
        "y range {lo}..{hi}"
    );
    let r = can
        .positions
        .iter()
        .map(|p| p[0].hypot(p[2]))
        .fold(0.0f32, f32::max);
    assert!((r - 0.36).abs() < 1e-5);

    // Crate: stored UVs span [0, 2]; the ½ texture transform brings them into [0, 1].
    let crate_tris = MeshAsset::load(&dir.path().join("crate.glb"))
        .unwrap()
        .triangles()
        .unwrap();
    assert!(crate_tris
        .uvs
        .iter()
        .all(|uv| (0.0..=1.0).contains(&uv[0]) && (0.0..=1.0).contains(&uv[1])));
    // The crate is rotated about y, so its half-size 0.5 stays along y; its normals are unit.
    for n in &crate_tris.normals {
        assert!(((n[0] * n[0] + n[1] * n[1] + n[2] * n[2]).sqrt() - 1.0).abs() < 1e-5);
    }
    assert_eq!(crate_tris.indices.len(), 12);
    assert_eq!(crate_tris.slot_of_triangle, vec![0; 12]);
    for t in &crate_tris.indices {
        // Counter-clockwise seen from outside: the face normal points away from the centre.
        let p = |i: u32| crate_tris.positions[i as usize];
        let (a, b, c) = (p(t[0]), p(t[1]), p(t[2]));
        let e1 = [b[0] - a[0], b[1] - a[1], b[2] - a[2]];
        let e2 = [c[0] - a[0], c[1] - a[1], c[2] - a[2]];
        let f = [
            e1[1] * e2[2] - e1[2] * e2[1],
            e1[2] * e2[0] - e1[0] * e2[2],
            e1[0] * e2[1] - e1[1] * e2[0],
        ];
        let centre = [
            (a[0] + b[0] + c[0]) / 3.0,
            (a[1] + b[1] + c[1]) / 3.0,
            (a[2] + b[2] + c[2]) / 3.0,
        ];
        assert!(f[0] * centre[0] + f[1] * centre[1] + f[2] * centre[2] > 0.0);
    }

    // Mug: two slots, the handle's triangles on the created one.
    let mug = MeshAsset::load(&dir.path().join("mug.glb"))
        .unwrap()
        .triangles()
        .unwrap();
    assert!(mug.slot_of_triangle.contains(&0) && mug.slot_of_triangle.contains(&1));
    assert_eq!(mug.slot_of_triangle.len(), mug.indices.len());
    assert_eq!(mug.uvs.len(), mug.positions.len());
}

#[test]
fn demo_data_in_the_repository_is_current() {
    let (dir, sources) = demo_dir();
    let csv = demo_manifest_csv(&sources, "demo/");
    let manifests = repo_root().join("manifests");
    if std::env::var("TEXAUG_WRITE_DEMO").as_deref() == Ok("1") {
        write_demo_sources(&manifests.join("demo")).unwrap();
        std::fs::write(manifests.join("demo.csv"), &csv).unwrap();
    }
    let committed = std::fs::read_to_string(manifests.join("demo.csv")).expect("manifests/demo.csv; regenerate with TEXAUG_WRITE_DEMO=1 cargo test -p texaug-stages --test sources demo_data");
    assert_eq!(
        committed, csv,
        "manifests/demo.csv is stale; regenerate with TEXAUG_WRITE_DEMO=1"
    );
    let mut total = 0;
    for entry in walk(dir.path()) {
        let rel = entry.strip_prefix(dir.path()).unwrap();
        let fresh = std::fs::read(&entry).unwrap();
        let repo = std::fs::read(manifests.join("demo").join(rel)).unwrap_or_default();
        assert!(
            fresh == repo,
            "manifests/demo/{} is stale; regenerate with TEXAUG_WRITE_DEMO=1",
            rel.display()
        );
        total += fresh.len();
    }
    assert!(total < 2_000_000, "demo data is {total} bytes");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().filter_map(Result::ok) {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

#[test]
fn written_glbs_pass_the_khronos_validator() {
    let validator = repo_root().join("ci").join("gltf-validator");
    if !validator
        .join("node_modules")
        .join("gltf-validator")
        .exists()
    {
        let msg = format!(
            "glTF-Validator is not installed: run `npm ci` in {}",
            validator.display()
        );
        if std::env::var("TEXAUG_REQUIRE_GLTF_VALIDATOR").as_deref() == Ok("1") {
            panic!("{msg} (TEXAUG_REQUIRE_GLTF_VALIDATOR=1 requires it)");
        }
        eprintln!("skipped: {msg}");
        return;
    }
    let (dir, sources) = demo_dir();
    let out_dir = tempfile::tempdir().unwrap();
    let written = retexture_all(dir.path(), &sources, out_dir.path());
    let mut files: Vec<PathBuf> = mesh_paths(dir.path(), &sources);
    files.extend(written.into_iter().map(|(_, out, _)| out));
    let output = std::process::Command::new("node")
        .arg(validator.join("validate.mjs"))
        .args(&files)
        .output()
        .expect("running node; install Node.js 18 or newer");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "glTF-Validator found errors:\n{report}"
    );
}

#[test]
fn image_format_extensions_no_longer_show_the_old_base_color() {
    let (dir, _) = demo_dir();
    let path = dir.path().join("webp_ball.gltf");
    let mut json = MeshAsset::load(&dir.path().join("ball.gltf"))
        .unwrap()
        .json()
        .clone();
    json["images"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"uri": "flower.webp"}));
    json["textures"][0]["extensions"] = serde_json::json!({"EXT_texture_webp": {"source": 1}});
    json["extensionsUsed"] = serde_json::json!(["EXT_texture_webp"]);
    std::fs::write(&path, serde_json::to_vec(&json).unwrap()).unwrap();
    let asset = MeshAsset::load(&path).unwrap();
    assert_eq!(asset.base_color_slots().len(), 1);
    let out = dir.path().join("out.glb");
    write_retextured_glb(&asset, &[(0, new_texture(1, false))], &out).unwrap();
    let after = MeshAsset::load(&out).unwrap();
    let j = after.json();
    assert!(
        j["textures"][0].get("extensions").is_none(),
        "{}",
        j["textures"][0]
    );
    assert!(j.get("extensionsUsed").is_none());
    assert_eq!(after.base_color_slots()[0].image, new_texture(1, false));
}

#[test]
fn replaced_images_do_not_leave_their_old_bytes_behind() {
    let (dir, _) = demo_dir();
    for name in ["crate.glb", "mug.glb"] {
        let path = dir.path().join(name);
        let asset = MeshAsset::load(&path).unwrap();
        // The same texels back: the encoder is the one the demo used, so the PNG is as large as the old one.
        let same: Vec<(usize, RgbaImage)> = asset
            .base_color_slots()
            .into_iter()
            .filter(|s| !s.created)
            .map(|s| (s.slot, s.image))
            .collect();
        let out = dir.path().join("same.glb");
        write_retextured_glb(&asset, &same, &out).unwrap();
        let (before, after) = (
            std::fs::metadata(&path).unwrap().len(),
            std::fs::metadata(&out).unwrap().len(),
        );
        assert!(
            after <= before + 64,
            "{name}: {before} bytes became {after}"
        );
    }
}

#[test]
fn several_external_buffers_merge_into_one_bin_chunk() {
    let (dir, _) = demo_dir();
    let can_dir = dir.path().join("can");
    std::fs::copy(can_dir.join("can.bin"), can_dir.join("copy of can.bin")).unwrap();
    let mut json: Value =
        serde_json::from_slice(&std::fs::read(can_dir.join("can.gltf")).unwrap()).unwrap();
    let first = json["buffers"][0].clone();
    let mut second = first.clone();
    second["uri"] = "copy%20of%20can.bin".into();
    json["buffers"] = serde_json::json!([first, second]);
    for view in [0, 2] {
        json["bufferViews"][view]["buffer"] = 1.into();
    }
    let path = can_dir.join("two_buffers.gltf");
    std::fs::write(&path, serde_json::to_vec(&json).unwrap()).unwrap();
    let asset = MeshAsset::load(&path).unwrap();
    let out = dir.path().join("merged.glb");
    write_retextured_glb(&asset, &[(0, new_texture(1, false))], &out).unwrap();
    let merged = MeshAsset::load(&out).unwrap();
    assert_eq!(merged.json()["buffers"].as_array().unwrap().len(), 1);
    for v in 0..json["bufferViews"].as_array().unwrap().len() {
        assert_eq!(
            asset.buffer_view(v).unwrap(),
            merged.buffer_view(v).unwrap()
        );
        assert_eq!(merged.json()["bufferViews"][v]["buffer"], 0);
    }
    assert_eq!(
        asset.triangles().unwrap().positions,
        merged.triangles().unwrap().positions
    );
}
