//! What synchronised views cost: per demo mesh with 8 views (6 azimuths, top, bottom), the sync map's build and
//! one step's blend at 512² (64² latents), and a whole depth job on the tiny depth model at 128², 8 steps, with
//! `sync` on and off, with its `view_consistency_db`.
//!
//! `cargo bench -p texaug-stages --bench view_sync` (figures in bench/RESULTS.md)

use std::path::PathBuf;
use std::time::Instant;

use tch::{Device, Kind};
use texaug_stages::diffusion::img2img::StableDiffusion;
use texaug_stages::diffusion::model_dir::ModelSource;
use texaug_stages::job::{
    prepare, retexture, AssetRef, DepthSettings, DepthStage, JobSettings, ModelSize, Retextured,
    Stage,
};
use texaug_stages::source::{write_demo_sources, SourceKind};

const REPEATS: usize = 5;

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

fn stage(sync: bool) -> Stage<'static> {
    Stage::Depth(DepthStage {
        settings: DepthSettings {
            azimuths: 6,
            sync,
            ..DepthSettings::default()
        },
        estimator: None,
    })
}

/// The best of `REPEATS` runs of `f`, in ms, and its last result.
fn best_ms<T>(mut f: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::INFINITY;
    let mut last = None;
    for _ in 0..REPEATS {
        let t = Instant::now();
        last = Some(f());
        best = best.min(t.elapsed().as_secs_f64() * 1e3);
    }
    (best, last.expect("REPEATS > 0"))
}

fn main() {
    let dir = tempfile::tempdir().expect("a temp folder");
    let sources = write_demo_sources(dir.path()).expect("demo sources");
    let model =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/models/sd2-depth-tiny");
    let sd = StableDiffusion::load(&ModelSource::Dir(model), Device::Cpu, Kind::Float, None)
        .expect("the tiny depth model");
    println!(
        "view sync bench: 8 views per mesh, best of {REPEATS}, {} rayon threads",
        rayon::current_num_threads()
    );
    println!(
        "{:<7} {:>15} {:>15} {:>14} {:>15} {:>14} {:>12}",
        "mesh",
        "prepare (indep)",
        "prepare (sync)",
        "blend/step ms",
        "job (indep)",
        "job (sync)",
        "dB indep/sync"
    );
    for s in sources.iter().filter(|s| s.kind == "mesh") {
        let path = dir.path().join(&s.path);
        let asset = AssetRef {
            id: &s.id,
            path: &path,
            kind: SourceKind::Mesh,
            depth: None,
            mask: None,
        };
        let (plain_ms, _) =
            best_ms(|| prepare(&asset, &stage(false), &settings(512)).expect("prepare"));
        let (synced_ms, job) =
            best_ms(|| prepare(&asset, &stage(true), &settings(512)).expect("prepare"));
        let group = job.requests[0]
            .sync
            .as_ref()
            .expect("synced views")
            .group
            .clone();
        let (lw, lh) = group.latent_size();
        let mut values = vec![0.5f32; group.views() * 4 * (lw * lh) as usize];
        let (blend_ms, _) = best_ms(|| group.blend_values(&mut values, 4));
        let score = |done: Retextured| match done {
            Retextured::Mesh(m) => m.view_consistency_db.unwrap_or(f64::NAN),
            Retextured::Image { .. } => f64::NAN,
        };
        let (indep_ms, indep) =
            best_ms(|| retexture(&sd, &asset, &stage(false), &settings(128)).expect("job"));
        let (sync_ms, synced) =
            best_ms(|| retexture(&sd, &asset, &stage(true), &settings(128)).expect("job"));
        println!(
            "{:<7} {:>12.1} ms {:>12.1} ms {:>14.2} {:>12.0} ms {:>11.0} ms {:>5.1} / {:.1}",
            s.id,
            plain_ms,
            synced_ms,
            blend_ms,
            indep_ms,
            sync_ms,
            score(indep),
            score(synced)
        );
    }
}
