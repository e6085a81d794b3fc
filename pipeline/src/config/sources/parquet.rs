//! Parquet source manifests: one source per row, every column read as text.

use std::collections::HashMap;
use std::path::Path;

use texaug_stages::file_read::read_input_file;

use crate::config::diagnostic::Diagnostic;
use crate::parquet_decode::decode_parquet;

use super::rows::RawRow;
use super::source::{COLUMNS, MAX_MANIFEST_BYTES};

/// Rows any manifest may declare (ten million), whatever its size.
const MAX_MANIFEST_ROWS: u64 = 10_000_000;

pub fn read_parquet(path: &Path) -> Result<Vec<(usize, RawRow)>, Vec<Diagnostic>> {
    use polars::prelude::*;
    let fail = |msg: String, fix: &str| vec![Diagnostic::new(path, 0, 0, msg, fix)];
    let bytes = read_input_file(path, MAX_MANIFEST_BYTES).map_err(|e| {
        fail(
            format!("cannot read the manifest: {e}"),
            "check the path in [sources] manifest",
        )
    })?;
    let unreadable = |cause: String| {
        fail(
            format!("not a readable Parquet file: {cause}"),
            "write it with polars, pyarrow or DuckDB",
        )
    };
    let (df, _) = decode_parquet(bytes, MAX_MANIFEST_ROWS).map_err(unreadable)?;
    let mut diags = Vec::new();
    let mut columns: HashMap<&str, Vec<Option<String>>> = HashMap::new();
    for col in df.columns() {
        let name = col.name().as_str();
        let Some(known) = COLUMNS.iter().find(|c| **c == name) else {
            diags.push(Diagnostic::new(
                path,
                0,
                0,
                format!("unknown column `{name}`"),
                format!("valid columns are: {}", COLUMNS.join(", ")),
            ));
            continue;
        };
        let values = col.cast(&DataType::String).ok().and_then(|c| {
            c.str()
                .ok()
                .map(|s| s.iter().map(|v| v.map(str::to_string)).collect())
        });
        match values {
            Some(v) => {
                columns.insert(known, v);
            }
            None => diags.push(Diagnostic::new(
                path,
                0,
                0,
                format!("column `{name}` cannot be read as text"),
                "store id, path, label, kind, depth, mask, prompt and split as strings",
            )),
        }
    }
    if !diags.is_empty() {
        return Err(diags);
    }
    let get = |c: &str, i: usize| columns.get(c).and_then(|v| v.get(i).cloned().flatten());
    Ok((0..df.height())
        .map(|i| {
            let row = RawRow {
                id: get("id", i),
                path: get("path", i),
                label: get("label", i),
                kind: get("kind", i),
                depth: get("depth", i),
                mask: get("mask", i),
                prompt: get("prompt", i),
                split: get("split", i),
            };
            // Row numbers count like lines in a text manifest (header = 1) so messages read the same.
            (i + 2, row)
        })
        .collect())
}
