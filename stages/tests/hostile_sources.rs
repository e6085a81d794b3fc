//! Hostile sources, as users meet them on the internet: glTF URIs that try to read or fetch what is not the
//! asset's (other folders, absolute paths, other schemes, symbolic links, FIFOs, folders), counts and headers that
//! ask for huge allocations, and values that used to panic or poison later stages. Each must fail fast with an
//! error that names the asset, never read what it must not, and never leak a byte of a file into a message or the
//! written GLB.

mod common;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::gltf::demo_dir;
use image::{Rgba, RgbaImage};
use serde_json::{json, Value};
use texaug_stages::source::{
    load_image, load_image_with, write_retextured_glb, MeshAsset, SourceError, SourceLimits,
};

/// What a secret file holds: no error message and no written GLB may ever contain it.
const SECRET: &str = "TEXAUG-TEST-SECRET-4f1d9b27c3e8a065";

/// A folder `root` holding `secret.png` and `asset/`, a copy of the demo can (`can.gltf`, `can.bin`,
/// `can_label.png`). The asset folder is what a .gltf in `asset/` may read from.
struct Scene {
    _root: tempfile::TempDir,
    root: PathBuf,
    asset: PathBuf,
    secret: PathBuf,
}

impl Scene {
    fn new() -> Scene {
        let (demo, _) = demo_dir();
        let root_dir = tempfile::tempdir().unwrap();
        let root = root_dir.path().to_path_buf();
        let asset = root.join("asset");
        std::fs::create_dir(&asset).unwrap();
        for name in ["can.gltf", "can.bin", "can_label.png"] {
            std::fs::copy(demo.path().join("can").join(name), asset.join(name)).unwrap();
        }
        let secret = root.join("secret.png");
        std::fs::write(&secret, SECRET).unwrap();
        Scene {
            _root: root_dir,
            root,
            asset,
            secret,
        }
    }

    fn can_json(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.asset.join("can.gltf")).unwrap()).unwrap()
    }

    /// Writes `json` as `asset/<name>` and returns its path.
    fn write(&self, name: &str, json: &Value) -> PathBuf {
        let path = self.asset.join(name);
        std::fs::write(&path, serde_json::to_vec(json).unwrap()).unwrap();
        path
    }

    /// The can with a normal map (image 1) read from `uri`.
    fn with_normal_map(&self, name: &str, uri: &str) -> PathBuf {
        let mut json = self.can_json();
        json["images"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "normals", "uri": uri}));
        json["textures"]
            .as_array_mut()
            .unwrap()
            .push(json!({"source": 1}));
        json["materials"][0]["normalTexture"] = json!({"index": 1});
        self.write(name, &json)
    }

    /// The can with its buffer read from `uri`.
    fn with_buffer_uri(&self, name: &str, uri: &str) -> PathBuf {
        let mut json = self.can_json();
        json["buffers"][0]["uri"] = uri.into();
        self.write(name, &json)
    }
}

fn assert_no_secret(text: &str) {
    assert!(!text.contains(SECRET), "the secret leaked: {text}");
}

/// Loads `path`, expecting a refused URI; returns the error's message after checking it.
fn expect_refused(path: &Path, uri: &str, reason: &str) -> String {
    let start = Instant::now();
    let err = MeshAsset::load(path).expect_err("a hostile URI loaded");
    let msg = err.to_string();
    assert_no_secret(&msg);
    assert_no_secret(&format!("{err:?}"));
    match &err {
        SourceError::RefusedUri { uri: named, .. } => assert_eq!(named, uri),
        other => panic!("{uri}: expected RefusedUri, got {other:?}"),
    }
    let file = path.file_name().unwrap().to_string_lossy().into_owned();
    assert!(msg.contains(&file), "{msg}");
    assert!(msg.contains("refused"), "{msg}");
    assert!(msg.contains(reason), "{uri}: {msg}");
    assert!(
        msg.contains("self-contained .glb"),
        "no fix given for {uri}: {msg}"
    );
    assert!(start.elapsed() < Duration::from_secs(5));
    msg
}

