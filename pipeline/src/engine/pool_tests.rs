//! The pool against a fake stage and model: every job once, isolated failures, fixed batches, fail-fast.
use super::*;
use crate::config::recipe::{Recipe, StageKind};
use crate::config::sources::{Source, SourceKind};
use crate::plan::batching::units;
use std::path::PathBuf;
use std::sync::Arc;
use texaug_stages::job::WrittenSample;

fn jobs(ids: &[&str], variants: u32) -> Vec<Job> {
    let sources: Vec<Source> = ids
        .iter()
        .map(|id| Source {
            id: id.to_string(),
            path: PathBuf::from(format!("{id}.png")),
            label: "mug".into(),
            kind: SourceKind::Image,
            depth: None,
            mask: None,
            prompt: None,
            split: None,
            origin: PathBuf::from("m.csv"),
            line: 1,
        })
        .collect();
    let recipe: Recipe = toml::from_str(&format!(
        "name = \"t\"\n[sources]\nmanifest = \"m.csv\"\n[model]\npath = \"m\"\n\
         [[stage]]\nkind = \"style\"\nprompts = [\"a {{label}}\"]\nstrength = 0.5\nvariants = {variants}\n"
    ))
    .unwrap();
    assert_eq!(recipe.stages[0].kind, StageKind::Style);
    crate::plan::jobs::plan(&recipe, &sources)
}

/// Requests are 1×1 images whose red channel is the seed's low byte; "bad*" sources fail to prepare. Each job
/// claims `bytes_per_job` of memory; `finished` counts finishes.
#[derive(Default)]
struct FakeStage {
    bytes_per_job: u64,
    finished: Arc<std::sync::atomic::AtomicU64>,
}

impl StageWork for FakeStage {
    type State = u64;

    fn prepare(&self, job: &Job) -> Result<Prepared<u64>, String> {
        if job.source_id.starts_with("bad") {
            return Err(format!("{}: cannot read", job.source.path.display()));
        }
        let req = Img2ImgRequest {
            prompt: job.prompt.clone(),
            strength: job.strength,
            guidance: job.guidance,
            steps: job.steps as usize,
            seed: job.seed,
            ..Img2ImgRequest::new(RgbImage::new(1, 1), "")
        };
        Ok(Prepared {
            requests: vec![req],
            state: job.seed,
            one_batch: false,
            bytes: self.bytes_per_job,
        })
    }

    fn finish(
        &self,
        job: &Job,
        seed: u64,
        outputs: Vec<RgbImage>,
    ) -> Result<WrittenSample, String> {
        self.finished.fetch_add(1, Ordering::SeqCst);
        if job.source_id.starts_with("panic") {
            panic!("a bug in finish");
        }
        assert_eq!(
            outputs[0].get_pixel(0, 0).0[0],
            seed as u8,
            "outputs went to the wrong sample"
        );
        Ok(WrittenSample {
            sha256: format!("{seed}"),
            ..WrittenSample::default()
        })
    }
}

#[derive(Clone, Default)]
struct FakeLoader {
    batches: Arc<Mutex<Vec<Vec<u64>>>>,
    fail: bool,
    /// When set, the model's first batch waits for a message (the test's "a failure was recorded").
    gate: Option<Receiver<()>>,
    /// When set (the stage's finish counter), each batch records how many jobs the device ran before it that
    /// were not finished yet, the peak in `unfinished_peak`.
    finished: Option<Arc<std::sync::atomic::AtomicU64>>,
    unfinished_peak: Arc<std::sync::atomic::AtomicU64>,
}

struct FakeModel(Arc<Mutex<Vec<Vec<u64>>>>, Option<Receiver<()>>, FakeLoader);

impl DeviceModel for FakeModel {
    fn run(&mut self, reqs: &[Img2ImgRequest]) -> Result<Vec<RgbImage>, String> {
        if let Some(gate) = self.1.take() {
            gate.recv().map_err(|e| e.to_string())?;
        }
        if let Some(finished) = &self.2.finished {
            let ran: usize = self.0.lock().unwrap().iter().map(Vec::len).sum();
            let unfinished = ran as u64 - finished.load(Ordering::SeqCst);
            self.2
                .unfinished_peak
                .fetch_max(unfinished, Ordering::SeqCst);
        }
        self.0
            .lock()
            .unwrap()
            .push(reqs.iter().map(|r| r.seed).collect());
        Ok(reqs
            .iter()
            .map(|r| RgbImage::from_pixel(1, 1, image::Rgb([r.seed as u8, 0, 0])))
            .collect())
    }
}

impl ModelLoader for FakeLoader {
    fn load(&self, _device: DeviceSpec) -> anyhow::Result<Box<dyn DeviceModel>> {
        if self.fail {
            anyhow::bail!("no weights");
        }
        Ok(Box::new(FakeModel(
            self.batches.clone(),
            self.gate.clone(),
            self.clone(),
        )))
    }
}

