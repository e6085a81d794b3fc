//! Sources: images load by content, and bad inputs (corrupt, truncated, missing, unsupported, hostile) fail
//! with the right error naming the file, never a panic.

mod common;

use common::gltf::{demo_dir, edit_glb, new_texture};
use serde_json::Value;
use texaug_stages::source::NO_SLOT;
use texaug_stages::source::{
    load_image, write_png_atomic, write_retextured_glb, MeshAsset, SourceError,
};

#[test]
fn images_load_by_content_and_png_writes_round_trip() {
    let (dir, sources) = demo_dir();
    for s in sources.iter().filter(|s| s.kind == "image") {
        let img = load_image(&dir.path().join(&s.path)).unwrap_or_else(|e| panic!("{e}"));
        assert!((64..=128).contains(&img.width()) && (64..=128).contains(&img.height()));
    }
    // A JPEG named .png still loads: the format comes from the bytes.
    let disguised = dir.path().join("disguised.png");
    std::fs::copy(dir.path().join("chessboard.jpg"), &disguised).unwrap();
    assert_eq!(load_image(&disguised).unwrap().dimensions(), (96, 96));

    let img = new_texture(2, true);
    let out = dir.path().join("written.png");
    let hash = write_png_atomic(&img, &out).unwrap();
    assert_eq!(load_image(&out).unwrap(), img);
    assert_eq!(hash.len(), 64);
    assert_eq!(write_png_atomic(&img, &out).unwrap(), hash);
}

#[test]
fn corrupt_image_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.png");
    std::fs::write(&path, b"\x89PNG\r\n\x1a\nthis is not a png").unwrap();
    let err = load_image(&path).unwrap_err();
    assert!(matches!(err, SourceError::BadImage { .. }), "{err:?}");
    assert!(err.to_string().contains("broken.png"), "{err}");
    let text = dir.path().join("notes.jpg");
    std::fs::write(&text, "hello").unwrap();
    assert!(matches!(
        load_image(&text),
        Err(SourceError::BadImage { .. })
    ));
}

