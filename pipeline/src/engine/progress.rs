//! Progress: bars on stderr (overall and one per device), JSON events on stdout for cluster logs, or nothing.
//! JSON events are printed after the sample is in the journal, so a reader that counts `sample_done` events
//! never counts a sample a resumed run would redo.

use std::io::Write;
use std::sync::Mutex;

use clap::ValueEnum;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use super::work::PoolEvents;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressMode {
    /// Progress bars on stderr (overall and one per device).
    Bar,
    /// One JSON event per line on stdout, for cluster logs.
    Json,
    /// Nothing but errors and the final summary.
    None,
}

pub struct Progress {
    mode: ProgressMode,
    total: u64,
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

    pub fn device_samples(&self, device_index: usize, n: u64) {
        if let Some((_, _, devs)) = &self.bars {
            if let Some(b) = devs.get(device_index) {
                b.inc(n);
            }
        }
    }

    pub fn sample_done(&self, sample_id: &str, status: &str, error: Option<&str>, done: u64) {
        self.emit(json!({
            "event": "sample_done", "sample_id": sample_id, "status": status,
            "error": error, "done": done, "total": self.total,
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

impl PoolEvents for Progress {
    fn device_ready(&self, device: &str, load_seconds: f64) {
        Progress::device_ready(self, device, load_seconds);
    }

    fn device_progress(&self, device_index: usize, samples: u64) {
        self.device_samples(device_index, samples);
    }
}
