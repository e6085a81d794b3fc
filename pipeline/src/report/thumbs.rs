//! The page's thumbnails: each sample's image downscaled to at most [`THUMB_PX`] on its longer side, as PNG, made
//! in parallel so a page of thousands of samples loads fast and is made in seconds.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use clap::ValueEnum;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;
use serde_json::json;

use super::tile::checked_rel;

pub const THUMB_PX: u32 = 160;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ThumbProgress {
    /// A progress bar over the thumbnails on stderr.
    Bar,
    /// One JSON event per line on stdout: thumb_done per thumbnail (sample_id, status, error, done, total).
    Json,
    /// Nothing but errors and the final summary.
    None,
}

/// One thumbnail to make: `source` is relative to the output folder, `dest` an absolute file path.
#[derive(Debug, Clone)]
pub struct ThumbJob {
    pub sample_id: String,
    pub source: String,
    pub dest: PathBuf,
}

/// Makes every thumbnail; returns each job's sample id with the thumbnail's size, or why it could not be made.
pub fn make_thumbs(
    output: &Path,
    jobs: &[ThumbJob],
    progress: ThumbProgress,
) -> Vec<(String, Result<[u32; 2], String>)> {
    // Resolved once, so a symlink inside the output that points elsewhere is caught by a prefix test.
    let root = output.canonicalize();
    let total = jobs.len() as u64;
    let bar = (progress == ThumbProgress::Bar).then(|| {
        let style = ProgressStyle::with_template(
            "  thumbs [{elapsed_precise}] {wide_bar} {pos}/{len} {per_sec} ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr()).with_style(style)
    });
    let done = AtomicU64::new(0);
    let stdout = Mutex::new(std::io::stdout());
    let results = jobs
        .par_iter()
        .map(|job| {
            let result = match &root {
                Ok(root) => thumb(root, job),
                Err(e) => Err(format!("{}: {e}", output.display())),
            };
            let n = done.fetch_add(1, Ordering::Relaxed) + 1;
            if let Some(b) = &bar {
                b.inc(1);
            }
            if progress == ThumbProgress::Json {
                let event = json!({
                    "event": "thumb_done", "sample_id": job.sample_id,
                    "status": if result.is_ok() { "ok" } else { "failed" },
                    "error": result.as_ref().err(), "done": n, "total": total,
                });
                if let Ok(mut out) = stdout.lock() {
                    // A closed stdout must not stop the report.
                    let _ = writeln!(out, "{event}");
                }
            }
            (job.sample_id.clone(), result)
        })
        .collect();
    if let Some(b) = bar {
        b.finish();
    }
    results
}

fn thumb(root: &Path, job: &ThumbJob) -> Result<[u32; 2], String> {
    let rel = checked_rel(&job.source)?;
    let path = root.join(rel);
    let real = path.canonicalize().map_err(|e| format!("{rel}: {e}"))?;
    if !real.starts_with(root) {
        return Err(format!(
            "{rel} leads outside the output folder (to {}); it was not followed",
            real.display()
        ));
    }
    let image = image::ImageReader::open(&real)
        .and_then(|r| r.with_guessed_format())
        .map_err(|e| format!("{rel}: {e}"))?
        .decode()
        .map_err(|e| format!("{rel}: cannot decode the image: {e}"))?;
    let small = if image.width() > THUMB_PX || image.height() > THUMB_PX {
        image.thumbnail(THUMB_PX, THUMB_PX)
    } else {
        image
    };
    small
        .to_rgba8()
        .save_with_format(&job.dest, image::ImageFormat::Png)
        .map_err(|e| format!("writing {}: {e}", job.dest.display()))?;
    Ok([small.width(), small.height()])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(dir: &Path, index: usize, source: &str) -> ThumbJob {
        ThumbJob {
            sample_id: source.to_string(),
            source: source.to_string(),
            dest: dir.join("thumbs").join(format!("{index}.png")),
        }
    }

    #[test]
    fn thumbs_fit_the_box_and_nothing_outside_the_output_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir_all(out.join("samples")).unwrap();
        std::fs::create_dir_all(dir.path().join("thumbs")).unwrap();
        image::RgbImage::from_pixel(400, 200, image::Rgb([9, 200, 30]))
            .save(out.join("samples/wide.png"))
            .unwrap();
        image::RgbImage::new(8, 8)
            .save(dir.path().join("secret.png"))
            .unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret.png"), out.join("samples/link.png"))
            .unwrap();
        std::fs::write(out.join("samples/junk.png"), b"not an image").unwrap();
        let jobs = [
            job(dir.path(), 0, "samples/wide.png"),
            job(dir.path(), 1, "samples/link.png"),
            job(dir.path(), 2, "../secret.png"),
            job(dir.path(), 3, "samples/junk.png"),
            job(dir.path(), 4, "samples/missing.png"),
        ];
        let results = make_thumbs(&out, &jobs, ThumbProgress::None);
        let small = image::open(&jobs[0].dest).unwrap();
        assert_eq!((small.width(), small.height()), (THUMB_PX, THUMB_PX / 2));
        assert_eq!(results[0].1, Ok([THUMB_PX, THUMB_PX / 2]));
        let errors: Vec<String> = results[1..]
            .iter()
            .map(|(_, r)| r.clone().unwrap_err())
            .collect();
        assert!(
            errors[0].contains("leads outside the output folder"),
            "{errors:?}"
        );
        assert!(errors[1].contains("climbs out"), "{errors:?}");
        assert!(errors[2].contains("cannot decode"), "{errors:?}");
        assert!(errors[3].contains("missing.png"), "{errors:?}");
        assert!(jobs[1..].iter().all(|j| !j.dest.exists()));
    }
}
