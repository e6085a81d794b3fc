//! Which rows an export holds and in which split: ok rows with an image (a mesh row has only its GLB), in sample-id
//! order, each split taken from the source manifest or else drawn per *source*, so every view and variant of one
//! object lands in the same split and validation never sees an object training saw.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use super::paths::resolve_inside;
use crate::output::layout::is_sample_id;
use crate::output::record::SampleRecord;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Split {
    Train,
    Validation,
    Test,
}

impl Split {
    pub const ALL: [Split; 3] = [Split::Train, Split::Validation, Split::Test];

    /// The Hugging Face name (`datasets` finds these folders and file prefixes by name).
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Validation => "validation",
            Split::Test => "test",
        }
    }

    /// The Ultralytics name.
    pub fn short_name(self) -> &'static str {
        match self {
            Split::Validation => "val",
            other => other.name(),
        }
    }

    /// A manifest's `split` value; `None` when it gives none (the seeded draw decides).
    fn from_manifest(value: &str) -> Option<Result<Split, String>> {
        let v = value.trim().to_ascii_lowercase();
        Some(match v.as_str() {
            "" => return None,
            "train" | "training" => Ok(Split::Train),
            "val" | "valid" | "validation" | "dev" => Ok(Split::Validation),
            "test" | "testing" => Ok(Split::Test),
            _ => Err(value.to_string()),
        })
    }
}

/// One exported sample: its row, its split, and its files, checked to lie inside the output folder.
#[derive(Debug, Clone)]
pub struct ExportItem {
    pub record: SampleRecord,
    pub split: Split,
    pub image: PathBuf,
    /// `png` or `jpg`, as the image's own file name says.
    pub image_ext: String,
    pub width: u32,
    pub height: u32,
    pub mask: Option<PathBuf>,
}

impl ExportItem {
    /// The row's box (COCO x, y, w, h in pixels), when it has one that is not empty.
    pub fn bbox(&self) -> Option<[i64; 4]> {
        let r = &self.record;
        let b = [r.bbox_x?, r.bbox_y?, r.bbox_w?, r.bbox_h?];
        (b[2] > 0 && b[3] > 0).then_some(b)
    }

    /// The image's file name in an export: the sample id and the image's extension.
    pub fn file_name(&self) -> String {
        format!("{}.{}", self.record.sample_id, self.image_ext)
    }
}

/// What a selection left out, for the summary.
#[derive(Debug, Default, Clone, Copy)]
pub struct Skipped {
    pub failed: usize,
    /// Below their stage's `min_clip_score`: not part of the training set.
    pub filtered: usize,
    /// Ok rows without an image: meshes (their GLB is their sample).
    pub without_image: usize,
}

/// The rows to export, sorted by sample id, and what was left out.
pub fn select(
    output: &Path,
    records: Vec<SampleRecord>,
    val_ratio: f64,
    seed: u64,
) -> Result<(Vec<ExportItem>, Skipped)> {
    if !(0.0..=1.0).contains(&val_ratio) {
        bail!("--val-ratio {val_ratio} is not in [0, 1]; 0.1 puts a tenth of the sources in validation");
    }
    let mut skipped = Skipped::default();
    let mut items = Vec::new();
    for record in records {
        if record.is_filtered() {
            skipped.filtered += 1;
            continue;
        }
        if !record.is_ok() {
            skipped.failed += 1;
            continue;
        }
        let Some(image_path) = record.image_path.clone() else {
            skipped.without_image += 1;
            continue;
        };
        let row = || format!("sample {} (source {})", record.sample_id, record.source_id);
        if !is_sample_id(&record.sample_id) {
            bail!(
                "{}: the sample id is not one texaug makes (16 hex digits); the manifest was edited or is corrupt",
                row()
            );
        }
        let split = match record.split.as_deref().and_then(Split::from_manifest) {
            Some(Ok(s)) => s,
            Some(Err(v)) => bail!(
                "{}: split `{v}` is not train, validation (val, valid, dev) or test; fix the source manifest's \
                 split column, or leave it empty to draw the split with --val-ratio",
                row()
            ),
            None => drawn_split(&record.source_id, seed, val_ratio),
        };
        let image = resolve_inside(output, &image_path)
            .with_context(|| format!("{}: image_path", row()))?;
        let image_ext = match image
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("png") => "png".to_string(),
            Some("jpg" | "jpeg") => "jpg".to_string(),
            Some("webp") => "webp".to_string(),
            _ => bail!(
                "{}: image_path `{image_path}` is not a PNG, JPEG or WebP file name",
                row()
            ),
        };
        let (width, height) = image::image_dimensions(&image)
            .with_context(|| format!("{}: reading the size of {}", row(), image.display()))?;
        let mask = match &record.mask_path {
            Some(rel) => {
                Some(resolve_inside(output, rel).with_context(|| format!("{}: mask_path", row()))?)
            }
            None => None,
        };
        items.push(ExportItem {
            record,
            split,
            image,
            image_ext,
            width,
            height,
            mask,
        });
    }
    items.sort_by(|a, b| a.record.sample_id.cmp(&b.record.sample_id));
    Ok((items, skipped))
}