struct NoEvents;
impl PoolEvents for NoEvents {
    fn device_ready(&self, _: &str, _: f64) {}
    fn device_progress(&self, _: usize, _: u64, _: &DeviceTally) {}
}

fn meta() -> RunMeta {
    RunMeta {
        run_id: "r".into(),
        recipe_hash: "h".into(),
        model_id: "m".into(),
        model_hash: "mh".into(),
        default_scheduler: "pndm".into(),
    }
}

fn config(batch: usize, fail_fast: bool) -> PoolConfig {
    PoolConfig {
        devices: vec![DeviceSpec::Cpu],
        batch,
        fail_fast,
        cpu_threads: 1,
        queue_bytes: 1 << 30,
    }
}

fn run_all(
    jobs: Vec<Job>,
    cfg: &PoolConfig,
    loader: &FakeLoader,
) -> anyhow::Result<(PoolOutcome, Vec<SampleRecord>)> {
    run_signalling(jobs, cfg, loader, None)
}

fn run_signalling(
    jobs: Vec<Job>,
    cfg: &PoolConfig,
    loader: &FakeLoader,
    on_failure: Option<Sender<()>>,
) -> anyhow::Result<(PoolOutcome, Vec<SampleRecord>)> {
    let mut records = Vec::new();
    let units = units(jobs, cfg.batch);
    let stage = FakeStage::default();
    let outcome = run(cfg, units, &stage, loader, &meta(), &NoEvents, |rows| {
        for r in rows {
            if !r.is_ok() {
                if let Some(tx) = &on_failure {
                    let _ = tx.send(());
                }
            }
            records.push(r);
        }
        Ok(())
    })?;
    Ok((outcome, records))
}

#[test]
fn every_job_is_recorded_once_and_failures_stay_isolated() {
    let all = jobs(&["a", "b", "bad1", "c", "d"], 3);
    let loader = FakeLoader::default();
    let (outcome, records) = run_all(all.clone(), &config(2, false), &loader).unwrap();
    assert_eq!((outcome.done, outcome.failed), (15, 3));
    let mut ids: Vec<_> = records.iter().map(|r| r.sample_id.clone()).collect();
    ids.sort();
    let mut expected: Vec<_> = all.iter().map(|j| j.sample_id.clone()).collect();
    expected.sort();
    assert_eq!(ids, expected);
    for r in &records {
        assert_eq!(r.is_ok(), !r.source_id.starts_with("bad"), "{r:?}");
        if !r.is_ok() {
            assert!(r.error.as_deref().unwrap().contains("bad1.png"));
        }
    }
    assert!(loader.batches.lock().unwrap().iter().all(|b| b.len() <= 2));
}

#[test]
fn batches_are_the_same_on_every_run() {
    let all = jobs(&["a", "b", "c", "d", "e", "f", "g"], 2);
    let collect = || {
        let loader = FakeLoader::default();
        run_all(all.clone(), &config(3, false), &loader).unwrap();
        let mut b = loader.batches.lock().unwrap().clone();
        b.sort();
        b
    };
    let first = collect();
    assert_eq!(first.iter().map(Vec::len).sum::<usize>(), 14);
    assert!(first.iter().any(|b| b.len() == 3));
    for _ in 0..3 {
        assert_eq!(collect(), first);
    }
}

#[test]
fn fail_fast_stops_taking_work() {
    let mut ids: Vec<String> = (0..60).map(|i| format!("s{i}")).collect();
    ids.push("bad".into());
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let mut all = jobs(&id_refs, 1);
    // Put the failing job first so only the little already queued may follow it.
    all.sort_by_key(|j| !j.source_id.starts_with("bad"));
    let (tx, rx) = unbounded();
    let loader = FakeLoader {
        gate: Some(rx),
        ..FakeLoader::default()
    };
    let (outcome, records) = run_signalling(all, &config(1, true), &loader, Some(tx)).unwrap();
    assert!(outcome.stopped);
    assert_eq!(outcome.failed, 1);
    // The device ran nothing before the failure was recorded; after it, at most the unit in its hands.
    assert!(
        records.len() <= 4,
        "{} samples ran after the failure",
        records.len() - 1
    );
}

#[test]
fn a_model_that_cannot_load_ends_the_run_with_its_error() {
    let loader = FakeLoader {
        fail: true,
        ..FakeLoader::default()
    };
    let err = run_all(jobs(&["a", "b", "c"], 4), &config(1, false), &loader)
        .err()
        .unwrap();
    assert!(format!("{err:#}").contains("no weights"), "{err:#}");
}

/// Five requests per job (a mesh's views) that must run together.
struct ViewsStage;

impl StageWork for ViewsStage {
    type State = u64;