#[test]
fn truncated_glb_gives_the_offsets() {
    let (dir, _) = demo_dir();
    let bytes = std::fs::read(dir.path().join("mug.glb")).unwrap();
    let path = dir.path().join("cut.glb");
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let err = MeshAsset::load(&path).unwrap_err();
    assert!(matches!(err, SourceError::TruncatedGlb { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("cut.glb") && msg.contains(&format!("{}", bytes.len() / 2)),
        "{msg}"
    );
    std::fs::write(&path, &bytes[..7]).unwrap();
    assert!(matches!(
        MeshAsset::load(&path),
        Err(SourceError::TruncatedGlb { .. })
    ));
}

#[test]
fn missing_external_files_are_named_with_their_resolved_path() {
    let (dir, _) = demo_dir();
    let lonely = tempfile::tempdir().unwrap();
    let gltf = lonely.path().join("can.gltf");
    std::fs::copy(dir.path().join("can/can.gltf"), &gltf).unwrap();
    let err = MeshAsset::load(&gltf).unwrap_err();
    match &err {
        SourceError::MissingExternal { uri, resolved, .. } => {
            assert_eq!(uri, "can.bin");
            assert_eq!(resolved, &lonely.path().join("can.bin"));
        }
        other => panic!("expected MissingExternal, got {other:?}"),
    }
    assert!(err.to_string().contains("can.gltf"));
    std::fs::copy(
        dir.path().join("can/can.bin"),
        lonely.path().join("can.bin"),
    )
    .unwrap();
    match MeshAsset::load(&gltf).unwrap_err() {
        SourceError::MissingExternal { uri, .. } => assert_eq!(uri, "can_label.png"),
        other => panic!("expected MissingExternal, got {other:?}"),
    }
}

#[test]
fn primitive_without_the_uvs_its_texture_needs_is_refused() {
    let (dir, _) = demo_dir();
    let path = dir.path().join("no_uvs.glb");
    edit_glb(&dir.path().join("mug.glb"), &path, |json| {
        json["meshes"][0]["primitives"][0]["attributes"]
            .as_object_mut()
            .unwrap()
            .remove("TEXCOORD_0");
    });
    let err = MeshAsset::load(&path).unwrap_err();
    match &err {
        SourceError::MissingUvs {
            mesh,
            primitive,
            set,
            ..
        } => {
            assert!(mesh.starts_with('0'));
            assert_eq!((*primitive, *set), (0, 0));
        }
        other => panic!("expected MissingUvs, got {other:?}"),
    }
    assert!(err.to_string().contains("no_uvs.glb") && err.to_string().contains("UV"));

    // A factor-only material without UVs is not an error: it just gets no slot.
    edit_glb(&dir.path().join("mug.glb"), &path, |json| {
        json["meshes"][0]["primitives"][1]["attributes"]
            .as_object_mut()
            .unwrap()
            .remove("TEXCOORD_0");
    });
    let asset = MeshAsset::load(&path).unwrap();
    assert_eq!(asset.base_color_slots().len(), 1);
    assert!(asset
        .triangles()
        .unwrap()
        .slot_of_triangle
        .contains(&NO_SLOT));

    // With no UVs anywhere there is nothing to re-texture.
    let ball = MeshAsset::load(&dir.path().join("ball.gltf")).unwrap();
    let mut json = ball.json().clone();
    json["materials"][0]["pbrMetallicRoughness"]
        .as_object_mut()
        .unwrap()
        .remove("baseColorTexture");
    for key in ["TEXCOORD_0", "TEXCOORD_1"] {
        json["meshes"][0]["primitives"][0]["attributes"]
            .as_object_mut()
            .unwrap()
            .remove(key);
    }
    let bare = dir.path().join("bare.gltf");
    std::fs::write(&bare, serde_json::to_vec(&json).unwrap()).unwrap();
    assert!(matches!(
        MeshAsset::load(&bare),
        Err(SourceError::MissingUvs { .. })
    ));
}

#[test]
fn non_triangle_primitives_are_refused() {
    let (dir, _) = demo_dir();
    let path = dir.path().join("lines.glb");
    edit_glb(&dir.path().join("mug.glb"), &path, |json| {
        json["meshes"][0]["primitives"][1]["mode"] = 1.into();
    });
    let err = MeshAsset::load(&path).unwrap_err();
    assert!(
        matches!(err, SourceError::NonTriangle { primitive: 1, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("LINES"), "{err}");
}

#[test]
fn hostile_inputs_fail_without_panicking() {
    let (dir, _) = demo_dir();
    let mug = dir.path().join("mug.glb");
    let bytes = std::fs::read(&mug).unwrap();
    let path = dir.path().join("hostile.glb");
    // Every cut of the file is an error, never a panic.
    for cut in (0..bytes.len()).step_by(61) {
        std::fs::write(&path, &bytes[..cut]).unwrap();
        assert!(MeshAsset::load(&path).is_err(), "cut at {cut} loaded");
    }
    type Edit = fn(&mut Value);
    let edits: [(&str, Edit); 11] = [
        ("huge count", |j| {
            j["accessors"][0]["count"] = (1u64 << 40).into()
        }),
        ("zero stride", |j| {
            j["bufferViews"][0]["byteStride"] = 0.into()
        }),
        // Offsets and strides near usize::MAX must not wrap the bounds check around.
        ("huge stride", |j| {
            j["bufferViews"][0]["byteStride"] = (1u64 << 62).into()
        }),
        ("huge offset", |j| {
            j["accessors"][0]["byteOffset"] = u64::MAX.into()
        }),
        ("view past buffer", |j| {
            j["bufferViews"][1]["byteLength"] = 1_000_000.into()
        }),
        ("bad component type", |j| {
            j["accessors"][0]["componentType"] = 1234.into()
        }),
        ("node cycle", |j| {
            j["nodes"][0]["children"] = serde_json::json!([0])
        }),
        ("missing mesh", |j| j["nodes"][0]["mesh"] = 99.into()),
        ("missing texture", |j| {
            j["materials"][0]["pbrMetallicRoughness"]["baseColorTexture"]["index"] = 42.into()
        }),
        ("index out of range", |j| {
            j["meshes"][0]["primitives"][0]["indices"] = 1.into()
        }),
        ("string where number", |j| {
            j["accessors"][0]["type"] = "VEC9".into()
        }),
    ];
    for (what, edit) in edits {
        edit_glb(&mug, &path, edit);
        let result = MeshAsset::load(&path).and_then(|a| {
            a.triangles()?;
            write_retextured_glb(&a, &[], &dir.path().join("hostile_out.glb"))
        });
        match result {
            Err(e) => assert!(e.to_string().contains("hostile.glb"), "{what}: {e}"),
            // A zero stride is invalid glTF but readable: every vertex repeats the first.
            Ok(_) => assert_eq!(what, "zero stride", "{what} was accepted"),
        }
    }
}
