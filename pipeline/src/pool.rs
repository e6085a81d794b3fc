//! The run's engine (DESIGN §1): prepare in rayon → bounded device queue → one worker thread per device (each owns
//! its model; tch modules are not `Sync`) → finish in rayon → one ledger writer (the calling thread).
//!
//! Batches are fixed before the run ([`units`]): consecutive jobs of the plan that share their diffusion settings,
//! `batch` at a time. Which device runs a unit depends on timing, but what is in it does not, so outputs are the same
//! bytes on every run even where a batched kernel's arithmetic depends on the batch.

use crate::devices::DeviceSpec;
use crate::plan::Job;
use crate::sample_manifest::SampleRecord;
use crossbeam_channel::{bounded, unbounded, Receiver, Sender};
use image::RgbImage;
use std::any::Any;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use texaug_stages::diffusion::img2img::DepthMap;

/// One img2img call's inputs (a job has one per image, or one per base-color texture of a mesh).
#[derive(Clone)]
pub struct ModelRequest {
    pub image: RgbImage,
    pub prompt: String,
    pub negative_prompt: String,
    pub strength: f64,
    pub guidance: f64,
    pub steps: u32,
    pub seed: u64,
    pub scheduler: Option<String>,
    /// What conditions the model besides the prompt.
    pub condition: Condition,
}

/// Extra conditioning of one request.
#[derive(Clone, Debug, Default)]
pub enum Condition {
    /// Plain img2img.
    #[default]
    None,
    /// A depth map (larger = nearer) for a depth-conditioned (5-channel) UNet.
    Depth(Arc<DepthMap>),
    /// A ControlNet control image in [0, 1] at the request's size, with its conditioning scale.
    Control(Arc<RgbImage>, f64),
}

impl Condition {
    /// Requests of one batch must agree on this (and a ControlNet batch on its scale).
    pub fn kind(&self) -> String {
        match self {
            Condition::None => "plain".into(),
            Condition::Depth(_) => "depth".into(),
            Condition::Control(_, scale) => format!("control@{scale}"),
        }
    }
}

/// A model loaded on one device.
pub trait DeviceModel {
    /// Requests with equal keys may run as one batch.
    fn batch_key(&self, request: &ModelRequest) -> String;
    fn run(&mut self, requests: &[ModelRequest]) -> Result<Vec<RgbImage>, String>;
}

/// Loads the model once per device, on that device's worker thread.
pub trait ModelLoader: Sync {
    fn load(&self, device: DeviceSpec) -> anyhow::Result<Box<dyn DeviceModel>>;
}

/// A job made ready for the device: its requests, and what `finish` needs to turn the outputs into files.
pub struct Prepared {
    pub requests: Vec<ModelRequest>,
    pub state: Box<dyn Any + Send>,
    /// The requests run together, apart from other jobs, one batch per batch key whatever `batch` says (the views
    /// of a mesh share their settings and are made as one).
    pub one_batch: bool,
}

/// What `finish` wrote, relative to the output folder.
#[derive(Debug, Default, Clone)]
pub struct Finished {
    pub width: Option<i64>,
    pub height: Option<i64>,
    pub image_path: Option<String>,
    pub texture_path: Option<String>,
    pub asset_path: Option<String>,
    pub output_sha256: Option<String>,
    pub depth_source: Option<String>,
    pub views: Option<i64>,
    pub coverage: Option<f64>,
}

/// The CPU work of a stage, before and after the device.
pub trait StageWork: Sync {
    fn prepare(&self, job: &Job) -> Result<Prepared, String>;
    fn finish(
        &self,
        job: &Job,
        state: Box<dyn Any + Send>,
        outputs: Vec<RgbImage>,
    ) -> Result<Finished, String>;
}

/// What the device workers report as they go (progress bars, JSON events).
pub trait PoolEvents: Sync {
    fn device_ready(&self, device: &str, load_seconds: f64);
    fn device_progress(&self, device_index: usize, samples: u64);
}

/// Fields of every record that come from the run rather than the job.
#[derive(Debug, Clone)]
pub struct RunMeta {
    pub run_id: String,
    pub recipe_hash: String,
    pub model_id: String,
    pub model_hash: String,
    /// What the scheduler column says for jobs that use the model's own scheduler.
    pub default_scheduler: String,
}

pub struct PoolConfig {
    pub devices: Vec<DeviceSpec>,
    pub batch: usize,
    pub fail_fast: bool,
    pub cpu_threads: usize,
}