#[test]
fn uris_climbing_out_of_the_asset_folder_are_refused() {
    let s = Scene::new();
    let msg = expect_refused(
        &s.with_normal_map("up.gltf", "../secret.png"),
        "../secret.png",
        "outside the asset's folder",
    );
    assert!(msg.contains("image 1 (\"normals\")"), "{msg}");
    expect_refused(
        &s.with_buffer_uri("up_buffer.gltf", "../secret.png"),
        "../secret.png",
        "outside the asset's folder",
    );
    // Climbing out and back in is still out: the check is on the components, before any file is touched.
    expect_refused(
        &s.with_normal_map("round.gltf", "../asset/../secret.png"),
        "../asset/../secret.png",
        "outside",
    );
    // Backslashes are separators too.
    expect_refused(
        &s.with_normal_map("backslash.gltf", "..\\secret.png"),
        "..\\secret.png",
        "outside",
    );
    // `..` that stays inside the folder is fine.
    std::fs::create_dir(s.asset.join("maps")).unwrap();
    std::fs::copy(s.asset.join("can_label.png"), s.asset.join("normals.png")).unwrap();
    let inside = s.with_normal_map("inside.gltf", "maps/../normals.png");
    MeshAsset::load(&inside).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn percent_encoded_climbs_are_decoded_first_and_refused() {
    let s = Scene::new();
    for uri in [
        "%2e%2e/secret.png",
        "%2E%2E%2Fsecret.png",
        "maps/..%2F..%2Fsecret.png",
        "%2e%2e%5csecret.png",
    ] {
        expect_refused(
            &s.with_normal_map("encoded.gltf", uri),
            uri,
            "outside the asset's folder",
        );
    }
    // Percent-encoded absolute paths and schemes are refused too.
    let abs = format!("%2F{}", &s.secret.to_string_lossy()[1..]);
    expect_refused(&s.with_normal_map("enc_abs.gltf", &abs), &abs, "absolute");
    expect_refused(
        &s.with_normal_map("enc_scheme.gltf", "file%3A///etc/passwd"),
        "file%3A///etc/passwd",
        "file: scheme",
    );
}

#[test]
fn absolute_paths_are_refused() {
    let s = Scene::new();
    let abs = s.secret.to_string_lossy().into_owned();
    assert!(abs.starts_with('/'));
    expect_refused(&s.with_normal_map("abs.gltf", &abs), &abs, "absolute path");
    expect_refused(
        &s.with_buffer_uri("abs_buffer.gltf", &abs),
        &abs,
        "absolute path",
    );
    expect_refused(
        &s.with_normal_map("unc.gltf", "\\\\server\\share\\secret.png"),
        "\\\\server\\share\\secret.png",
        "UNC",
    );
    for uri in ["C:\\secret.png", "C:/secret.png"] {
        expect_refused(&s.with_normal_map("drive.gltf", uri), uri, "Windows path");
    }
}

#[test]
fn other_schemes_are_refused_and_nothing_is_fetched() {
    let s = Scene::new();
    let file_uri = format!("file://{}", s.secret.display());
    expect_refused(
        &s.with_normal_map("file.gltf", &file_uri),
        &file_uri,
        "file: scheme",
    );
    expect_refused(
        &s.with_buffer_uri("file_buffer.gltf", &file_uri),
        &file_uri,
        "file: scheme",
    );
    // A listening socket proves that no connection is even attempted.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    for uri in [
        format!("http://127.0.0.1:{port}/x.png"),
        format!("https://127.0.0.1:{port}/x.png"),
        "http://127.0.0.1:9/x.png".to_string(),
        "HTTP://127.0.0.1:9/x.png".to_string(),
        "ftp://127.0.0.1/x.png".to_string(),
    ] {
        let msg = expect_refused(&s.with_normal_map("http.gltf", &uri), &uri, "URL");
        assert!(msg.contains("never fetches"), "{msg}");
        expect_refused(&s.with_buffer_uri("http_buffer.gltf", &uri), &uri, "URL");
    }
    match listener.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("texaug connected to the URL: {other:?}"),
    }
    for uri in ["ssh:x.png", "blob:x", "a+b.c-d:x.png"] {
        expect_refused(&s.with_normal_map("scheme.gltf", uri), uri, "scheme");
    }
}

