//! WebDataset: tar shards `<split>-NNNNNN.tar` of `--shard-size` samples, each sample its files under the sample
//! id (`<id>.png` or `.jpg`, `<id>.json` with the row, `<id>.mask.png`). The bytes depend on the samples alone:
//! entries sorted, mtime 0, owner 0:0, mode 0644, so two exports of one output are the same files.

use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result};

use super::progress::ExportProgress;
use super::selection::{splits, ExportItem};
use super::written::Written;

pub fn write(
    dir: &Path,
    items: &[ExportItem],
    shard_size: usize,
    progress: &mut ExportProgress,
) -> Result<Written> {
    let mut written = Written::default();
    for split in splits(items) {
        let in_split: Vec<&ExportItem> = items.iter().filter(|i| i.split == split).collect();
        for (n, shard) in in_split.chunks(shard_size.max(1)).enumerate() {
            let path = dir.join(format!("{}-{n:06}.tar", split.name()));
            write_shard(&path, shard, progress)
                .with_context(|| format!("writing the shard {}", path.display()))?;
        }
        written.samples += in_split.len();
        written.annotations += in_split.iter().filter(|i| i.mask.is_some()).count();
    }
    Ok(written)
}

fn write_shard(path: &Path, items: &[&ExportItem], progress: &mut ExportProgress) -> Result<()> {
    let file = std::fs::File::create(path)?;
    let mut tar = tar::Builder::new(BufWriter::new(file));
    for item in items {
        let id = &item.record.sample_id;
        let mut entries = vec![
            (item.file_name(), read(&item.image)?),
            (format!("{id}.json"), row_json(item)?),
        ];
        if let Some(mask) = &item.mask {
            entries.push((format!("{id}.mask.png"), read(mask)?));
        }
        entries.sort();
        for (name, bytes) in entries {
            let mut header = tar::Header::new_ustar();
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(0);
            header.set_uid(0);
            header.set_gid(0);
            tar.append_data(&mut header, &name, bytes.as_slice())?;
        }
        progress.sample_done(id);
    }
    let mut out = tar.into_inner()?;
    out.flush()?;
    Ok(())
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// The row as the manifest holds it, with the split it was exported to and the image's size.
fn row_json(item: &ExportItem) -> Result<Vec<u8>> {
    let mut value = serde_json::to_value(&item.record)?;
    if let Some(map) = value.as_object_mut() {
        map.insert("split".into(), item.split.name().into());
        map.insert("width".into(), item.width.into());
        map.insert("height".into(), item.height.into());
    }
    Ok(serde_json::to_vec(&value)?)
}
