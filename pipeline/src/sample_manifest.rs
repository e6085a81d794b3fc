//! The sample manifest (DESIGN §3): one row per sample, Parquet, `schema_version` in the file's key-value metadata.
//! Column types are the plainest Arrow has (utf8, int64, float64) so polars, pyarrow/pandas and DuckDB read it as is.

use anyhow::{anyhow, Context, Result};
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::Path;

pub const SCHEMA_VERSION: &str = "1";
pub const SCHEMA_VERSION_KEY: &str = "schema_version";

/// One sample: what was made, from what, how, and where it lies (paths relative to the output folder).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleRecord {
    pub sample_id: String,
    pub run_id: String,
    pub recipe_hash: String,
    pub source_id: String,
    pub source_path: String,
    pub source_kind: String,
    pub label: String,
    pub split: Option<String>,
    pub stage: String,
    pub variant: i64,
    pub prompt: String,
    pub negative_prompt: String,
    pub seed: i64,
    pub strength: f64,
    pub guidance: f64,
    pub steps: i64,
    pub scheduler: String,
    pub model_id: String,
    pub model_hash: String,
    pub depth_source: Option<String>,
    pub width: Option<i64>,
    pub height: Option<i64>,
    pub image_path: Option<String>,
    /// Mesh samples: the new base-color textures, ';'-separated when a mesh has several.
    pub texture_path: Option<String>,
    pub asset_path: Option<String>,
    pub output_sha256: Option<String>,
    pub device: String,
    pub duration_ms: i64,
    /// "ok" or "failed".
    pub status: String,
    pub error: Option<String>,
    pub texaug_version: String,
    pub views: Option<i64>,
    pub coverage: Option<f64>,
}

impl SampleRecord {
    pub fn is_ok(&self) -> bool {
        self.status == "ok"
    }
}

/// The column order of the file.
pub const COLUMNS: &[&str] = &[
    "sample_id",
    "run_id",
    "recipe_hash",
    "source_id",
    "source_path",
    "source_kind",
    "label",
    "split",
    "stage",
    "variant",
    "prompt",
    "negative_prompt",
    "seed",
    "strength",
    "guidance",
    "steps",
    "scheduler",
    "model_id",
    "model_hash",
    "depth_source",
    "width",
    "height",
    "image_path",
    "texture_path",
    "asset_path",
    "output_sha256",
    "device",
    "duration_ms",
    "status",
    "error",
    "texaug_version",
    "views",
    "coverage",
];

macro_rules! col {
    ($rows:expr, $name:literal, $f:expr) => {
        Column::new($name.into(), $rows.iter().map($f).collect::<Vec<_>>())
    };
}

/// Records as a DataFrame with the manifest's exact columns and types.
pub fn to_dataframe(rows: &[SampleRecord]) -> Result<DataFrame> {
    let s = |v: &String| Some(v.clone());
    let columns = vec![
        col!(rows, "sample_id", |r| s(&r.sample_id)),
        col!(rows, "run_id", |r| s(&r.run_id)),
        col!(rows, "recipe_hash", |r| s(&r.recipe_hash)),
        col!(rows, "source_id", |r| s(&r.source_id)),
        col!(rows, "source_path", |r| s(&r.source_path)),
        col!(rows, "source_kind", |r| s(&r.source_kind)),
        col!(rows, "label", |r| s(&r.label)),
        col!(rows, "split", |r| r.split.clone()),
        col!(rows, "stage", |r| s(&r.stage)),
        col!(rows, "variant", |r| Some(r.variant)),
        col!(rows, "prompt", |r| s(&r.prompt)),
        col!(rows, "negative_prompt", |r| s(&r.negative_prompt)),
        col!(rows, "seed", |r| Some(r.seed)),
        col!(rows, "strength", |r| Some(r.strength)),
        col!(rows, "guidance", |r| Some(r.guidance)),
        col!(rows, "steps", |r| Some(r.steps)),
        col!(rows, "scheduler", |r| s(&r.scheduler)),
        col!(rows, "model_id", |r| s(&r.model_id)),
        col!(rows, "model_hash", |r| s(&r.model_hash)),
        col!(rows, "depth_source", |r| r.depth_source.clone()),
        col!(rows, "width", |r| r.width),
        col!(rows, "height", |r| r.height),
        col!(rows, "image_path", |r| r.image_path.clone()),
        col!(rows, "texture_path", |r| r.texture_path.clone()),
        col!(rows, "asset_path", |r| r.asset_path.clone()),
        col!(rows, "output_sha256", |r| r.output_sha256.clone()),
        col!(rows, "device", |r| s(&r.device)),
        col!(rows, "duration_ms", |r| Some(r.duration_ms)),
        col!(rows, "status", |r| s(&r.status)),
        col!(rows, "error", |r| r.error.clone()),
        col!(rows, "texaug_version", |r| s(&r.texaug_version)),
        col!(rows, "views", |r| r.views),
        col!(rows, "coverage", |r| r.coverage),
    ];
    debug_assert_eq!(columns.len(), COLUMNS.len());
    Ok(DataFrame::new(rows.len(), columns)?)
}

/// Writes the records as Parquet, atomically (temp file in the same folder, fsync, rename).
pub fn write_parquet(rows: &[SampleRecord], path: &Path) -> Result<()> {
    let mut df = to_dataframe(rows)?;
    let metadata = KeyValueMetadata::from_static(vec![
        (SCHEMA_VERSION_KEY.to_string(), SCHEMA_VERSION.to_string()),
        (
            "texaug_version".to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
        ),
    ]);
    crate::sinks::write_atomic_with(path, |file| {
        ParquetWriter::new(file)
            .with_key_value_metadata(Some(metadata))
            .finish(&mut df)
            .map(|_| ())
            .map_err(|e| std::io::Error::other(e.to_string()))
    })
    .with_context(|| format!("writing the sample manifest {}", path.display()))
}

