//! `texaug_stages::job` as a Rust user calls it, without the pipeline: a loaded tiny model re-textures a demo mesh
//! (style and depth stages) and an image, the sample is written, and a failed write leaves nothing.

mod common;

use std::path::Path;

use common::fixtures::fixtures;
use common::gltf::demo_dir;
use tch::{Device, Kind};
use texaug_stages::diffusion::img2img::StableDiffusion;
use texaug_stages::diffusion::model_dir::ModelSource;
use texaug_stages::job::{
    prepare, retexture, AssetRef, DepthSettings, DepthSource, DepthStage, JobError, JobSettings,
    ModelSize, Retextured, Stage,
};
use texaug_stages::source::{MeshAsset, SourceKind};

fn load(model: &str) -> StableDiffusion {
    let source = ModelSource::Dir(fixtures().join("models").join(model));
    StableDiffusion::load(&source, Device::Cpu, Kind::Float, None)
        .unwrap_or_else(|e| panic!("{model}: {e}"))
}

fn settings(seed: u64) -> JobSettings {
    JobSettings {
        prompt: "a mug carved from oak".into(),
        negative_prompt: String::new(),
        strength: 0.75,
        guidance: 7.5,
        steps: 4,
        seed,
        scheduler: None,
        size: ModelSize::square(64),
        adapters: 0,
        xl: Default::default(),
        denoising_start: None,
    }
}

fn mesh(path: &Path) -> AssetRef<'_> {
    AssetRef {
        id: "mug",
        path,
        kind: SourceKind::Mesh,
        depth: None,
        mask: None,
    }
}

#[test]
fn a_mesh_is_re_textured_through_the_public_api() {
    let (dir, sources) = demo_dir();
    let mug = sources.iter().find(|s| s.id == "mug").expect("demo mug");
    let path = dir.path().join(&mug.path);
    let asset = mesh(&path);
    let original = MeshAsset::load(asset.path).expect("demo mug loads");
    let sd = load("sd1-tiny");

    let done = retexture(&sd, &asset, &Stage::Style, &settings(7)).expect("style job");
    let Retextured::Mesh(m) = &done else {
        panic!("a mesh job made an image")
    };
    let slots = original.base_color_slots();
    assert_eq!(m.textures.len(), slots.len());
    for ((slot, texture), old) in m.textures.iter().zip(&slots) {
        assert_eq!(*slot, old.slot);
        assert_eq!(texture.dimensions(), old.image.dimensions());
        assert_ne!(texture, &old.image, "slot {slot} was not re-textured");
    }

    let out = dir.path().join("out/mug");
    let written = done.write(&out).expect("write");
    assert_eq!(written.asset.as_deref(), Some("asset.glb"));
    assert_eq!(written.textures.len(), slots.len());
    assert_eq!(written.depth_source, None);
    let back = MeshAsset::load(&out.join("asset.glb")).expect("the written GLB loads");
    assert_eq!(back.base_color_slots().len(), slots.len());
    let glb = std::fs::read(out.join("asset.glb")).unwrap();
    assert_eq!(written.sha256, texaug_stages::files::sha256_hex(&glb));

    // Same seed, same bytes; another seed, other bytes.
    let again = retexture(&sd, &asset, &Stage::Style, &settings(7))
        .unwrap()
        .write(&dir.path().join("out/again"))
        .unwrap();
    assert_eq!(again.sha256, written.sha256);
    let other = retexture(&sd, &asset, &Stage::Style, &settings(8))
        .unwrap()
        .write(&dir.path().join("out/other"))
        .unwrap();
    assert_ne!(other.sha256, written.sha256);
}

