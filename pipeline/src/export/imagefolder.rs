//! Hugging Face ImageFolder: `<split>/<label>/<sample_id>.<ext>` and one `metadata.jsonl` per split folder, which
//! `datasets.load_dataset("imagefolder", data_dir=…)` joins to the images by `file_name`.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::json;

use super::progress::ExportProgress;
use super::selection::{splits, ExportItem};
use super::written::Written;
use crate::output::tree::link_or_copy;

pub fn write(dir: &Path, items: &[ExportItem], progress: &mut ExportProgress) -> Result<Written> {
    let mut written = Written::default();
    for split in splits(items) {
        let split_dir = dir.join(split.name());
        let mut lines = String::new();
        for item in items.iter().filter(|i| i.split == split) {
            let rel = format!("{}/{}", label_folder(&item.record.label), item.file_name());
            let dest = split_dir.join(&rel);
            link_or_copy(&item.image, &dest, false).with_context(|| {
                format!("placing {} at {}", item.image.display(), dest.display())
            })?;
            lines.push_str(&metadata_line(item, &rel).to_string());
            lines.push('\n');
            written.samples += 1;
            written.annotations += usize::from(item.bbox().is_some());
            progress.sample_done(&item.record.sample_id);
        }
        let path = split_dir.join("metadata.jsonl");
        std::fs::File::create(&path)
            .and_then(|mut f| f.write_all(lines.as_bytes()))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(written)
}

/// Every line has the same keys with the same types, none null: `datasets` infers each split's columns from its own
/// file and refuses splits whose columns differ, and a split of image sources only would have all-null box
/// columns (typed `null`) where another split's are integers. So a row without a box has `has_bbox: false` and
/// `bbox: [0, 0, 0, 0]`, and absent texts are "".
fn metadata_line(item: &ExportItem, file_name: &str) -> serde_json::Value {
    let r = &item.record;
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    json!({
        "file_name": file_name,
        "label": r.label,
        "sample_id": r.sample_id,
        "source_id": r.source_id,
        "source_kind": r.source_kind,
        "stage": r.stage,
        "variant": r.variant,
        "prompt": r.prompt,
        "seed": r.seed,
        "strength": r.strength,
        "width": item.width,
        "height": item.height,
        "has_bbox": item.bbox().is_some(),
        "bbox": item.bbox().unwrap_or([0; 4]),
        "parent_sample_id": text(&r.parent_sample_id),
        "camera": text(&r.camera),
        "background": text(&r.background),
    })
}

/// A label as one folder name: letters, digits, `-`, `_` and inner dots kept, anything else `_`. Two labels that
/// differ only there share a folder, which is harmless: the label itself is in metadata.jsonl, and file names are
/// sample ids.
pub fn label_folder(label: &str) -> String {
    let s: String = label
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let s = s.trim_start_matches('.');
    if s.is_empty() {
        "_".to_string()
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_become_single_safe_folder_names() {
        assert_eq!(label_folder("wooden crate"), "wooden_crate");
        assert_eq!(label_folder("../etc"), "_etc");
        assert_eq!(label_folder(".."), "_");
        assert_eq!(label_folder(""), "_");
        assert_eq!(label_folder("a/b\\c"), "a_b_c");
        assert_eq!(label_folder("Kaffeetasse-2.0"), "Kaffeetasse-2.0");
    }
}
