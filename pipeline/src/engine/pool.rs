//! The threads and queues of a run: prepare in rayon → bounded device queue → one worker thread per device (each
//! owns its model) → finish in rayon → one ledger writer (the calling thread). A panic in prepare or finish fails
//! that sample, not the run. Units (fixed batches, [`crate::plan::batching`]) go to whichever device is free; a
//! unit's jobs marked `rerun_only` (a resumed run) complete its batch and are neither finished nor recorded.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use crossbeam_channel::{bounded, unbounded, Receiver, Sender};
use image::RgbImage;
use texaug_stages::diffusion::request::{batch_key, BatchKey, Img2ImgRequest};

use super::budget::ByteBudget;
use super::work::{DeviceModel, DeviceTally, ModelLoader, PoolEvents, Prepared, StageWork};
use crate::config::devices::DeviceSpec;
use crate::output::record::SampleRecord;
use crate::output::row::{job_rows, RunMeta, SampleTiming};
use crate::plan::Job;

pub struct PoolConfig {
    pub devices: Vec<DeviceSpec>,
    pub batch: usize,
    pub fail_fast: bool,
    pub cpu_threads: usize,
    /// The most bytes of prepared jobs in flight (queued, on a device, or waiting for their finish).
    pub queue_bytes: u64,
}

/// How a pool run ended.
pub struct PoolOutcome {
    pub done: u64,
    pub failed: u64,
    /// Set when --fail-fast stopped the run early.
    pub stopped: bool,
}

struct DeviceItem<S> {
    job: Job,
    prepared: Prepared<S>,
    started: Instant,
    /// The job's own time so far (its prepare), in milliseconds.
    work_ms: f64,
}

struct FinishItem<S> {
    job: Job,
    state: S,
    result: Result<Vec<RgbImage>, String>,
    device: String,
    started: Instant,
    /// Its prepare plus its share of the device calls it was in, in milliseconds.
    work_ms: f64,
    /// What the job holds until its finish, released into the byte budget then.
    bytes: u64,
}