/// How a pool run ended.
pub struct PoolOutcome {
    pub done: u64,
    pub failed: u64,
    /// Set when --fail-fast stopped the run early.
    pub stopped: bool,
}

/// The plan's jobs grouped into fixed batches: consecutive jobs with equal diffusion settings, `batch` at most.
pub fn units(jobs: Vec<Job>, batch: usize) -> Vec<Vec<Job>> {
    let batch = batch.max(1);
    let mut units: Vec<Vec<Job>> = Vec::new();
    // Settings → the unit still taking jobs for them (full units stay where they are, so first-seen order holds).
    let mut open: std::collections::HashMap<(usize, u32, u64, u64, u32), usize> =
        std::collections::HashMap::new();
    for job in jobs {
        let key = (
            job.stage_index,
            job.steps,
            job.strength.to_bits(),
            job.guidance.to_bits(),
            job.size,
        );
        match open.get(&key) {
            Some(&i) if units[i].len() < batch => units[i].push(job),
            _ => {
                open.insert(key, units.len());
                units.push(vec![job]);
            }
        }
    }
    units
}

struct DeviceItem {
    job: Job,
    prepared: Prepared,
    started: Instant,
}

struct FinishItem {
    job: Job,
    state: Box<dyn Any + Send>,
    result: Result<Vec<RgbImage>, String>,
    device: String,
    started: Instant,
}

/// Runs every unit; calls `record` (on this thread, the only writer) for each finished or failed sample.
pub fn run(
    config: &PoolConfig,
    units: Vec<Vec<Job>>,
    stage: &dyn StageWork,
    loader: &dyn ModelLoader,
    meta: &RunMeta,
    events: &dyn PoolEvents,
    mut record: impl FnMut(SampleRecord) -> anyhow::Result<()>,
) -> anyhow::Result<PoolOutcome> {
    if units.is_empty() {
        // Nothing to make (a resumed run that is complete): do not load a model for it.
        return Ok(PoolOutcome {
            done: 0,
            failed: 0,
            stopped: false,
        });
    }
    let stop = AtomicBool::new(false);
    let fatal: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    let n_dev = config.devices.len().max(1);
    let (unit_tx, unit_rx) = unbounded::<Vec<Job>>();
    for u in units {
        let _ = unit_tx.send(u);
    }
    drop(unit_tx);
    // Back-pressure: about two batches per device wait in the queue, no more.
    let (dev_tx, dev_rx) = bounded::<Vec<DeviceItem>>(2 * n_dev);
    let (fin_tx, fin_rx) = bounded::<FinishItem>(2 * n_dev * config.batch.max(1));
    let (rec_tx, rec_rx) = unbounded::<SampleRecord>();
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let cpu_side = cores.clamp(1, 4);
    let prepare_pool = rayon::ThreadPoolBuilder::new()
        .num_threads(cpu_side)
        .thread_name(|i| format!("texaug-prepare-{i}"))
        .build()?;
    let finish_pool = rayon::ThreadPoolBuilder::new()
        .num_threads(cpu_side)
        .thread_name(|i| format!("texaug-finish-{i}"))
        .build()?;
    if config.devices.contains(&DeviceSpec::Cpu) {
        tch::set_num_threads(config.cpu_threads.max(1) as i32);
    }

    let mut done = 0u64;
    let mut failed = 0u64;
    let mut ledger_error: Option<anyhow::Error> = None;
    let stop = &stop;
    let fatal = &fatal;
    prepare_pool.in_place_scope(|prepare_scope| {
        finish_pool.in_place_scope(|finish_scope| {
            std::thread::scope(|thread_scope| {
                // Prepare: rayon tasks pull units; a job that fails to prepare becomes a failed record at once.
                for _ in 0..cpu_side {
                    let (unit_rx, dev_tx, rec_tx) =
                        (unit_rx.clone(), dev_tx.clone(), rec_tx.clone());
                    prepare_scope
                        .spawn(move |_| prepare_loop(stage, meta, stop, unit_rx, dev_tx, rec_tx));
                }
                // Device workers: one thread each, owning its model.
                for (index, device) in config.devices.iter().copied().enumerate() {
                    let (dev_rx, fin_tx) = (dev_rx.clone(), fin_tx.clone());
                    let batch = config.batch.max(1);
                    let spawned = std::thread::Builder::new()
                        .name(format!("texaug-{device}"))
                        .spawn_scoped(thread_scope, move || {
                            let worker = Worker {
                                loader,
                                events,
                                device,
                                index,
                                batch,
                                stop,
                                fatal,
                            };
                            worker.run(dev_rx, fin_tx)
                        });
                    if let Err(e) = spawned {
                        set_fatal(
                            fatal,
                            stop,
                            anyhow::Error::new(e).context("starting a device thread"),
                        );
                    }
                }
                // Finish: rayon tasks turn outputs into files and records.
                for _ in 0..cpu_side {
                    let (fin_rx, rec_tx) = (fin_rx.clone(), rec_tx.clone());
                    finish_scope.spawn(move |_| {
                        while let Ok(item) = fin_rx.recv() {
                            let _ = rec_tx.send(finish_one(stage, meta, item));
                        }
                    });
                }
                // Only the tasks hold channel ends now, so each stage ends when the one before it does.
                drop((dev_tx, dev_rx, fin_tx, fin_rx, rec_tx, unit_rx));

                // The ledger writer: this thread. After an error it keeps draining so no task blocks forever.
                for r in rec_rx.iter() {
                    if ledger_error.is_some() {
                        continue;
                    }
                    let ok = r.is_ok();
                    if let Err(e) = record(r) {
                        ledger_error = Some(e);
                        stop.store(true, Ordering::SeqCst);
                        continue;
                    }
                    done += 1;
                    if !ok {
                        failed += 1;
                        if config.fail_fast {
                            stop.store(true, Ordering::SeqCst);
                        }
                    }
                }
            })
        })
    });
    if let Some(e) = ledger_error {
        return Err(e);
    }
    if let Some(e) = fatal.lock().unwrap_or_else(|p| p.into_inner()).take() {
        return Err(e);
    }
    Ok(PoolOutcome {
        done,
        failed,
        stopped: config.fail_fast && stop.load(Ordering::SeqCst),
    })
}

