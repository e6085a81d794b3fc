//! Ultralytics YOLO: `images/<split>/<sample_id>.<ext>`, `labels/<split>/<sample_id>.txt` (one `class cx cy w h`
//! line per box, normalised to [0, 1]) and `data.yaml`. Only images with a mask are written: a view whose mask is
//! empty is a true background (an empty label file), but an image source has an object and no box, and as an empty
//! label file it would teach the detector that the object is background.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};

use super::mask::Mask;
use super::progress::ExportProgress;
use super::selection::{labels, splits, ExportItem, Split};
use super::written::Written;
use crate::output::tree::link_or_copy;

pub fn write(
    dir: &Path,
    final_dir: &Path,
    items: &[ExportItem],
    progress: &mut ExportProgress,
) -> Result<Written> {
    let names = labels(items);
    let mut written = Written::default();
    let mut present = Vec::new();
    for split in splits(items) {
        let mut any = false;
        for item in items.iter().filter(|i| i.split == split) {
            progress.sample_done(&item.record.sample_id);
            let Some(bbox) = box_of(item)? else {
                written.left_out += 1;
                continue;
            };
            any = true;
            let image = dir
                .join("images")
                .join(split.short_name())
                .join(item.file_name());
            link_or_copy(&item.image, &image, false).with_context(|| {
                format!("placing {} at {}", item.image.display(), image.display())
            })?;
            let mut text = String::new();
            if let Some(b) = bbox {
                let class = names.binary_search(&item.record.label).unwrap_or(0);
                text = yolo_line(class, b, item.width, item.height) + "\n";
                written.annotations += 1;
            }
            let label = dir
                .join("labels")
                .join(split.short_name())
                .join(format!("{}.txt", item.record.sample_id));
            std::fs::create_dir_all(label.parent().unwrap_or(dir))
                .and_then(|()| std::fs::write(&label, text))
                .with_context(|| format!("writing {}", label.display()))?;
            written.samples += 1;
        }
        if any {
            present.push(split);
        }
    }
    let yaml = data_yaml(final_dir, &present, &names);
    let path = dir.join("data.yaml");
    std::fs::write(&path, yaml).with_context(|| format!("writing {}", path.display()))?;
    Ok(written)
}

/// `None`: the item has no mask, so no place in a detection set. `Some(None)`: its mask is empty (background).
fn box_of(item: &ExportItem) -> Result<Option<Option<[i64; 4]>>> {
    let Some(mask) = &item.mask else {
        return Ok(None);
    };
    if let Some(b) = item.bbox() {
        return Ok(Some(Some(b)));
    }
    // A row with a mask but no box columns: the box is the mask's extent, as the render stage computes it.
    let mask = Mask::read_for(mask, item.width, item.height)
        .with_context(|| format!("sample {}", item.record.sample_id))?;
    Ok(Some(mask.extent()))
}

/// A pixel box (x, y, w, h) as YOLO's `class cx cy w h`, each a fraction of the image's size.
pub fn yolo_line(class: usize, [x, y, w, h]: [i64; 4], width: u32, height: u32) -> String {
    let (iw, ih) = (f64::from(width), f64::from(height));
    let (x, y, w, h) = (x as f64, y as f64, w as f64, h as f64);
    let clamp = |v: f64| v.clamp(0.0, 1.0);
    format!(
        "{class} {:.6} {:.6} {:.6} {:.6}",
        clamp((x + w / 2.0) / iw),
        clamp((y + h / 2.0) / ih),
        clamp(w / iw),
        clamp(h / ih)
    )
}

fn data_yaml(final_dir: &Path, present: &[Split], names: &[String]) -> String {
    let mut y = String::from(
        "# Written by texaug export (Ultralytics YOLO layout). `path` is where the export was written: after moving\n\
         # the folder, change it, or remove the line and Ultralytics uses this file's folder.\n",
    );
    // JSON strings are YAML double-quoted scalars, so any path or label is quoted correctly.
    let quoted = |s: &str| serde_json::Value::from(s).to_string();
    let _ = writeln!(y, "path: {}", quoted(&final_dir.to_string_lossy()));
    let _ = writeln!(y, "train: images/train");
    if present.contains(&Split::Validation) {
        let _ = writeln!(y, "val: images/val");
    } else {
        let _ = writeln!(
            y,
            "val: images/train  # no validation split (see --val-ratio): validation reads the training images"
        );
    }
    if present.contains(&Split::Test) {
        let _ = writeln!(y, "test: images/test");
    }
    let _ = writeln!(y, "names:");
    for (i, name) in names.iter().enumerate() {
        let _ = writeln!(y, "  {i}: {}", quoted(name));
    }
    y
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxes_are_normalised_centres_and_sizes() {
        assert_eq!(
            yolo_line(2, [10, 20, 30, 40], 100, 200),
            "2 0.250000 0.200000 0.300000 0.200000"
        );
        // The whole image is the unit box.
        assert_eq!(
            yolo_line(0, [0, 0, 64, 48], 64, 48),
            "0 0.500000 0.500000 1.000000 1.000000"
        );
    }

    #[test]
    fn data_yaml_names_every_class_in_order_and_quotes_them() {
        let y = data_yaml(
            Path::new("/data/ex"),
            &[Split::Train, Split::Validation],
            &["mug".into(), "wooden: crate".into()],
        );
        assert!(y.contains("path: \"/data/ex\"\n"), "{y}");
        assert!(y.contains("val: images/val\n"));
        assert!(
            y.contains("names:\n  0: \"mug\"\n  1: \"wooden: crate\"\n"),
            "{y}"
        );
    }
}