#[cfg(unix)]
#[test]
fn symbolic_links_leading_out_of_the_folder_are_refused() {
    let s = Scene::new();
    std::os::unix::fs::symlink(&s.secret, s.asset.join("innocent.png")).unwrap();
    expect_refused(
        &s.with_normal_map("link.gltf", "innocent.png"),
        "innocent.png",
        "symbolic link",
    );
    // A linked folder leading out is refused the same way.
    std::os::unix::fs::symlink(&s.root, s.asset.join("up")).unwrap();
    expect_refused(
        &s.with_buffer_uri("link_dir.gltf", "up/secret.png"),
        "up/secret.png",
        "symbolic link",
    );
    // A link that stays inside the folder is followed.
    std::os::unix::fs::symlink(s.asset.join("can.bin"), s.asset.join("alias.bin")).unwrap();
    MeshAsset::load(&s.with_buffer_uri("alias.gltf", "alias.bin"))
        .unwrap_or_else(|e| panic!("{e}"));
}

#[cfg(unix)]
#[test]
fn a_fifo_is_refused_without_being_opened() {
    let s = Scene::new();
    let fifo = s.asset.join("pipe.png");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    let paths = [
        s.with_normal_map("fifo.gltf", "pipe.png"),
        s.with_buffer_uri("fifo_buffer.gltf", "pipe.png"),
    ];
    // Opening a FIFO for reading blocks until a writer comes: run the loads on a thread and give up after a while.
    let (tx, rx) = mpsc::channel();
    let fifo_image = fifo.clone();
    std::thread::spawn(move || {
        let results: Vec<Result<MeshAsset, SourceError>> =
            paths.iter().map(|p| MeshAsset::load(p)).collect();
        let as_mesh = MeshAsset::load(&fifo_image).map(|_| ());
        let as_image = load_image(&fifo_image).map(|_| ());
        tx.send((results, as_mesh, as_image)).ok();
    });
    let Ok((results, as_mesh, as_image)) = rx.recv_timeout(Duration::from_secs(20)) else {
        // Unblock the reader so the process can exit, then fail.
        let _ = std::fs::OpenOptions::new().write(true).open(&fifo);
        panic!("loading blocked on the FIFO: it was opened");
    };
    for result in results {
        let err = result.expect_err("a FIFO loaded");
        assert!(matches!(err, SourceError::RefusedUri { .. }), "{err:?}");
        assert!(err.to_string().contains("FIFO"), "{err}");
    }
    // A FIFO named as the source itself is refused the same way.
    for err in [as_mesh.unwrap_err(), as_image.unwrap_err()] {
        assert!(matches!(err, SourceError::NotAFile { .. }), "{err:?}");
        assert!(err.to_string().contains("FIFO") && err.to_string().contains("pipe.png"));
    }
}

#[test]
fn a_directory_as_uri_is_refused() {
    let s = Scene::new();
    std::fs::create_dir(s.asset.join("textures")).unwrap();
    for (name, uri) in [("dir.gltf", "textures"), ("dir2.gltf", "textures/")] {
        let err = MeshAsset::load(&s.with_normal_map(name, uri)).unwrap_err();
        assert!(matches!(err, SourceError::RefusedUri { .. }), "{err:?}");
        assert!(err.to_string().contains("directory"), "{err}");
    }
    // "." and "" name the folder itself.
    for uri in [".", "./", ""] {
        let err = MeshAsset::load(&s.with_buffer_uri("dot.gltf", uri)).unwrap_err();
        assert!(
            matches!(err, SourceError::RefusedUri { .. }),
            "{uri:?}: {err:?}"
        );
    }
    // The source itself a directory.
    let err = MeshAsset::load(&s.asset).unwrap_err();
    assert!(matches!(err, SourceError::NotAFile { .. }), "{err:?}");
    let err = load_image(&s.asset).unwrap_err();
    assert!(matches!(err, SourceError::NotAFile { .. }), "{err:?}");
}

