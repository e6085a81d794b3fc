//! Views denoised in step (the depth stage's `sync`) hold together once baked, measured by `view_consistency_db`:
//! with a stand-in denoiser whose views disagree by construction, and with the tiny depth model, on every demo mesh.

mod common;

use std::path::Path;

use common::fixtures::fixtures;
use common::gltf::demo_dir;
use image::imageops::{resize, FilterType};
use image::{Rgb, RgbImage};
use tch::{Device, Kind};
use texaug_stages::diffusion::img2img::StableDiffusion;
use texaug_stages::diffusion::model_dir::ModelSource;
use texaug_stages::diffusion::request::Img2ImgRequest;
use texaug_stages::diffusion::view_sync::sync_groups;
use texaug_stages::job::sync_map::LATENT_FACTOR;
use texaug_stages::job::{
    prepare, retexture, AssetRef, DepthSettings, DepthStage, JobSettings, ModelSize, Retextured,
    Stage,
};
use texaug_stages::source::SourceKind;

fn settings(size: u32) -> JobSettings {
    JobSettings {
        prompt: "a painted object".into(),
        negative_prompt: String::new(),
        strength: 0.75,
        guidance: 7.5,
        steps: 8,
        seed: 11,
        scheduler: None,
        size: ModelSize::square(size),
        adapters: 0,
        xl: Default::default(),
        denoising_start: None,
    }
}

fn depth_stage(sync: bool) -> Stage<'static> {
    Stage::Depth(DepthStage {
        settings: DepthSettings {
            azimuths: 6,
            sync,
            ..DepthSettings::default()
        },
        estimator: None,
    })
}

fn mesh(id: &str, path: &Path) -> AssetRef<'static> {
    AssetRef {
        id: Box::leak(id.to_string().into_boxed_str()),
        path: Box::leak(path.to_path_buf().into_boxed_path()),
        kind: SourceKind::Mesh,
        depth: None,
        mask: None,
    }
}

fn demo_meshes() -> (tempfile::TempDir, Vec<AssetRef<'static>>) {
    let (dir, sources) = demo_dir();
    let meshes = sources
        .iter()
        .filter(|s| s.kind == "mesh")
        .map(|s| mesh(&s.id, &dir.path().join(&s.path)))
        .collect();
    (dir, meshes)
}

fn consistency(done: Retextured) -> f64 {
    match done {
        Retextured::Mesh(m) => m
            .view_consistency_db
            .expect("a depth mesh sample has a score"),
        Retextured::Image { .. } => panic!("a mesh job made an image"),
    }
}

/// A view's colour in the stand-in: every view paints the whole object its own colour.
fn view_colour(view: usize) -> [f32; 3] {
    use std::f32::consts::TAU;
    let hue = view as f32 * 0.61803 * TAU;
    std::array::from_fn(|c| 0.5 + 0.45 * (hue + c as f32 * TAU / 3.0).cos())
}

