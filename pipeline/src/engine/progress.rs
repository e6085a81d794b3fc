//! Progress: bars on stderr (overall and one per device), JSON events on stdout for cluster logs, or nothing.
//! JSON events are printed after the sample is in the journal, so a reader that counts `sample_done` events
//! never counts a sample a resumed run would redo.

use std::io::Write;
use std::sync::Mutex;

use clap::ValueEnum;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use super::work::{DeviceTally, PoolEvents};
use crate::output::record::SampleRecord;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressMode {
    /// Progress bars on stderr (overall and one per device).
    Bar,
    /// One JSON event per line on stdout, for cluster logs: start, device_ready, device_batch (images/s of
    /// model time, busy share), sample_done (with duration_ms and queue_ms), finish.
    Json,
    /// Nothing but errors and the final summary.
    None,
}

pub struct Progress {
    mode: ProgressMode,
    total: u64,
    devices: Vec<String>,
    bars: Option<(MultiProgress, ProgressBar, Vec<ProgressBar>)>,
    stdout: Mutex<std::io::Stdout>,
}

impl Progress {
    pub fn new(mode: ProgressMode, total: usize, devices: &[String]) -> Progress {
        let total = total as u64;
        let bars = (mode == ProgressMode::Bar).then(|| {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{prefix:>8} [{elapsed_precise}] {wide_bar} {pos}/{len} {per_sec} ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            let overall = multi.add(ProgressBar::new(total).with_style(style.clone()));
            overall.set_prefix("all");
            let per_device = devices
                .iter()
                .map(|d| {
                    let dev_style = ProgressStyle::with_template(
                        "{prefix:>8} {spinner} {pos} samples {per_sec} {msg}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_spinner());
                    let b = multi.add(ProgressBar::new_spinner().with_style(dev_style));
                    b.set_prefix(d.clone());
                    b
                })
                .collect();
            (multi, overall, per_device)
        });
        Progress {
            mode,
            total,
            devices: devices.to_vec(),
            bars,
            stdout: Mutex::new(std::io::stdout()),
        }
    }

    fn emit(&self, value: serde_json::Value) {
        if self.mode != ProgressMode::Json {
            return;
        }
        if let Ok(mut out) = self.stdout.lock() {
            // A closed stdout (a log pipe gone) must not stop the run.
            let _ = writeln!(out, "{value}");
            let _ = out.flush();
        }
    }

    pub fn start(&self, run_id: &str, shard: &str, skipped: usize, devices: &[String]) {
        self.emit(json!({
            "event": "start", "run_id": run_id, "shard": shard, "total": self.total,
            "skipped": skipped, "devices": devices,
        }));
    }

    pub fn device_ready(&self, device: &str, seconds: f64) {
        self.emit(json!({"event": "device_ready", "device": device, "load_s": seconds}));
        if let Some((_, _, devs)) = &self.bars {
            if let Some(b) = devs.iter().find(|b| b.prefix() == device) {
                b.set_message("ready");
            }
        }
    }

    /// After each unit a device ran: its throughput (images per second of model time) and how busy it was, so a
    /// cluster log shows whether a GPU waits for the CPU side.
    pub fn device_samples(&self, device_index: usize, added: u64, tally: &DeviceTally) {
        let device = self.devices.get(device_index).map_or("?", String::as_str);
        self.emit(json!({
            "event": "device_batch", "device": device, "samples": tally.samples, "images": tally.images,
            "model_s": round3(tally.model_s), "images_per_s": round3(tally.images_per_s()),
            "busy": round3(tally.busy()),
        }));
        if let Some((_, _, devs)) = &self.bars {
            if let Some(b) = devs.get(device_index) {
                b.inc(added);
                b.set_message(format!(
                    "{:.2} img/s, busy {:.0}%",
                    tally.images_per_s(),
                    100.0 * tally.busy()
                ));
            }
        }
    }

    pub fn sample_done(&self, record: &SampleRecord, done: u64) {
        let (sample_id, error) = (&record.sample_id, record.error.as_deref());
        self.emit(json!({
            "event": "sample_done", "sample_id": sample_id, "status": record.status,
            "error": error, "done": done, "total": self.total,
            "duration_ms": record.duration_ms, "queue_ms": record.queue_ms,
        }));
        if let Some((multi, overall, _)) = &self.bars {
            overall.set_position(done);
            if let Some(e) = error {
                let _ = multi.println(format!("failed {sample_id}: {e}"));
            }
        }
    }

    pub fn finish(&self, done: u64, failed: u64, elapsed_s: f64) {
        self.emit(json!({
            "event": "finish", "done": done, "failed": failed, "total": self.total,
            "elapsed_s": elapsed_s,
        }));
        if let Some((_, overall, devs)) = &self.bars {
            for b in devs {
                b.finish();
            }
            overall.finish();
        }
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

impl PoolEvents for Progress {
    fn device_ready(&self, device: &str, load_seconds: f64) {
        Progress::device_ready(self, device, load_seconds);
    }

    fn device_progress(&self, device_index: usize, added: u64, tally: &DeviceTally) {
        self.device_samples(device_index, added, tally);
    }
}