#[test]
fn the_depth_stage_paints_views_and_bakes_them() {
    let (dir, sources) = demo_dir();
    let mug = sources.iter().find(|s| s.id == "mug").expect("demo mug");
    let path = dir.path().join(&mug.path);
    let asset = mesh(&path);
    let sd = load("sd2-depth-tiny");
    let stage = Stage::Depth(DepthStage {
        settings: DepthSettings {
            azimuths: 4,
            ..DepthSettings::default()
        },
        estimator: None,
    });
    let prepared = prepare(&asset, &stage, &settings(3)).expect("prepare");
    let slots = MeshAsset::load(asset.path)
        .unwrap()
        .base_color_slots()
        .len();
    // Four azimuths, top and bottom, and one UV-space request per slot, all run together.
    assert_eq!(prepared.requests.len(), 6 + slots);
    assert!(prepared.one_batch);
    assert!(prepared.requests[0]
        .prompt
        .ends_with("view of a mug carved from oak"));

    let written = retexture(&sd, &asset, &stage, &settings(3))
        .expect("depth job")
        .write(&dir.path().join("out"))
        .expect("write");
    assert_eq!(written.views, Some(6));
    assert_eq!(written.depth_source, Some(DepthSource::Mesh));
    let coverage = written.coverage.expect("coverage");
    assert!(coverage > 0.5 && coverage <= 1.0, "coverage {coverage}");
    let views = std::fs::read_to_string(dir.path().join("out/views.txt")).unwrap();
    assert_eq!(views.trim().split(',').count(), 6);
}

#[test]
fn an_image_keeps_its_size_and_alpha_and_a_failed_write_leaves_nothing() {
    let (dir, sources) = demo_dir();
    let apple = sources
        .iter()
        .find(|s| s.id == "apple")
        .expect("demo apple");
    let path = dir.path().join(&apple.path);
    let asset = AssetRef {
        id: "apple",
        path: &path,
        kind: SourceKind::Image,
        depth: None,
        mask: None,
    };
    let original = image::open(&path).unwrap().to_rgba8();
    let sd = load("sd1-tiny");
    let done = retexture(&sd, &asset, &Stage::Style, &settings(1)).expect("style job");
    let Retextured::Image { image, .. } = &done else {
        panic!("an image job made a mesh")
    };
    assert_eq!(image.dimensions(), original.dimensions());
    for (a, b) in image.pixels().zip(original.pixels()) {
        assert_eq!(a.0[3], b.0[3], "alpha is the source's");
    }

    // A sample folder that cannot be created (a file is in the way): an error, and no folder.
    let blocker = dir.path().join("blocker");
    std::fs::write(&blocker, b"a file").unwrap();
    let err = done.write(&blocker.join("sample")).unwrap_err();
    assert!(matches!(err, JobError::CreateDir { .. }), "{err}");
    assert!(!blocker.join("sample").exists());

    // An image without depth cannot run the depth stage: the error names the source and the fix.
    let err = prepare(&asset, &Stage::Depth(DepthStage::default()), &settings(1))
        .err()
        .expect("no depth");
    let msg = err.to_string();
    assert!(msg.contains("apple") && msg.contains("estimator"), "{msg}");
}

/// A mask on a mesh is refused before anything loads; on an image it becomes the request's inpainting condition
/// at the model's size, and the job runs on an inpainting model.
#[test]
fn a_mask_inpaints_an_image_and_is_refused_on_a_mesh() {
    use texaug_stages::diffusion::request::Condition;
    let dir = tempfile::tempdir().expect("tempdir");
    let mask = dir.path().join("mask.png");
    image::GrayImage::from_fn(40, 24, |x, _| image::Luma([if x < 20 { 255 } else { 0 }]))
        .save(&mask)
        .expect("mask");
    let glb = dir.path().join("m.glb");
    let asset = AssetRef {
        mask: Some(&mask),
        ..mesh(&glb)
    };
    let e = prepare(&asset, &Stage::Style, &settings(1))
        .err()
        .expect("refused");
    assert!(matches!(e, JobError::MaskOnMesh { .. }), "{e}");

    let img = dir.path().join("in.png");
    image::RgbaImage::from_pixel(40, 24, image::Rgba([200, 120, 40, 255]))
        .save(&img)
        .expect("image");
    let asset = AssetRef {
        id: "in",
        path: &img,
        kind: SourceKind::Image,
        depth: None,
        mask: Some(&mask),
    };
    let job = prepare(&asset, &Stage::Style, &settings(1)).expect("prepared");
    let Condition::Inpaint(m) = &job.requests[0].condition else {
        panic!("the mask did not make an inpainting request");
    };
    assert_eq!(m.dimensions(), (64, 64));
    assert!(m.get_pixel(2, 30).0[0] > 200 && m.get_pixel(60, 30).0[0] < 50);
    let done = retexture(
        &load("sd1-inpaint-tiny"),
        &asset,
        &Stage::Style,
        &settings(1),
    )
    .expect("inpainted");
    let Retextured::Image { image, .. } = done else {
        panic!("an image job made a mesh")
    };
    assert_eq!(image.dimensions(), (40, 24));
}