    fn prepare(&self, job: &Job) -> Result<Prepared<u64>, String> {
        let mut prepared = FakeStage::default().prepare(job)?;
        let one = prepared.requests[0].clone();
        prepared.requests = (0..5u64)
            .map(|i| Img2ImgRequest {
                seed: one.seed + i,
                ..one.clone()
            })
            .collect();
        prepared.one_batch = true;
        Ok(prepared)
    }

    fn finish(
        &self,
        _job: &Job,
        seed: u64,
        outputs: Vec<RgbImage>,
    ) -> Result<WrittenSample, String> {
        let reds: Vec<u8> = outputs.iter().map(|o| o.get_pixel(0, 0).0[0]).collect();
        let want: Vec<u8> = (0..5u64).map(|i| (seed + i) as u8).collect();
        assert_eq!(reds, want, "views went to the wrong place");
        Ok(WrittenSample::default())
    }
}

#[test]
fn a_job_that_runs_alone_never_shares_a_batch_and_splits_at_the_batch_size() {
    let loader = FakeLoader::default();
    let units = units(jobs(&["a", "b", "c"], 1), 2);
    let outcome = run(
        &config(2, false),
        units,
        &ViewsStage,
        &loader,
        &meta(),
        &NoEvents,
        |rows| {
            for r in rows {
                assert!(r.is_ok(), "{:?}", r.error);
            }
            Ok(())
        },
    )
    .unwrap();
    assert_eq!(outcome.done, 3);
    let batches = loader.batches.lock().unwrap().clone();
    // Three jobs of five views, batch 2: 2 + 2 + 1 calls each, never two jobs in one call.
    assert_eq!(batches.len(), 9, "{batches:?}");
    for b in &batches {
        assert!(b.len() <= 2, "{b:?}");
        assert!(
            b.windows(2).all(|w| w[1] == w[0] + 1),
            "one job per batch: {b:?}"
        );
    }
}

#[test]
fn a_panic_in_finish_fails_only_its_sample() {
    let loader = FakeLoader::default();
    let (outcome, records) =
        run_all(jobs(&["a", "panic1", "b"], 1), &config(1, false), &loader).unwrap();
    assert_eq!((outcome.done, outcome.failed), (3, 1));
    for r in &records {
        assert_eq!(r.is_ok(), !r.source_id.starts_with("panic"), "{r:?}");
        if !r.is_ok() {
            assert!(
                r.error.as_deref().unwrap().contains("a bug in finish"),
                "{r:?}"
            );
        }
    }
}

#[test]
fn prepared_jobs_in_flight_stay_within_the_byte_budget() {
    // Each job claims 100 bytes; with 150 allowed, a job is prepared for the device only once the one before it
    // finished, so the device never sees a job run before it still unfinished. With room for all, every job is
    // still recorded once.
    for (queue_bytes, bound) in [(150u64, Some(0u64)), (1 << 30, None)] {
        let stage = FakeStage {
            bytes_per_job: 100,
            ..FakeStage::default()
        };
        let loader = FakeLoader {
            finished: Some(stage.finished.clone()),
            ..FakeLoader::default()
        };
        let cfg = PoolConfig {
            queue_bytes,
            ..config(1, false)
        };
        let all = jobs(
            &(0..40)
                .map(|i| format!("s{i}"))
                .collect::<Vec<_>>()
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
            1,
        );
        let mut n = 0;
        let outcome = run(
            &cfg,
            units(all, 1),
            &stage,
            &loader,
            &meta(),
            &NoEvents,
            |rows| {
                for r in rows {
                    assert!(r.is_ok(), "{:?}", r.error);
                    n += 1;
                }
                Ok(())
            },
        )
        .unwrap();
        assert_eq!((outcome.done, n), (40, 40));
        if let Some(bound) = bound {
            assert_eq!(loader.unfinished_peak.load(Ordering::SeqCst), bound);
        }
    }
}

#[test]
fn a_rerun_only_job_completes_its_batch_but_is_not_recorded() {
    let mut all = jobs(&["a", "b", "c", "d"], 1);
    all[1].rerun_only = true;
    let skipped = all[1].sample_id.clone();
    let units = units(all.clone(), 4);
    assert_eq!(units.len(), 1, "one start step, one unit");
    let loader = FakeLoader::default();
    let stage = FakeStage::default();
    let mut recorded = Vec::new();
    let outcome = run(
        &config(4, false),
        units,
        &stage,
        &loader,
        &meta(),
        &NoEvents,
        |rows| {
            recorded.extend(rows.into_iter().map(|r| r.sample_id));
            Ok(())
        },
    )
    .unwrap();
    assert_eq!(outcome.done, 3);
    assert!(!recorded.contains(&skipped), "{recorded:?}");
    let seeds: Vec<u64> = all.iter().map(|j| j.seed).collect();
    assert_eq!(
        *loader.batches.lock().unwrap(),
        vec![seeds],
        "the batch is the one an uninterrupted run makes"
    );
    assert_eq!(
        stage.finished.load(Ordering::SeqCst),
        3,
        "a rerun-only job is not finished"
    );
}
