//! Manifest rows as written, and their checks: required fields, kinds and duplicate ids, paths resolved.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;
use texaug_stages::source::{IMAGE_EXTS, MESH_EXTS};

use super::source::{Source, SourceKind};
use crate::config::diagnostic::Diagnostic;

/// A row as written, before checks.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRow {
    pub id: Option<String>,
    pub path: Option<String>,
    pub label: Option<String>,
    pub kind: Option<String>,
    pub depth: Option<String>,
    pub mask: Option<String>,
    pub prompt: Option<String>,
    pub split: Option<String>,
}

/// Checks required fields, kinds and duplicate ids; resolves paths against `base`.
pub fn finish_rows(
    file: &Path,
    base: &Path,
    rows: Vec<(usize, RawRow)>,
) -> Result<Vec<Source>, Vec<Diagnostic>> {
    let mut diags = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::new();
    for (line, row) in rows {
        let mut missing = |what: &str| {
            diags.push(Diagnostic::new(
                file,
                line,
                1,
                format!("row has no `{what}`"),
                "every row needs id, path and label",
            ))
        };
        let (Some(id), Some(rel), Some(label)) = (row.id, row.path, row.label) else {
            missing("id, path or label");
            continue;
        };
        if let Some(first) = seen.insert(id.clone(), line) {
            diags.push(Diagnostic::new(
                file,
                line,
                1,
                format!("duplicate id `{id}` (first at line {first})"),
                "ids must be unique: sample ids and seeds derive from them",
            ));
            continue;
        }
        let path = base.join(&rel);
        let kind = match row.kind.as_deref().map(str::to_ascii_lowercase).as_deref() {
            Some("image") => Some(SourceKind::Image),
            Some("mesh") => Some(SourceKind::Mesh),
            Some(other) => {
                diags.push(Diagnostic::new(
                    file,
                    line,
                    1,
                    format!("source `{id}`: unknown kind `{other}`"),
                    "kind is `image` or `mesh` (or leave it empty to infer it from the extension)",
                ));
                continue;
            }
            None => SourceKind::from_extension(&path),
        };
        let Some(kind) = kind else {
            diags.push(Diagnostic::new(
                file,
                line,
                1,
                format!("source `{id}`: cannot tell the kind of `{rel}` from its extension"),
                format!(
                    "use an image ({}) or a mesh ({}), or set the kind column",
                    IMAGE_EXTS.join(", "),
                    MESH_EXTS.join(", ")
                ),
            ));
            continue;
        };
        out.push(Source {
            id,
            path,
            label,
            kind,
            depth: row.depth.map(|d| base.join(d)),
            mask: row.mask.map(|m| base.join(m)),
            prompt: row.prompt,
            split: row.split,
            origin: file.to_path_buf(),
            line,
        });
    }
    if diags.is_empty() {
        Ok(out)
    } else {
        Err(diags)
    }
}
