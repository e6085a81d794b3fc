//! Hugging Face Parquet: `data/<split>-NNNNN-of-NNNNN.parquet` of `--shard-size` rows, the file names and the
//! `image` column as `datasets` writes them (a struct of the file's bytes and name, its Image feature), and the
//! features in the schema's `huggingface` metadata, so `load_dataset("parquet", …)` decodes images as PIL images
//! and keeps each column's type.

use std::path::Path;

use anyhow::{Context, Result};
use base64::Engine as _;
use polars::prelude::{
    ArrowDataType, BooleanChunked, Column, CompatLevel, DataFrame, IntoSeries, KeyValueMetadata,
    NamedFrom, NewChunkedArray, ParquetWriter, SchemaExt, Series, StructChunked,
};
use polars_arrow::datatypes::{ArrowSchema, Metadata};
use polars_arrow::io::ipc::write::{default_ipc_fields, schema_to_bytes};
use serde_json::json;

use super::progress::ExportProgress;
use super::selection::{splits, ExportItem};
use super::written::Written;

const ARROW_SCHEMA_KEY: &str = "ARROW:schema";

pub fn write(
    dir: &Path,
    items: &[ExportItem],
    shard_size: usize,
    progress: &mut ExportProgress,
) -> Result<Written> {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).with_context(|| format!("making {}", data.display()))?;
    let mut written = Written::default();
    for split in splits(items) {
        let in_split: Vec<&ExportItem> = items.iter().filter(|i| i.split == split).collect();
        let shards: Vec<&[&ExportItem]> = in_split.chunks(shard_size.max(1)).collect();
        for (n, shard) in shards.iter().enumerate() {
            let path = data.join(format!(
                "{}-{n:05}-of-{:05}.parquet",
                split.name(),
                shards.len()
            ));
            let df = frame(shard).with_context(|| format!("building {}", path.display()))?;
            let file = std::fs::File::create(&path)
                .with_context(|| format!("writing {}", path.display()))?;
            // The batched writer: `finish` on a whole frame leaves the key-value metadata out.
            let result = ParquetWriter::new(file)
                .with_key_value_metadata(Some(metadata(&df)))
                .batched(df.schema())
                .and_then(|mut w| {
                    w.write_batch(&df)?;
                    w.finish().map(|_| ())
                });
            result.with_context(|| format!("writing {}", path.display()))?;
            for item in shard.iter() {
                progress.sample_done(&item.record.sample_id);
            }
        }
        written.samples += in_split.len();
        written.annotations += in_split.iter().filter(|i| i.bbox().is_some()).count();
    }
    Ok(written)
}

/// The columns and their `datasets` feature types, in order.
const VALUES: &[(&str, &str)] = &[
    ("label", "string"),
    ("sample_id", "string"),
    ("source_id", "string"),
    ("source_kind", "string"),
    ("stage", "string"),
    ("variant", "int64"),
    ("prompt", "string"),
    ("seed", "int64"),
    ("width", "int64"),
    ("height", "int64"),
    ("bbox_x", "int64"),
    ("bbox_y", "int64"),
    ("bbox_w", "int64"),
    ("bbox_h", "int64"),
    ("parent_sample_id", "string"),
    ("camera", "string"),
    ("background", "string"),
];

fn frame(items: &[&ExportItem]) -> Result<DataFrame> {
    let n = items.len();
    let mut images = Vec::with_capacity(n);
    let mut masks = Vec::with_capacity(n);
    for item in items {
        images.push(
            std::fs::read(&item.image)
                .with_context(|| format!("reading {}", item.image.display()))?,
        );
        masks.push(match &item.mask {
            Some(m) => Some(std::fs::read(m).with_context(|| format!("reading {}", m.display()))?),
            None => None,
        });
    }
    let names: Vec<String> = items.iter().map(|i| i.file_name()).collect();
    let mask_names: Vec<Option<String>> = items
        .iter()
        .map(|i| {
            i.mask
                .as_ref()
                .map(|_| format!("{}.mask.png", i.record.sample_id))
        })
        .collect();
    let image_bytes: Vec<Option<&[u8]>> = images.iter().map(|b| Some(b.as_slice())).collect();
    let mask_bytes: Vec<Option<&[u8]>> = masks.iter().map(|b| b.as_deref()).collect();
    let image_names: Vec<Option<&str>> = names.iter().map(|s| Some(s.as_str())).collect();
    let mask_names: Vec<Option<&str>> = mask_names.iter().map(|s| s.as_deref()).collect();

    let mut columns = vec![
        image_struct("image", &image_bytes, &image_names, None)?,
        image_struct(
            "mask",
            &mask_bytes,
            &mask_names,
            Some(&items.iter().map(|i| i.mask.is_some()).collect::<Vec<_>>()),
        )?,
    ];
    let text = |f: fn(&ExportItem) -> Option<String>| -> Column {
        let v: Vec<Option<String>> = items.iter().map(|i| f(i)).collect();
        Series::new("".into(), v).into()
    };
    let int = |f: fn(&ExportItem) -> Option<i64>| -> Column {
        let v: Vec<Option<i64>> = items.iter().map(|i| f(i)).collect();
        Series::new("".into(), v).into()
    };
    for (name, _) in VALUES {
        let column = match *name {
            "label" => text(|i| Some(i.record.label.clone())),
            "sample_id" => text(|i| Some(i.record.sample_id.clone())),
            "source_id" => text(|i| Some(i.record.source_id.clone())),
            "source_kind" => text(|i| Some(i.record.source_kind.clone())),
            "stage" => text(|i| Some(i.record.stage.clone())),
            "variant" => int(|i| Some(i.record.variant)),
            "prompt" => text(|i| Some(i.record.prompt.clone())),
            "seed" => int(|i| Some(i.record.seed)),
            "width" => int(|i| Some(i64::from(i.width))),
            "height" => int(|i| Some(i64::from(i.height))),
            "bbox_x" => int(|i| i.bbox().map(|b| b[0])),
            "bbox_y" => int(|i| i.bbox().map(|b| b[1])),
            "bbox_w" => int(|i| i.bbox().map(|b| b[2])),
            "bbox_h" => int(|i| i.bbox().map(|b| b[3])),
            "parent_sample_id" => text(|i| i.record.parent_sample_id.clone()),
            "camera" => text(|i| i.record.camera.clone()),
            "background" => text(|i| i.record.background.clone()),
            other => unreachable!("no value for the column {other}"),
        };
        columns.push(column.with_name((*name).into()));
    }
    Ok(DataFrame::new(n, columns)?)
}