/// Runs one unit's requests, grouped by batch key (in order of first appearance), `batch` at a time.
fn run_unit(
    model: &mut dyn DeviceModel,
    items: Vec<DeviceItem>,
    batch: usize,
    device: &str,
) -> Vec<FinishItem> {
    // (item index, request index) of every request, grouped by key.
    // A job that runs alone gets keys of its own (prefixed by its index), so it never shares a batch.
    let mut groups: Vec<(String, Vec<(usize, usize)>)> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        for (r, req) in item.prepared.requests.iter().enumerate() {
            let key = match item.prepared.one_batch {
                true => format!("job{i}|{}", model.batch_key(req)),
                false => model.batch_key(req),
            };
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, g)) => g.push((i, r)),
                None => groups.push((key, vec![(i, r)])),
            }
        }
    }
    let mut outputs: Vec<Vec<Option<RgbImage>>> = items
        .iter()
        .map(|it| vec![None; it.prepared.requests.len()])
        .collect();
    let mut errors: Vec<Option<String>> = vec![None; items.len()];
    for (_, group) in groups {
        let alone = group
            .first()
            .is_some_and(|(i, _)| items[*i].prepared.one_batch);
        let size = if alone { group.len().max(1) } else { batch };
        for chunk in group.chunks(size) {
            let reqs: Vec<ModelRequest> = chunk
                .iter()
                .map(|(i, r)| items[*i].prepared.requests[*r].clone())
                .collect();
            match model.run(&reqs) {
                Ok(images) if images.len() == reqs.len() => {
                    for ((i, r), img) in chunk.iter().zip(images) {
                        outputs[*i][*r] = Some(img);
                    }
                }
                Ok(images) => {
                    let e = format!(
                        "the model returned {} images for {} requests",
                        images.len(),
                        reqs.len()
                    );
                    chunk.iter().for_each(|(i, _)| errors[*i] = Some(e.clone()));
                }
                Err(e) => chunk.iter().for_each(|(i, _)| errors[*i] = Some(e.clone())),
            }
        }
    }
    items
        .into_iter()
        .zip(outputs.into_iter().zip(errors))
        .map(|(item, (outs, err))| {
            let result = match err {
                Some(e) => Err(e),
                None => Ok(outs.into_iter().flatten().collect()),
            };
            FinishItem {
                job: item.job,
                state: item.prepared.state,
                result,
                device: device.to_string(),
                started: item.started,
            }
        })
        .collect()
}