/// Runs every unit; calls `record` (on this thread, the only writer) with the rows of each finished or failed job
/// (its rendered views' and its own), together so they are recorded as one.
pub fn run<W: StageWork>(
    config: &PoolConfig,
    units: Vec<Vec<Job>>,
    stage: &W,
    loader: &dyn ModelLoader,
    meta: &RunMeta,
    events: &dyn PoolEvents,
    mut record: impl FnMut(Vec<SampleRecord>) -> anyhow::Result<()>,
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
    let budget = ByteBudget::new(config.queue_bytes);
    let halt = Halt {
        stop: &stop,
        budget: &budget,
    };
    let n_dev = config.devices.len().max(1);
    let (unit_tx, unit_rx) = unbounded::<Vec<Job>>();
    for u in units {
        let _ = unit_tx.send(u);
    }
    drop(unit_tx);
    // Back-pressure: about two batches per device wait in the queue, no more.
    let (dev_tx, dev_rx) = bounded::<Vec<DeviceItem<W::State>>>(2 * n_dev);
    let (fin_tx, fin_rx) = bounded::<FinishItem<W::State>>(2 * n_dev * config.batch.max(1));
    let (rec_tx, rec_rx) = unbounded::<Vec<SampleRecord>>();
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
    let fatal = &fatal;
    let halt = &halt;
    let budget = &budget;
    let (prepare_pool, finish_pool) = (&prepare_pool, &finish_pool);
    // The loops that pull work are plain threads; each job runs inside a rayon pool through `install`, so the
    // pool's threads stay free to share the data-parallel raster and bake work inside a prepare or a finish.
    std::thread::scope(|thread_scope| {
        // Prepare: loops pull units; a job that fails to prepare becomes a failed record at once.
        for _ in 0..cpu_side {
            let (unit_rx, dev_tx, rec_tx) = (unit_rx.clone(), dev_tx.clone(), rec_tx.clone());
            let queues = (unit_rx, dev_tx, rec_tx);
            thread_scope.spawn(move || prepare_loop(stage, meta, halt, prepare_pool, queues));
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
                        halt,
                        fatal,
                    };
                    worker.run::<W::State>(dev_rx, fin_tx)
                });
            if let Err(e) = spawned {
                set_fatal(
                    fatal,
                    halt,
                    anyhow::Error::new(e).context("starting a device thread"),
                );
            }
        }
        // Finish: loops turn outputs into files and records, each inside the finish pool.
        for _ in 0..cpu_side {
            let (fin_rx, rec_tx) = (fin_rx.clone(), rec_tx.clone());
            thread_scope.spawn(move || {
                while let Ok(item) = fin_rx.recv() {
                    let bytes = item.bytes;
                    if item.job.rerun_only {
                        // Recorded before: it ran only to complete its batch.
                        budget.release(bytes);
                        continue;
                    }
                    let record = finish_pool.install(|| finish_one(stage, meta, item));
                    budget.release(bytes);
                    let _ = rec_tx.send(record);
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
            let rows = r.len() as u64;
            let bad = r.iter().filter(|row| !row.is_done()).count() as u64;
            if let Err(e) = record(r) {
                ledger_error = Some(e);
                halt.now();
                continue;
            }
            done += rows;
            if bad > 0 {
                failed += bad;
                if config.fail_fast {
                    halt.now();
                }
            }
        }
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

/// A request's group in a unit: its batch key, the job it belongs to when that job runs alone (so it never
/// shares a batch with another job), and whether it is a synchronised mesh view (those run as one call).
type GroupKey = (Option<usize>, BatchKey, bool);

/// Runs one unit's requests, grouped by batch key (in order of first appearance), `batch` at a time; adds the
/// images and model time to `tally`.
fn run_unit<S>(
    model: &mut dyn DeviceModel,
    items: Vec<DeviceItem<S>>,
    batch: usize,
    device: &str,
    tally: &mut DeviceTally,
) -> Vec<FinishItem<S>> {
    // (item index, request index) of every request, grouped by key.
    let mut groups: Vec<(GroupKey, Vec<(usize, usize)>)> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        for (r, req) in item.prepared.requests.iter().enumerate() {
            let key = (
                item.prepared.one_batch.then_some(i),
                batch_key(req),
                req.sync.is_some(),
            );
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
    let mut device_ms = vec![0.0f64; items.len()];
    for ((_, _, synced), group) in groups {
        // A job that runs alone (a mesh's views) still never exceeds `batch` per call: its views split, unless
        // they are denoised in step, which needs them all in one call.
        let per_call = if synced { group.len() } else { batch };
        for chunk in group.chunks(per_call.max(1)) {
            // Cheap: a request shares its image and condition.
            let reqs: Vec<Img2ImgRequest> = chunk
                .iter()
                .map(|(i, r)| items[*i].prepared.requests[*r].clone())
                .collect();
            let call = Instant::now();
            let ran = model.run(&reqs);
            let call_s = call.elapsed().as_secs_f64();
            tally.model_s += call_s;
            tally.images += chunk.len() as u64;
            let share = call_s * 1e3 / chunk.len() as f64;
            chunk.iter().for_each(|(i, _)| device_ms[*i] += share);
            match ran {
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
        .zip(device_ms)
        .map(|((item, (outs, err)), device_ms)| {
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
                work_ms: item.work_ms + device_ms,
                bytes: item.prepared.bytes,
            }
        })
        .collect()
}

/// What a caught panic says.
pub fn panic_message(panic: &(dyn Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown cause".into())
}

/// Runs `f`, turning a panic into an error naming where it happened: a bad sample fails, the run goes on.
fn caught<T>(what: &str, f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        Err(format!(
            "internal error while {what} this sample (a bug in texaug; please report it): {}",
            panic_message(panic.as_ref())
        ))
    })
}

fn finish_one<W: StageWork>(
    stage: &W,
    meta: &RunMeta,
    item: FinishItem<W::State>,
) -> Vec<SampleRecord> {
    let FinishItem {
        job,
        state,
        result,
        device,
        started,
        work_ms,
        bytes: _,
    } = item;
    let finish = Instant::now();
    let finished =
        result.and_then(|outputs| caught("finishing", || stage.finish(&job, state, outputs)));
    let timing = SampleTiming::of(work_ms + ms_since(finish), ms_since(started));
    job_rows(&job, meta, &device, timing, finished)
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// Stops the run: no new unit starts, and prepare threads waiting for the byte budget return.
struct Halt<'a> {
    stop: &'a AtomicBool,
    budget: &'a ByteBudget,
}

impl Halt<'_> {
    fn now(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.budget.close();
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

fn set_fatal(fatal: &Mutex<Option<anyhow::Error>>, halt: &Halt<'_>, e: anyhow::Error) {
    let mut f = fatal.lock().unwrap_or_else(|p| p.into_inner());
    f.get_or_insert(e);
    drop(f);
    halt.now();
}

type PrepareQueues<S> = (
    Receiver<Vec<Job>>,
    Sender<Vec<DeviceItem<S>>>,
    Sender<Vec<SampleRecord>>,
);

fn prepare_loop<W: StageWork>(
    stage: &W,
    meta: &RunMeta,
    halt: &Halt<'_>,
    pool: &rayon::ThreadPool,
    (units, to_device, to_ledger): PrepareQueues<W::State>,
) {
    while let Ok(unit) = units.recv() {
        if halt.stopped() {
            return;
        }
        let mut items = Vec::new();
        for job in unit {
            let started = Instant::now();
            let prepared = pool.install(|| caught("preparing", || stage.prepare(&job)));
            let work_ms = ms_since(started);
            match prepared {
                Ok(prepared) => items.push(DeviceItem {
                    job,
                    prepared,
                    started,
                    work_ms,
                }),
                Err(_) if job.rerun_only => {}
                Err(e) => {
                    let timing = SampleTiming::of(work_ms, work_ms);
                    let _ = to_ledger.send(job_rows(&job, meta, "", timing, Err(e)));
                }
            }
        }
        if items.is_empty() {
            continue;
        }
        // Held until each job's finish; a unit waits here while the jobs before it hold too much memory.
        let bytes = items.iter().map(|i| i.prepared.bytes).sum();
        if !halt.budget.acquire(bytes) || to_device.send(items).is_err() {
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
    halt: &'a Halt<'a>,
    fatal: &'a Mutex<Option<anyhow::Error>>,
}

impl Worker<'_> {
    fn run<S>(self, from_prepare: Receiver<Vec<DeviceItem<S>>>, to_finish: Sender<FinishItem<S>>) {
        let name = self.device.to_string();
        let t0 = Instant::now();
        let mut model = match self.loader.load(self.device) {
            Ok(m) => m,
            Err(e) => {
                let e = e.context(format!("loading the model on {name}"));
                set_fatal(self.fatal, self.halt, e);
                return;
            }
        };
        self.events.device_ready(&name, t0.elapsed().as_secs_f64());
        let ready = Instant::now();
        let mut tally = DeviceTally::default();
        while let Ok(items) = from_prepare.recv() {
            if self.halt.stopped() {
                return;
            }
            let outs = run_unit(model.as_mut(), items, self.batch, &name, &mut tally);
            tally.samples += outs.len() as u64;
            tally.wall_s = ready.elapsed().as_secs_f64();
            self.events
                .device_progress(self.index, outs.len() as u64, &tally);
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
