//! CSV source manifests: a header row, then one source per line (fields trimmed).

use std::path::Path;

use texaug_stages::file_read::read_input_file;

use super::rows::RawRow;
use super::source::{COLUMNS, MAX_MANIFEST_BYTES};
use crate::config::diagnostic::Diagnostic;

pub fn read_csv(path: &Path) -> Result<Vec<(usize, RawRow)>, Vec<Diagnostic>> {
    let cannot = |e: &dyn std::fmt::Display| {
        vec![Diagnostic::new(
            path,
            0,
            0,
            format!("cannot read the manifest: {e}"),
            "check the path in [sources] manifest",
        )]
    };
    let bytes = read_input_file(path, MAX_MANIFEST_BYTES).map_err(|e| cannot(&e))?;
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(bytes.as_slice());
    let headers = reader.headers().map_err(|e| cannot(&e))?.clone();
    let mut diags = Vec::new();
    for (i, h) in headers.iter().enumerate() {
        if !COLUMNS.contains(&h) {
            diags.push(Diagnostic::new(
                path,
                1,
                i + 1,
                format!("unknown column `{h}`"),
                format!("valid columns are: {}", COLUMNS.join(", ")),
            ));
        }
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        match record {
            Ok(rec) => {
                let line = rec.position().map_or(0, |p| p.line() as usize);
                let mut row = RawRow::default();
                for (h, v) in headers.iter().zip(rec.iter()) {
                    let v = (!v.is_empty()).then(|| v.to_string());
                    match h {
                        "id" => row.id = v,
                        "path" => row.path = v,
                        "label" => row.label = v,
                        "kind" => row.kind = v,
                        "depth" => row.depth = v,
                        "mask" => row.mask = v,
                        "prompt" => row.prompt = v,
                        "split" => row.split = v,
                        _ => {}
                    }
                }
                rows.push((line, row));
            }
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line() as usize);
                diags.push(Diagnostic::new(
                    path,
                    line,
                    1,
                    format!("malformed CSV row: {e}"),
                    "every row needs as many fields as the header; quote fields that contain commas",
                ));
            }
        }
    }
    if diags.is_empty() {
        Ok(rows)
    } else {
        Err(diags)
    }
}
