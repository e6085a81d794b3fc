//! JSON-lines source manifests: one object per line, blank lines skipped.

use std::path::Path;

use super::rows::RawRow;
use super::source::COLUMNS;
use crate::config::diagnostic::Diagnostic;

pub fn read_jsonl(path: &Path) -> Result<Vec<(usize, RawRow)>, Vec<Diagnostic>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![Diagnostic::new(
            path,
            0,
            0,
            format!("cannot read the manifest: {e}"),
            "check the path in [sources] manifest",
        )]
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