/// `{bytes, path}` per row; `present` false makes the row's struct itself null (not a struct of nulls), which
/// `datasets` decodes as None where a struct of nulls would be an error.
fn image_struct(
    name: &str,
    bytes: &[Option<&[u8]>],
    paths: &[Option<&str>],
    present: Option<&[bool]>,
) -> Result<Column> {
    let fields = [
        Series::new("bytes".into(), bytes),
        Series::new("path".into(), paths),
    ];
    let mut s = StructChunked::from_series(name.into(), bytes.len(), fields.iter())?;
    if let Some(present) = present {
        let valid = BooleanChunked::from_slice("present".into(), present);
        let valid = valid.rechunk();
        s = s.with_outer_validity(Some(valid.downcast_as_array().values().clone()));
    }
    Ok(s.into_series().into())
}

/// The Arrow schema with plain (32-bit offset) strings and binaries, and the `datasets` features. `datasets` takes
/// a column's feature from the metadata only when the feature's Arrow type is the column's exactly, and the Image
/// feature's is `struct<bytes: binary, path: string>`; polars would declare string views or, at its oldest
/// compatibility level, large types. The Parquet pages are byte arrays whichever the schema names.
fn metadata(df: &DataFrame) -> KeyValueMetadata {
    let mut schema = df.schema().to_arrow(CompatLevel::oldest());
    for field in schema.iter_values_mut() {
        narrow(&mut field.dtype);
    }
    let huggingface = huggingface_features().to_string();
    KeyValueMetadata::from_static(vec![
        (
            ARROW_SCHEMA_KEY.to_string(),
            stored_arrow_schema(&schema, &huggingface),
        ),
        ("huggingface".to_string(), huggingface),
    ])
}

/// The `ARROW:schema` entry: the schema as an Arrow IPC message (length-prefixed, base64) carrying `huggingface`
/// in its own metadata, which is where pyarrow, and so `datasets`, reads a file's schema metadata from. polars'
/// `schema_to_metadata_key` leaves a nested schema's metadata out.
fn stored_arrow_schema(schema: &ArrowSchema, huggingface: &str) -> String {
    let mut custom = Metadata::new();
    custom.insert("huggingface".into(), huggingface.into());
    let message = schema_to_bytes(
        schema,
        &default_ipc_fields(schema.iter_values()),
        Some(&custom),
    );
    let mut prefixed = Vec::with_capacity(message.len() + 8);
    // The IPC continuation marker and the message length, as Arrow's Parquet writers store it.
    prefixed.extend_from_slice(&[255u8; 4]);
    prefixed.extend_from_slice(&(message.len() as u32).to_le_bytes());
    prefixed.extend_from_slice(&message);
    base64::engine::general_purpose::STANDARD.encode(prefixed)
}

/// `datasets`' DatasetInfo features, as it writes them itself.
fn huggingface_features() -> serde_json::Value {
    let mut features = serde_json::Map::new();
    features.insert("image".into(), json!({"_type": "Image"}));
    features.insert("mask".into(), json!({"_type": "Image"}));
    for (name, dtype) in VALUES {
        features.insert((*name).into(), json!({"dtype": dtype, "_type": "Value"}));
    }
    json!({"info": {"features": features}})
}

fn narrow(dtype: &mut ArrowDataType) {
    match dtype {
        ArrowDataType::LargeUtf8 | ArrowDataType::Utf8View => *dtype = ArrowDataType::Utf8,
        ArrowDataType::LargeBinary | ArrowDataType::BinaryView => *dtype = ArrowDataType::Binary,
        ArrowDataType::Struct(fields) => fields.iter_mut().for_each(|f| narrow(&mut f.dtype)),
        _ => {}
    }
}