#[test]
fn maps_read_from_the_folder_are_embedded_and_nothing_else() {
    let s = Scene::new();
    // A legitimate normal map next to the .gltf is embedded in the written GLB; the secret never is.
    let normals = RgbaImage::from_pixel(4, 4, Rgba([128, 128, 255, 255]));
    normals.save(s.asset.join("normals.png")).unwrap();
    let path = s.with_normal_map("good.gltf", "normals.png");
    let asset = MeshAsset::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let out = s.root.join("out.glb");
    write_retextured_glb(&asset, &[(0, RgbaImage::new(8, 8))], &out).unwrap();
    let glb = std::fs::read(&out).unwrap();
    let normal_bytes = std::fs::read(s.asset.join("normals.png")).unwrap();
    assert!(glb
        .windows(normal_bytes.len())
        .any(|w| w == normal_bytes.as_slice()));
    assert!(!glb.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()));
    let back = MeshAsset::load(&out).unwrap();
    assert!(back.json()["images"][1].get("uri").is_none());
    assert_eq!(back.image_bytes(1), Some(normal_bytes.as_slice()));

    // The same asset with its normal, occlusion or emissive map pointing at the secret does not load at all, so
    // nothing of it can be written.
    let abs = s.secret.to_string_lossy().into_owned();
    for key in ["normalTexture", "occlusionTexture", "emissiveTexture"] {
        for uri in ["../secret.png", abs.as_str()] {
            let mut json = s.can_json();
            json["images"]
                .as_array_mut()
                .unwrap()
                .push(json!({"uri": uri}));
            json["textures"]
                .as_array_mut()
                .unwrap()
                .push(json!({"source": 1}));
            json["materials"][0][key] = json!({"index": 1});
            let path = s.write("leaky.gltf", &json);
            let err = MeshAsset::load(&path).unwrap_err();
            assert!(matches!(err, SourceError::RefusedUri { .. }), "{err:?}");
            assert_no_secret(&err.to_string());
        }
    }
}

#[test]
fn an_accessor_of_zeros_with_a_huge_count_fails_fast() {
    let s = Scene::new();
    let mut json = s.can_json();
    // 2^28 VEC3 zeros: 6 GiB as f64 if it were allocated.
    json["accessors"]
        .as_array_mut()
        .unwrap()
        .push(json!({"componentType": 5126, "count": 1u64 << 28, "type": "VEC3"}));
    json["meshes"][0]["primitives"][0]["attributes"]["POSITION"] = 4.into();
    let path = s.write("zeros.gltf", &json);
    let start = Instant::now();
    let err = MeshAsset::load(&path).unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "took {:?}",
        start.elapsed()
    );
    match &err {
        SourceError::OverLimit { limit, .. } => assert_eq!(*limit, "max_accessor_elements"),
        other => panic!("expected OverLimit, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("zeros.gltf")
            && msg.contains("accessor 4")
            && msg.contains(&(1u64 << 28).to_string())
            && msg.contains("no bufferView"),
        "{msg}"
    );

    // A sparse accessor over zeros is capped the same way.
    let mut json = s.can_json();
    json["accessors"].as_array_mut().unwrap().push(json!({
        "componentType": 5126, "count": 1u64 << 28, "type": "VEC3",
        "sparse": {"count": 1, "indices": {"bufferView": 3, "componentType": 5123}, "values": {"bufferView": 0}}
    }));
    let err = MeshAsset::load(&s.write("sparse.gltf", &json)).unwrap_err();
    assert!(matches!(err, SourceError::OverLimit { .. }), "{err:?}");

    // Within a raised limit a legal zeros accessor reads as zeros.
    let mut json = s.can_json();
    json["accessors"]
        .as_array_mut()
        .unwrap()
        .push(json!({"componentType": 5126, "count": 441, "type": "VEC3"}));
    json["meshes"][0]["primitives"][0]["attributes"]["NORMAL"] = 4.into();
    let asset = MeshAsset::load(&s.write("zero_normals.gltf", &json)).unwrap();
    let tris = asset.triangles().unwrap();
    assert!(tris.normals.iter().all(|n| n.iter().all(|c| c.is_finite())));
}

