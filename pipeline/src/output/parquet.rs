//! The sample manifest as Parquet: `schema_version` and `texaug_version` in the file's key-value metadata, string
//! columns declared plain UTF-8 (large_string), never string views, so pyarrow, pandas, DuckDB, polars and Daft
//! open it as is.

use std::path::Path;

use anyhow::{anyhow, Context, Result};
use polars::prelude::{CompatLevel, DataFrame, KeyValueMetadata, ParquetWriter, SchemaExt};
use polars_parquet::arrow::write::schema_to_metadata_key;

use super::record::SampleRecord;
use crate::parquet_decode::decode_parquet;
use texaug_stages::file_read::read_input_file;
use texaug_stages::files;

/// 3: the render and score columns (`parent_sample_id` … `clip_score`) and the status `filtered`;
/// 4: `view_consistency_db`.
pub const SCHEMA_VERSION: &str = "4";
/// Versions this texaug reads: 2 and 3 lack only optional columns, which read as empty.
const READABLE_VERSIONS: &[&str] = &["2", "3", SCHEMA_VERSION];
/// The largest sample-manifest part read (one shard's rows; a million samples take about 100 MiB).
const MAX_SAMPLE_MANIFEST_BYTES: u64 = 16 << 30;
pub const SCHEMA_VERSION_KEY: &str = "schema_version";

/// The file's key-value metadata. polars declares strings as Arrow string views in the `ARROW:schema` entry that
/// Arrow readers follow; declaring the schema at the oldest compatibility level instead says large_string, and
/// the data pages (Parquet byte arrays) are the same either way.
fn metadata(df: &DataFrame) -> KeyValueMetadata {
    let arrow_schema = df.schema().to_arrow(CompatLevel::oldest());
    let arrow = schema_to_metadata_key(&arrow_schema);
    KeyValueMetadata::from_static(vec![
        (arrow.key, arrow.value.unwrap_or_default()),
        (SCHEMA_VERSION_KEY.to_string(), SCHEMA_VERSION.to_string()),
        (
            "texaug_version".to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
        ),
    ])
}

/// Writes the records as Parquet in one row group (the chunked writer with one chunk), for tests.
#[cfg(test)]
pub fn write_parquet(rows: &[SampleRecord], path: &Path) -> Result<()> {
    let mut once = Some(rows.to_vec());
    write_parquet_chunked(path, || Ok(once.take().filter(|r| !r.is_empty())))
}

/// Writes the records `next_chunk` hands out (one row group each, until it gives `None`) as Parquet, atomically:
/// memory is bounded by a chunk however many rows the part holds.
pub fn write_parquet_chunked(
    path: &Path,
    mut next_chunk: impl FnMut() -> Result<Option<Vec<SampleRecord>>>,
) -> Result<()> {
    let empty = SampleRecord::to_dataframe(&[])?;
    let metadata = metadata(&empty);
    let mut source_error = None;
    let written = files::write_atomic_with(path, |file| {
        let polars_error = |e: polars::prelude::PolarsError| std::io::Error::other(e.to_string());
        let mut writer = ParquetWriter::new(file)
            .with_key_value_metadata(Some(metadata))
            .batched(empty.schema())
            .map_err(polars_error)?;
        loop {
            match next_chunk() {
                Ok(Some(rows)) => {
                    let df = SampleRecord::to_dataframe(&rows)
                        .map_err(|e| std::io::Error::other(e.to_string()))?;
                    writer.write_batch(&df).map_err(polars_error)?;
                }
                Ok(None) => break,
                Err(e) => {
                    let message = format!("{e:#}");
                    source_error = Some(e);
                    return Err(std::io::Error::other(message));
                }
            }
        }
        writer.finish().map(|_| ()).map_err(polars_error)
    });
    if let Some(e) = source_error {
        return Err(e.context(format!("writing the sample manifest {}", path.display())));
    }
    written.with_context(|| format!("writing the sample manifest {}", path.display()))
}

/// Reads a manifest part back into records (for inspect and merge), checking its schema version.
pub fn read_parquet(path: &Path) -> Result<Vec<SampleRecord>> {
    // A part `texaug merge` reads may come from anywhere: read it capped, decode it guarded.
    let bytes = read_input_file(path, MAX_SAMPLE_MANIFEST_BYTES)
        .with_context(|| format!("reading manifest {}", path.display()))?;
    let (df, footer) = decode_parquet(bytes, u64::MAX)
        .map_err(|e| anyhow!("{}: not a readable Parquet file: {e}", path.display()))?;
    let version = footer.key_value_metadata().clone().and_then(|kv| {
        kv.into_iter()
            .find(|k| k.key == SCHEMA_VERSION_KEY)
            .and_then(|k| k.value)
    });
    match version.as_deref() {
        Some(v) if READABLE_VERSIONS.contains(&v) => {}
        Some(other) => {
            return Err(anyhow!(
                "{}: manifest schema version {other}, this texaug reads version {SCHEMA_VERSION}; \
                 use the texaug release that wrote it",
                path.display()
            ))
        }
        None => {
            return Err(anyhow!(
                "{}: not a texaug sample manifest (no `{SCHEMA_VERSION_KEY}` in its metadata)",
                path.display()
            ))
        }
    }
    SampleRecord::from_dataframe(&df)
        .with_context(|| format!("reading manifest {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::record::tests::record;

    #[test]
    fn records_round_trip_through_parquet_with_the_schema_version() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("part.parquet");
        let rows = vec![record("a", "ok"), record("b", "failed")];
        write_parquet(&rows, &p).unwrap();
        assert_eq!(read_parquet(&p).unwrap(), rows);
        // No temp file is left next to it.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn an_empty_manifest_still_has_every_column() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("part.parquet");
        write_parquet(&[], &p).unwrap();
        assert!(read_parquet(&p).unwrap().is_empty());
    }

    #[test]
    fn strings_are_declared_plain_utf8_not_views() {
        let df = SampleRecord::to_dataframe(&[record("a", "ok")]).unwrap();
        let KeyValueMetadata::Static(kv) = metadata(&df) else {
            panic!("static metadata expected")
        };
        let arrow = kv.iter().find(|k| k.key == "ARROW:schema").unwrap();
        let want = schema_to_metadata_key(&df.schema().to_arrow(CompatLevel::oldest()));
        assert_eq!(arrow.value, want.value);
        let views = schema_to_metadata_key(&df.schema().to_arrow(CompatLevel::newest()));
        assert_ne!(
            arrow.value, views.value,
            "the declared schema must not be the string-view one"
        );
    }
}