fn finish_one(stage: &dyn StageWork, meta: &RunMeta, item: FinishItem) -> SampleRecord {
    let FinishItem {
        job,
        state,
        result,
        device,
        started,
    } = item;
    let finished = result.and_then(|outputs| stage.finish(&job, state, outputs));
    match finished {
        Ok(f) => {
            let mut r = base_record(&job, meta, &device, started);
            r.width = f.width;
            r.height = f.height;
            r.image_path = f.image_path;
            r.texture_path = f.texture_path;
            r.asset_path = f.asset_path;
            r.output_sha256 = f.output_sha256;
            r.depth_source = f.depth_source;
            r.views = f.views;
            r.coverage = f.coverage;
            r
        }
        Err(e) => failed_record(&job, meta, &device, started, e),
    }
}

fn failed_record(
    job: &Job,
    meta: &RunMeta,
    device: &str,
    started: Instant,
    error: String,
) -> SampleRecord {
    let mut r = base_record(job, meta, device, started);
    r.status = "failed".into();
    r.error = Some(error);
    r
}

fn base_record(job: &Job, meta: &RunMeta, device: &str, started: Instant) -> SampleRecord {
    SampleRecord {
        sample_id: job.sample_id.clone(),
        run_id: meta.run_id.clone(),
        recipe_hash: meta.recipe_hash.clone(),
        source_id: job.source_id.clone(),
        source_path: job.source.path.display().to_string(),
        source_kind: job.source.kind.as_str().into(),
        label: job.source.label.clone(),
        split: job.source.split.clone(),
        stage: job.stage.clone(),
        variant: i64::from(job.variant),
        prompt: job.prompt.clone(),
        negative_prompt: job.negative_prompt.clone(),
        seed: i64::try_from(job.seed).unwrap_or(i64::MAX),
        strength: job.strength,
        guidance: job.guidance,
        steps: i64::from(job.steps),
        scheduler: job
            .scheduler
            .clone()
            .unwrap_or_else(|| meta.default_scheduler.clone()),
        model_id: meta.model_id.clone(),
        model_hash: meta.model_hash.clone(),
        depth_source: None,
        width: None,
        height: None,
        image_path: None,
        texture_path: None,
        asset_path: None,
        output_sha256: None,
        device: device.to_string(),
        duration_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
        status: "ok".into(),
        error: None,
        texaug_version: env!("CARGO_PKG_VERSION").into(),
        views: job.views.map(i64::from),
        coverage: None,
    }
}

fn set_fatal(fatal: &Mutex<Option<anyhow::Error>>, stop: &AtomicBool, e: anyhow::Error) {
    let mut f = fatal.lock().unwrap_or_else(|p| p.into_inner());
    f.get_or_insert(e);
    stop.store(true, Ordering::SeqCst);
}

fn prepare_loop(
    stage: &dyn StageWork,
    meta: &RunMeta,
    stop: &AtomicBool,
    units: Receiver<Vec<Job>>,
    to_device: Sender<Vec<DeviceItem>>,
    to_ledger: Sender<SampleRecord>,
) {
    while let Ok(unit) = units.recv() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let mut items = Vec::new();
        for job in unit {
            let started = Instant::now();
            match stage.prepare(&job) {
                Ok(prepared) => items.push(DeviceItem {
                    job,
                    prepared,
                    started,
                }),
                Err(e) => {
                    let _ = to_ledger.send(failed_record(&job, meta, "", started, e));
                }
            }
        }
        if !items.is_empty() && to_device.send(items).is_err() {
            return;
        }
    }
}

struct Worker<'a> {
    loader: &'a dyn ModelLoader,
    events: &'a dyn PoolEvents,
    device: DeviceSpec,
    index: usize,
    batch: usize,
    stop: &'a AtomicBool,
    fatal: &'a Mutex<Option<anyhow::Error>>,
}

impl Worker<'_> {
    fn run(self, from_prepare: Receiver<Vec<DeviceItem>>, to_finish: Sender<FinishItem>) {
        let name = self.device.to_string();
        let t0 = Instant::now();
        let mut model = match self.loader.load(self.device) {
            Ok(m) => m,
            Err(e) => {
                let e = e.context(format!("loading the model on {name}"));
                set_fatal(self.fatal, self.stop, e);
                return;
            }
        };
        self.events.device_ready(&name, t0.elapsed().as_secs_f64());
        while let Ok(items) = from_prepare.recv() {
            if self.stop.load(Ordering::SeqCst) {
                return;
            }
            let outs = run_unit(model.as_mut(), items, self.batch, &name);
            self.events.device_progress(self.index, outs.len() as u64);
            for out in outs {
                if to_finish.send(out).is_err() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "pool_tests.rs"]
mod tests;