#[test]
fn an_accessor_larger_than_its_buffer_view_is_refused_before_reading() {
    let s = Scene::new();
    for (what, count, sparse_count) in [("count", 1u64 << 25, None), ("sparse", 441, Some(400))] {
        let mut json = s.can_json();
        json["accessors"][0]["count"] = count.into();
        if let Some(n) = sparse_count {
            // 400 sparse indices (u16) cannot fit in the 2880-byte view 3 past its start at byte 2000.
            json["accessors"][0]["sparse"] = json!({
                "count": n,
                "indices": {"bufferView": 3, "byteOffset": 2400, "componentType": 5123},
                "values": {"bufferView": 0}
            });
        }
        let path = s.write("past_view.gltf", &json);
        let start = Instant::now();
        let err = MeshAsset::load(&path).unwrap_err();
        assert!(start.elapsed() < Duration::from_secs(2));
        assert!(
            matches!(err, SourceError::BadGltf { .. }),
            "{what}: {err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("past_view.gltf")
                && msg.contains("accessor 0")
                && msg.contains("bufferView"),
            "{what}: {msg}"
        );
    }
    // byteOffset + byteLength past the end of the buffer, and overflowing.
    for (offset, length) in [(16000u64, 5000u64), (u64::MAX - 10, 100)] {
        let mut json = s.can_json();
        json["bufferViews"][0]["byteOffset"] = offset.into();
        json["bufferViews"][0]["byteLength"] = length.into();
        let err = MeshAsset::load(&s.write("view_past_buffer.gltf", &json)).unwrap_err();
        assert!(
            matches!(err, SourceError::BadGltf { .. }) && err.to_string().contains("bufferView 0"),
            "{err:?}"
        );
    }
    // A stride smaller than the element, and float indices.
    let mut json = s.can_json();
    json["bufferViews"][0]["byteStride"] = 4.into();
    let err = MeshAsset::load(&s.write("stride.gltf", &json)).unwrap_err();
    assert!(err.to_string().contains("byteStride 4"), "{err}");
    let mut json = s.can_json();
    json["accessors"][3]["componentType"] = 5126.into();
    json["accessors"][3]["count"] = 720.into();
    let asset = MeshAsset::load(&s.write("float_indices.gltf", &json)).unwrap();
    let err = asset.triangles().unwrap_err();
    assert!(err.to_string().contains("componentType 5126"), "{err}");
}

#[test]
fn an_image_with_both_uri_and_a_missing_buffer_view_does_not_panic() {
    let (dir, _) = demo_dir();
    let s = Scene::new();
    let mut cases = Vec::new();
    // A .gltf: the image keeps its uri and gains an out-of-range bufferView.
    let mut json = s.can_json();
    json["images"][0]["bufferView"] = 99.into();
    cases.push(s.write("both.gltf", &json));
    // A .glb: the base-color image keeps its bufferView (out of range) and gains a uri.
    let glb = s.root.join("both.glb");
    common::gltf::edit_glb(&dir.path().join("mug.glb"), &glb, |j| {
        j["images"][0]["uri"] = "can_label.png".into();
        j["images"][0]["bufferView"] = 99.into();
    });
    cases.push(glb);
    for path in cases {
        let out = s.root.join("both_out.glb");
        let result = std::panic::catch_unwind(|| {
            let asset = MeshAsset::load(&path)?;
            let slots: Vec<(usize, RgbaImage)> = asset
                .base_color_slots()
                .iter()
                .map(|s| (s.slot, RgbaImage::new(8, 8)))
                .collect();
            write_retextured_glb(&asset, &slots, &out)
        })
        .unwrap_or_else(|_| panic!("{}: panicked", path.display()));
        match result {
            Err(e) => {
                let msg = e.to_string();
                assert!(
                    msg.contains(&*path.file_name().unwrap().to_string_lossy())
                        && msg.contains("uri")
                        && msg.contains("bufferView"),
                    "{msg}"
                );
            }
            // Were it accepted, the GLB written must read back.
            Ok(_) => {
                MeshAsset::load(&out).unwrap();
            }
        }
    }
}