/// Stands in for the denoiser on a job's requests: on a latent grid (the image averaged over 8×8 blocks) every
/// step pulls each view's object pixels halfway to the view's own colour, so views disagree by construction (the
/// background stays the render's grey in all of them); with `blend` the views' sync map blends them after every
/// step, as the engine does. Latents come back upsampled bilinearly; requests
/// that are no view come back as they went in.
fn stand_in(requests: &[Img2ImgRequest], blend: bool) -> Vec<RgbImage> {
    let syncs: Vec<_> = requests.iter().map(|r| r.sync.as_ref()).collect();
    let groups = sync_groups(&syncs).expect("a job's views are all there");
    let (group, rows) = groups.first().expect("a synced mesh job has a view group");
    let (lw, lh) = group.latent_size();
    let pixels = (lw * lh) as usize;
    let mut values = vec![0f32; rows.len() * 3 * pixels];
    for (v, &row) in rows.iter().enumerate() {
        let small = resize(
            requests[row as usize].image.as_ref(),
            lw,
            lh,
            FilterType::Triangle,
        );
        for (p, px) in small.pixels().enumerate() {
            for c in 0..3 {
                values[(v * 3 + c) * pixels + p] = f32::from(px.0[c]) / 255.0;
            }
        }
    }
    let mut covered = vec![false; rows.len() * pixels];
    for e in group.entries() {
        covered[e.view as usize * pixels + e.pixel as usize] = true;
    }
    for _ in 0..requests[0].steps {
        for v in 0..rows.len() {
            let colour = view_colour(v);
            for c in 0..3 {
                for (p, x) in values[(v * 3 + c) * pixels..(v * 3 + c + 1) * pixels]
                    .iter_mut()
                    .enumerate()
                {
                    if covered[v * pixels + p] {
                        *x = 0.5 * *x + 0.5 * colour[c];
                    }
                }
            }
        }
        if blend {
            group.blend_values(&mut values, 3);
        }
    }
    let mut out: Vec<RgbImage> = requests.iter().map(|r| (*r.image).clone()).collect();
    for (v, &row) in rows.iter().enumerate() {
        let small = RgbImage::from_fn(lw, lh, |x, y| {
            let p = (y * lw + x) as usize;
            Rgb(std::array::from_fn(|c| {
                (values[(v * 3 + c) * pixels + p] * 255.0)
                    .round()
                    .clamp(0.0, 255.0) as u8
            }))
        });
        out[row as usize] = resize(
            &small,
            lw * LATENT_FACTOR,
            lh * LATENT_FACTOR,
            FilterType::Triangle,
        );
    }
    out
}

#[test]
fn sync_brings_views_that_disagree_together_by_at_least_10_db() {
    let (_dir, meshes) = demo_meshes();
    assert!(meshes.len() >= 3, "the demo has meshes");
    for asset in &meshes {
        let score = |blend: bool| {
            let job = prepare(asset, &depth_stage(true), &settings(512)).expect("prepare");
            let outputs = stand_in(&job.requests, blend);
            consistency(job.complete(outputs).expect("bake"))
        };
        let (independent, synced) = (score(false), score(true));
        eprintln!(
            "{}: stand-in sync {synced:.1} dB, independent {independent:.1} dB",
            asset.id
        );
        assert!(
            synced >= independent + 10.0,
            "{}: sync {synced:.1} dB vs independent {independent:.1} dB",
            asset.id
        );
    }
}

#[test]
fn without_sync_no_view_carries_a_sync_map_and_with_it_every_view_does() {
    let (_dir, meshes) = demo_meshes();
    let asset = &meshes[0];
    let synced = prepare(asset, &depth_stage(true), &settings(64)).expect("prepare");
    let independent = prepare(asset, &depth_stage(false), &settings(64)).expect("prepare");
    let views = 6 + 2;
    assert!(synced.requests[..views].iter().all(|r| r.sync.is_some()));
    assert!(synced.requests[views..].iter().all(|r| r.sync.is_none()));
    assert!(independent.requests.iter().all(|r| r.sync.is_none()));
    let group = &synced.requests[0].sync.as_ref().unwrap().group;
    assert_eq!(group.views(), views);
    assert_eq!(
        group.latent_size(),
        (64 / LATENT_FACTOR, 64 / LATENT_FACTOR)
    );
    assert!(!group.entries().is_empty());
}

#[test]
fn on_the_tiny_depth_model_sync_scores_higher_than_independent_views_on_every_demo_mesh() {
    let source = ModelSource::Dir(fixtures().join("models").join("sd2-depth-tiny"));
    let sd = StableDiffusion::load(&source, Device::Cpu, Kind::Float, None).expect("tiny model");
    let (_dir, meshes) = demo_meshes();
    for asset in &meshes {
        let score = |sync: bool| {
            consistency(
                retexture(&sd, asset, &depth_stage(sync), &settings(128)).expect("depth job"),
            )
        };
        let (independent, synced) = (score(false), score(true));
        assert!(
            synced > independent,
            "{}: sync {synced:.2} dB vs independent {independent:.2} dB",
            asset.id
        );
        eprintln!(
            "{}: sync {synced:.2} dB, independent {independent:.2} dB",
            asset.id
        );
    }
}
