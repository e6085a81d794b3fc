//! Progress of an export, one step per sample: a bar, or JSON events (one per line), both on stderr so stdout keeps
//! only the summary.

use std::io::Write;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use crate::engine::progress::ProgressMode;

pub struct ExportProgress {
    mode: ProgressMode,
    total: u64,
    done: u64,
    bar: Option<ProgressBar>,
}

impl ExportProgress {
    pub fn new(mode: ProgressMode, format: &str, total: usize) -> ExportProgress {
        let total = total as u64;
        let bar = (mode == ProgressMode::Bar).then(|| {
            let style = ProgressStyle::with_template(
                "{prefix:>8} [{elapsed_precise}] {wide_bar} {pos}/{len} {per_sec} ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
                .with_style(style);
            bar.set_prefix("export");
            bar
        });
        let progress = ExportProgress {
            mode,
            total,
            done: 0,
            bar,
        };
        progress.emit(json!({"event": "start", "format": format, "total": total}));
        progress
    }

    fn emit(&self, value: serde_json::Value) {
        if self.mode == ProgressMode::Json {
            // A closed stderr must not stop the export.
            let _ = writeln!(std::io::stderr().lock(), "{value}");
        }
    }

    pub fn sample_done(&mut self, sample_id: &str) {
        self.done += 1;
        self.emit(json!({
            "event": "sample_done", "sample_id": sample_id, "done": self.done, "total": self.total,
        }));
        if let Some(bar) = &self.bar {
            bar.set_position(self.done);
        }
    }

    pub fn finish(&self) {
        self.emit(json!({"event": "finish", "done": self.done, "total": self.total}));
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}