/// Validation when the source's hash, with the seed, falls below the ratio: the same source, seed and ratio give
/// the same split on every export and every machine.
pub fn drawn_split(source_id: &str, seed: u64, val_ratio: f64) -> Split {
    let mut h = Sha256::new();
    h.update(seed.to_le_bytes());
    h.update(source_id.as_bytes());
    let digest = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    // 53 bits, so the fraction is exact in an f64 and a ratio of 1 takes every source.
    let fraction = (u64::from_be_bytes(first) >> 11) as f64 / (1u64 << 53) as f64;
    if fraction < val_ratio {
        Split::Validation
    } else {
        Split::Train
    }
}

/// The sorted labels of the items: class ids are their positions, the same in every split.
pub fn labels(items: &[ExportItem]) -> Vec<String> {
    let set: BTreeSet<&str> = items.iter().map(|i| i.record.label.as_str()).collect();
    set.into_iter().map(str::to_string).collect()
}

/// The splits that hold at least one item, in train, validation, test order.
pub fn splits(items: &[ExportItem]) -> Vec<Split> {
    Split::ALL
        .into_iter()
        .filter(|s| items.iter().any(|i| i.split == *s))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::record::tests::record;

    #[test]
    fn a_source_keeps_its_split_and_the_ratio_is_roughly_honoured() {
        assert_eq!(drawn_split("mug", 7, 0.3), drawn_split("mug", 7, 0.3));
        let n = 10_000;
        let val = (0..n)
            .filter(|i| drawn_split(&format!("source-{i}"), 7, 0.2) == Split::Validation)
            .count();
        assert!((1800..2200).contains(&val), "{val} of {n}");
        assert!((0..100).all(|i| drawn_split(&i.to_string(), 1, 0.0) == Split::Train));
        assert!((0..100).all(|i| drawn_split(&i.to_string(), 1, 1.0) == Split::Validation));
        let moved = (0..1000)
            .filter(|i| drawn_split(&i.to_string(), 1, 0.5) != drawn_split(&i.to_string(), 2, 0.5))
            .count();
        assert!(moved > 300, "the seed changes the draw: {moved}");
    }

    #[test]
    fn every_view_of_a_source_lands_in_its_split_and_manifest_splits_win() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path();
        let mut rows = Vec::new();
        for (n, source) in ["mug", "mug", "mug", "cup", "cup", "bowl"]
            .iter()
            .enumerate()
        {
            let id = format!("{n:016x}");
            let mut r = record(&id, "ok");
            r.source_id = source.to_string();
            r.image_path = Some(format!("samples/{id}.png"));
            std::fs::create_dir_all(out.join("samples")).unwrap();
            image::RgbImage::new(4, 3)
                .save(out.join(format!("samples/{id}.png")))
                .unwrap();
            rows.push(r);
        }
        rows[5].split = Some("Val".into());
        let mut mesh = record("00000000000000ff", "ok");
        mesh.image_path = None;
        rows.push(mesh);
        rows.push(record("00000000000000fe", "failed"));
        let (items, skipped) = select(out, rows.clone(), 0.5, 3).unwrap();
        assert_eq!(
            (items.len(), skipped.failed, skipped.without_image),
            (6, 1, 1)
        );
        for i in &items {
            let first = items
                .iter()
                .find(|j| j.record.source_id == i.record.source_id)
                .unwrap();
            assert_eq!(i.split, first.split);
        }
        assert_eq!(items[5].split, Split::Validation);
        assert_eq!(
            (items[0].width, items[0].height, items[0].image_ext.as_str()),
            (4, 3, "png")
        );

        rows[0].split = Some("holdout".into());
        let e = format!("{:#}", select(out, rows.clone(), 0.5, 3).unwrap_err());
        assert!(
            e.contains("holdout") && e.contains("0000000000000000"),
            "{e}"
        );
        rows[0].split = None;
        rows[0].image_path = Some("../../etc/passwd".into());
        let e = format!("{:#}", select(out, rows, 0.5, 3).unwrap_err());
        assert!(e.contains("0000000000000000") && e.contains(".."), "{e}");
    }
}