/// A 16:9 image runs at the model's long side with its aspect and comes back at its own size; `crop` makes the
/// centred square; its depth is framed with it, and a depth file of another shape is refused by name.
#[test]
fn a_wide_image_keeps_its_aspect_and_its_depth_must_match_it() {
    use texaug_stages::diffusion::request::Condition;
    use texaug_stages::job::Fit;
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("wide.png");
    image::RgbaImage::from_fn(160, 90, |x, y| image::Rgba([x as u8, y as u8, 90, 255]))
        .save(&img)
        .expect("image");
    let depth = dir.path().join("wide_depth.png");
    image::GrayImage::from_fn(80, 45, |x, _| image::Luma([x as u8]))
        .save(&depth)
        .expect("depth");
    let square_depth = dir.path().join("square_depth.png");
    image::GrayImage::from_fn(45, 45, |x, _| image::Luma([x as u8]))
        .save(&square_depth)
        .expect("depth");
    let fitted = |fit| JobSettings {
        size: ModelSize::Sized { side: 64, fit },
        ..settings(5)
    };
    let asset = AssetRef {
        id: "wide",
        path: &img,
        kind: SourceKind::Image,
        depth: None,
        mask: None,
    };

    let job = prepare(&asset, &Stage::Style, &fitted(Fit::Keep)).expect("prepared");
    // 64 × 36, the short side rounded to a multiple of 8.
    assert_eq!(job.requests[0].image.dimensions(), (64, 40));
    let sd = load("sd1-tiny");
    for (fit, size) in [
        (Fit::Keep, (160, 90)),
        (Fit::Crop, (90, 90)),
        (Fit::Pad, (160, 90)),
    ] {
        let Retextured::Image { image, .. } =
            retexture(&sd, &asset, &Stage::Style, &fitted(fit)).expect("style job")
        else {
            panic!("an image job made a mesh")
        };
        assert_eq!(image.dimensions(), size, "{fit:?}");
    }

    let with_depth = |path| AssetRef {
        depth: Some(path),
        ..asset
    };
    let depth_stage = Stage::Depth(DepthStage::default());
    let job = prepare(&with_depth(&depth), &depth_stage, &fitted(Fit::Keep)).expect("prepared");
    assert_eq!(job.requests[0].image.dimensions(), (64, 40));
    let Condition::Depth(map) = &job.requests[0].condition else {
        panic!("no depth condition")
    };
    assert_eq!((map.width, map.height), (80, 45));
    let job = prepare(&with_depth(&depth), &depth_stage, &fitted(Fit::Crop)).expect("prepared");
    let Condition::Depth(map) = &job.requests[0].condition else {
        panic!("no depth condition")
    };
    assert_eq!((map.width, map.height), (45, 45));
    let err = prepare(&with_depth(&square_depth), &depth_stage, &fitted(Fit::Keep))
        .err()
        .expect("a square depth for a wide image");
    let msg = err.to_string();
    assert!(
        msg.contains("square_depth.png") && msg.contains("45×45") && msg.contains("160×90"),
        "{msg}"
    );
}