/// A PNG whose header claims `width`×`height` with a token of image data: a decompression bomb's first bytes.
fn png_header(width: u32, height: u32) -> Vec<u8> {
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in bytes {
            crc ^= b as u32;
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend((data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend(data);
        out.extend(&body);
        out.extend(crc32(&body).to_be_bytes());
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend(width.to_be_bytes());
    ihdr.extend(height.to_be_bytes());
    ihdr.extend([8, 6, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    // zlib: a stored, empty, final deflate block.
    chunk(
        &mut out,
        b"IDAT",
        &[
            0x78, 0x01, 0x01, 0x00, 0x00, 0xff, 0xff, 0x00, 0x00, 0x00, 0x01,
        ],
    );
    chunk(&mut out, b"IEND", &[]);
    out
}

#[test]
fn image_sources_are_capped_in_pixels_before_decoding() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = dir.path().join("tiny.png");
    RgbaImage::from_pixel(1, 1, Rgba([1, 2, 3, 255]))
        .save(&tiny)
        .unwrap();
    assert_eq!(load_image(&tiny).unwrap().dimensions(), (1, 1));
    let wide = dir.path().join("wide.png");
    RgbaImage::from_pixel(8192, 2, Rgba([9, 8, 7, 255]))
        .save(&wide)
        .unwrap();
    assert_eq!(load_image(&wide).unwrap().dimensions(), (8192, 2));

    let bomb = dir.path().join("bomb.png");
    std::fs::write(&bomb, png_header(100_000, 100_000)).unwrap();
    let start = Instant::now();
    let err = load_image(&bomb).unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(2));
    match &err {
        SourceError::OverLimit { limit, .. } => assert_eq!(*limit, "max_image_pixels"),
        other => panic!("expected OverLimit, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("bomb.png") && msg.contains("100000×100000") && msg.contains("not decoded"),
        "{msg}"
    );

    // Callers tune the limits: fewer pixels, a smaller file.
    let mut limits = SourceLimits::default();
    limits.max_image_pixels = 1000;
    let err = load_image_with(&wide, &limits).unwrap_err();
    assert!(
        matches!(
            err,
            SourceError::OverLimit {
                limit: "max_image_pixels",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        load_image_with(&tiny, &limits).unwrap().dimensions(),
        (1, 1)
    );
    let mut limits = SourceLimits::default();
    limits.max_file_bytes = 10;
    let err = load_image_with(&tiny, &limits).unwrap_err();
    assert!(
        matches!(
            err,
            SourceError::OverLimit {
                limit: "max_file_bytes",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn a_base_color_bomb_is_refused_before_decoding() {
    let s = Scene::new();
    std::fs::write(s.asset.join("bomb.png"), png_header(100_000, 100_000)).unwrap();
    let mut json = s.can_json();
    json["images"][0]["uri"] = "bomb.png".into();
    let path = s.write("bomb.gltf", &json);
    let start = Instant::now();
    let err = MeshAsset::load(&path).unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(2));
    assert!(
        matches!(
            err,
            SourceError::OverLimit {
                limit: "max_image_pixels",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("bomb.gltf") && err.to_string().contains("image 0"));
}

#[test]
fn files_and_assets_over_the_byte_limits_are_refused() {
    let s = Scene::new();
    let path = s.asset.join("can.gltf");
    // can.bin is 16992 bytes.
    let mut limits = SourceLimits::default();
    limits.max_file_bytes = 10_000;
    let err = MeshAsset::load_with(&path, &limits).unwrap_err();
    match &err {
        SourceError::OverLimit { limit, what, .. } => {
            assert_eq!(*limit, "max_file_bytes");
            assert!(
                what.contains("buffer 0") && what.contains("can.bin"),
                "{what}"
            );
        }
        other => panic!("{other:?}"),
    }
    limits.max_file_bytes = 100;
    let err = MeshAsset::load_with(&path, &limits).unwrap_err();
    assert!(err.to_string().contains("the asset file"), "{err}");
    // The same external file named by a thousand buffers counts a thousand times.
    let mut json = s.can_json();
    let buffer = json["buffers"][0].clone();
    json["buffers"] = Value::Array(vec![buffer; 1000]);
    let err = MeshAsset::load(&s.write("many.gltf", &json))
        .map(drop)
        .and_then(|_| {
            let mut limits = SourceLimits::default();
            limits.max_asset_bytes = 1 << 20;
            MeshAsset::load_with(&s.asset.join("many.gltf"), &limits).map(drop)
        })
        .unwrap_err();
    assert!(
        matches!(
            err,
            SourceError::OverLimit {
                limit: "max_asset_bytes",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn non_finite_positions_and_uvs_are_refused_and_nan_normals_repaired() {
    let s = Scene::new();
    let bin = std::fs::read(s.asset.join("can.bin")).unwrap();
    // POSITION is view 0 (offset 0), NORMAL view 1 (5292), TEXCOORD_0 view 2 (10584); all f32.
    for (name, offset, value, expect) in [
        ("nan_position", 4, f32::NAN, Some("position")),
        ("inf_position", 0, f32::INFINITY, Some("position")),
        ("nan_uv", 10584 + 8, f32::NAN, Some("texture coordinate")),
        ("nan_normal", 5292, f32::NAN, None),
    ] {
        let mut bytes = bin.clone();
        bytes[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
        std::fs::write(s.asset.join(format!("{name}.bin")), &bytes).unwrap();
        let path = s.with_buffer_uri(&format!("{name}.gltf"), &format!("{name}.bin"));
        let asset = MeshAsset::load(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        let result = asset.triangles();
        match expect {
            Some(what) => {
                let err = result.unwrap_err();
                let msg = err.to_string();
                assert!(
                    matches!(err, SourceError::BadGltf { .. }),
                    "{name}: {err:?}"
                );
                assert!(
                    msg.contains(&format!("{name}.gltf"))
                        && msg.contains(what)
                        && msg.contains("not a finite number"),
                    "{name}: {msg}"
                );
            }
            None => {
                let tris = result.unwrap_or_else(|e| panic!("{name}: {e}"));
                assert!(tris.normals.iter().all(|n| n.iter().all(|c| c.is_finite())));
            }
        }
    }
    // A NaN node transform is caught the same way.
    let mut json = s.can_json();
    json["nodes"][0]["scale"] = json!([1.0, 1e300, 1.0]);
    let asset = MeshAsset::load(&s.write("huge_scale.gltf", &json)).unwrap();
    assert!(asset
        .triangles()
        .unwrap_err()
        .to_string()
        .contains("not a finite number"));
}

#[test]
fn zero_area_triangles_are_kept_without_non_finite_normals() {
    let s = Scene::new();
    let mut json = s.can_json();
    // Every triangle degenerate: all indices 0 (the index view holds u16s).
    let mut bin = std::fs::read(s.asset.join("can.bin")).unwrap();
    for b in &mut bin[14112..14112 + 2880] {
        *b = 0;
    }
    std::fs::write(s.asset.join("flat.bin"), &bin).unwrap();
    json["buffers"][0]["uri"] = "flat.bin".into();
    json["meshes"][0]["primitives"][0]["attributes"]
        .as_object_mut()
        .unwrap()
        .remove("NORMAL");
    let asset = MeshAsset::load(&s.write("flat.gltf", &json)).unwrap();
    let tris = asset.triangles().unwrap();
    assert_eq!(tris.indices.len(), 480);
    assert!(tris.normals.iter().all(|n| n.iter().all(|c| c.is_finite())));
}

#[test]
fn the_repository_demo_gltf_with_external_files_still_loads() {
    let root = common::gltf::repo_root().join("manifests/demo");
    for name in ["ball.gltf", "can/can.gltf", "mug.glb", "crate.glb"] {
        let asset = MeshAsset::load(&root.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        asset.triangles().unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}