/// Reads a manifest part back into records (for inspect and merge), checking its schema version.
pub fn read_parquet(path: &Path) -> Result<Vec<SampleRecord>> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("opening manifest {}", path.display()))?;
    let mut reader = ParquetReader::new(file);
    let version = reader
        .get_metadata()
        .ok()
        .and_then(|m| m.key_value_metadata().clone())
        .and_then(|kv| {
            kv.into_iter()
                .find(|k| k.key == SCHEMA_VERSION_KEY)
                .and_then(|k| k.value)
        });
    match version.as_deref() {
        Some(SCHEMA_VERSION) => {}
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
    let df = anyhow::Context::with_context(reader.finish(), || {
        format!("reading manifest {}", path.display())
    })?;
    from_dataframe(&df).with_context(|| format!("reading manifest {}", path.display()))
}

fn from_dataframe(df: &DataFrame) -> Result<Vec<SampleRecord>> {
    let strs = |name: &str| -> Result<Vec<Option<String>>> {
        Ok(df
            .column(name)?
            .str()?
            .iter()
            .map(|v| v.map(str::to_string))
            .collect())
    };
    let ints =
        |name: &str| -> Result<Vec<Option<i64>>> { Ok(df.column(name)?.i64()?.iter().collect()) };
    let floats =
        |name: &str| -> Result<Vec<Option<f64>>> { Ok(df.column(name)?.f64()?.iter().collect()) };
    let mut text = std::collections::HashMap::new();
    for name in [
        "sample_id",
        "run_id",
        "recipe_hash",
        "source_id",
        "source_path",
        "source_kind",
        "label",
        "split",
        "stage",
        "prompt",
        "negative_prompt",
        "scheduler",
        "model_id",
        "model_hash",
        "depth_source",
        "image_path",
        "texture_path",
        "asset_path",
        "output_sha256",
        "device",
        "status",
        "error",
        "texaug_version",
    ] {
        text.insert(name, strs(name)?);
    }
    let mut int = std::collections::HashMap::new();
    for name in [
        "variant",
        "seed",
        "steps",
        "width",
        "height",
        "duration_ms",
        "views",
    ] {
        int.insert(name, ints(name)?);
    }
    let mut float = std::collections::HashMap::new();
    for name in ["strength", "guidance", "coverage"] {
        float.insert(name, floats(name)?);
    }
    let t = |n: &str, i: usize| text[n][i].clone();
    let tt = |n: &str, i: usize| text[n][i].clone().unwrap_or_default();
    let n = |n: &str, i: usize| int[n][i];
    let f = |n: &str, i: usize| float[n][i];
    Ok((0..df.height())
        .map(|i| SampleRecord {
            sample_id: tt("sample_id", i),
            run_id: tt("run_id", i),
            recipe_hash: tt("recipe_hash", i),
            source_id: tt("source_id", i),
            source_path: tt("source_path", i),
            source_kind: tt("source_kind", i),
            label: tt("label", i),
            split: t("split", i),
            stage: tt("stage", i),
            variant: n("variant", i).unwrap_or_default(),
            prompt: tt("prompt", i),
            negative_prompt: tt("negative_prompt", i),
            seed: n("seed", i).unwrap_or_default(),
            strength: f("strength", i).unwrap_or_default(),
            guidance: f("guidance", i).unwrap_or_default(),
            steps: n("steps", i).unwrap_or_default(),
            scheduler: tt("scheduler", i),
            model_id: tt("model_id", i),
            model_hash: tt("model_hash", i),
            depth_source: t("depth_source", i),
            width: n("width", i),
            height: n("height", i),
            image_path: t("image_path", i),
            texture_path: t("texture_path", i),
            asset_path: t("asset_path", i),
            output_sha256: t("output_sha256", i),
            device: tt("device", i),
            duration_ms: n("duration_ms", i).unwrap_or_default(),
            status: tt("status", i),
            error: t("error", i),
            texaug_version: tt("texaug_version", i),
            views: n("views", i),
            coverage: f("coverage", i),
        })
        .collect())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn record(id: &str, status: &str) -> SampleRecord {
        SampleRecord {
            sample_id: id.into(),
            run_id: "r".into(),
            recipe_hash: "h".into(),
            source_id: "s".into(),
            source_path: "/x/s.png".into(),
            source_kind: "image".into(),
            label: "mug".into(),
            split: None,
            stage: "style".into(),
            variant: 0,
            prompt: "a mug".into(),
            negative_prompt: String::new(),
            seed: (1 << 62) + 3,
            strength: 0.5,
            guidance: 7.5,
            steps: 4,
            scheduler: "ddim".into(),
            model_id: "tiny".into(),
            model_hash: "mh".into(),
            depth_source: None,
            width: Some(64),
            height: Some(48),
            image_path: Some(format!("samples/{id}/image.png")),
            texture_path: None,
            asset_path: None,
            output_sha256: Some("ab".into()),
            device: "cpu".into(),
            duration_ms: 12,
            status: status.into(),
            error: (status != "ok").then(|| "bad".to_string()),
            texaug_version: "0.1.0".into(),
            views: None,
            coverage: None,
        }
    }

    #[test]
    fn records_round_trip_through_parquet_with_the_schema_version() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("part.parquet");
        let rows = vec![record("a", "ok"), record("b", "failed")];
        write_parquet(&rows, &p).unwrap();
        assert_eq!(read_parquet(&p).unwrap(), rows);
        let df = to_dataframe(&rows).unwrap();
        let names: Vec<&str> = df.columns().iter().map(|c| c.name().as_str()).collect();
        assert_eq!(names, COLUMNS);
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
}
