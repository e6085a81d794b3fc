//! COCO instances: `annotations/instances_<split>.json` and `images/<split>/<sample_id>.<ext>`. One annotation per
//! image with a non-empty mask: its box and area from the mask itself, its segmentation as uncompressed RLE.
//! Images without a mask (image-source rows) get an image entry and no annotation: they are for classification.

use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use super::mask::Mask;
use super::progress::ExportProgress;
use super::rle::Rle;
use super::selection::{labels, splits, ExportItem};
use super::written::Written;
use crate::output::tree::link_or_copy;

#[derive(Serialize)]
struct Dataset {
    info: Info,
    licenses: Vec<()>,
    images: Vec<Image>,
    annotations: Vec<Annotation>,
    categories: Vec<Category>,
}

#[derive(Serialize)]
struct Info {
    description: String,
    version: &'static str,
}

#[derive(Serialize)]
struct Image {
    id: u64,
    file_name: String,
    width: u32,
    height: u32,
    sample_id: String,
    label: String,
}

#[derive(Serialize)]
struct Annotation {
    id: u64,
    image_id: u64,
    category_id: u64,
    bbox: [i64; 4],
    area: u64,
    segmentation: Rle,
    /// 0 though the segmentation is RLE: each mask is one object, and `iscrowd: 1` would make COCOeval ignore
    /// it (a crowd region matches any detection and counts for nothing). pycocotools reads RLE whose counts are a
    /// list whatever iscrowd says (`annToRLE` → `frPyObjects`), and so do detectron2 and torchvision's helpers.
    iscrowd: u8,
}

#[derive(Serialize, Clone)]
struct Category {
    id: u64,
    name: String,
    supercategory: String,
}

pub fn write(dir: &Path, items: &[ExportItem], progress: &mut ExportProgress) -> Result<Written> {
    let names = labels(items);
    let categories: Vec<Category> = names
        .iter()
        .enumerate()
        .map(|(i, name)| Category {
            id: i as u64 + 1,
            name: name.clone(),
            supercategory: "object".into(),
        })
        .collect();
    let mut written = Written::default();
    for split in splits(items) {
        let image_dir = dir.join("images").join(split.name());
        let mut dataset = Dataset {
            info: Info {
                description: format!("texaug export, {} split", split.name()),
                version: env!("CARGO_PKG_VERSION"),
            },
            licenses: Vec::new(),
            images: Vec::new(),
            annotations: Vec::new(),
            categories: Vec::new(),
        };
        for item in items.iter().filter(|i| i.split == split) {
            let file_name = item.file_name();
            let dest = image_dir.join(&file_name);
            link_or_copy(&item.image, &dest, false).with_context(|| {
                format!("placing {} at {}", item.image.display(), dest.display())
            })?;
            let image_id = dataset.images.len() as u64 + 1;
            dataset.images.push(Image {
                id: image_id,
                file_name,
                width: item.width,
                height: item.height,
                sample_id: item.record.sample_id.clone(),
                label: item.record.label.clone(),
            });
            if let Some(path) = &item.mask {
                let mask = Mask::read_for(path, item.width, item.height)
                    .with_context(|| format!("sample {}", item.record.sample_id))?;
                if let Some(bbox) = mask.extent() {
                    let category = names.binary_search(&item.record.label).unwrap_or(0);
                    dataset.annotations.push(Annotation {
                        id: dataset.annotations.len() as u64 + 1,
                        image_id,
                        category_id: category as u64 + 1,
                        bbox,
                        area: mask.area(),
                        segmentation: Rle::encode(&mask),
                        iscrowd: 0,
                    });
                }
            }
            progress.sample_done(&item.record.sample_id);
        }
        written.samples += dataset.images.len();
        written.annotations += dataset.annotations.len();
        dataset.categories = categories.clone();
        let path = dir
            .join("annotations")
            .join(format!("instances_{}.json", split.name()));
        write_json(&path, &dataset)?;
    }
    Ok(written)
}

fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))?;
        let mut w = BufWriter::new(std::fs::File::create(path)?);
        serde_json::to_writer(&mut w, value)?;
        w.write_all(b"\n")?;
        w.flush()
    };
    write().with_context(|| format!("writing {}", path.display()))
}
