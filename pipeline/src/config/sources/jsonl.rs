//! JSON-lines source manifests: one object per line, blank lines skipped.

use std::path::Path;

use texaug_stages::file_read::read_input_file;

use super::rows::RawRow;
use super::source::{COLUMNS, MAX_MANIFEST_BYTES};
use crate::config::diagnostic::Diagnostic;

pub fn read_jsonl(path: &Path) -> Result<Vec<(usize, RawRow)>, Vec<Diagnostic>> {
    let cannot = |e: &dyn std::fmt::Display, fix: &str| {
        vec![Diagnostic::new(
            path,
            0,
            0,
            format!("cannot read the manifest: {e}"),
            fix,
        )]
    };
    let bytes = read_input_file(path, MAX_MANIFEST_BYTES)
        .map_err(|e| cannot(&e, "check the path in [sources] manifest"))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        cannot(
            &e,
            "JSON-lines manifests are UTF-8 text; re-save the file as UTF-8",
        )
    })?;
    let mut rows = Vec::new();
    let mut diags = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<RawRow>(line) {
            Ok(row) => rows.push((i + 1, row)),
            Err(e) => diags.push(Diagnostic::new(
                path,
                i + 1,
                e.column().max(1),
                format!("invalid JSON line: {e}"),
                format!(
                    "each line is one object such as {{\"id\": \"a\", \"path\": \"a.png\", \"label\": \"mug\"}}; \
                     valid keys are: {}",
                    COLUMNS.join(", ")
                ),
            )),
        }
    }
    if diags.is_empty() {
        Ok(rows)
    } else {
        Err(diags)
    }
}
