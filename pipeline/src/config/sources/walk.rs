//! A folder of images and meshes as sources, labelled by their parent folder.

use std::path::Path;

use super::source::{Source, SourceKind};
use crate::config::diagnostic::{Diagnostic, Diagnostics};

/// Walks a folder for images and meshes. The id is the path relative to `dir` (with '/'); the label is the parent
/// folder's name, or `fixed_label` when given.
pub fn walk_dir(dir: &Path, fixed_label: Option<&str>) -> Result<Vec<Source>, Diagnostics> {
    let fixed_label = fixed_label.filter(|l| *l != "parent-dir");
    if !dir.is_dir() {
        return Err(Diagnostics(vec![Diagnostic::new(
            dir,
            0,
            0,
            "the source folder does not exist",
            "check [sources] dir (relative paths start at the recipe's folder)",
        )]));
    }
    let mut out = Vec::new();
    let mut diags = Vec::new();
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                diags.push(Diagnostic::new(
                    e.path().unwrap_or(dir),
                    0,
                    0,
                    format!("cannot walk the source folder: {e}"),
                    "check the folder's permissions",
                ));
                continue;
            }
        };
        if !entry.file_type().is_file() {
            continue;
        }
        let path = entry.path();
        let Some(kind) = SourceKind::from_extension(path) else {
            continue;
        };
        let rel = path.strip_prefix(dir).unwrap_or(path);
        let id = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        let label = match fixed_label {
            Some(l) => l.to_string(),
            None => path
                .parent()
                .and_then(|p| p.file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        };
        out.push(Source {
            id,
            path: path.to_path_buf(),
            label,
            kind,
            depth: None,
            mask: None,
            prompt: None,
            split: None,
            origin: path.to_path_buf(),
            line: 0,
        });
    }
    if diags.is_empty() {
        Ok(out)
    } else {
        Err(Diagnostics(diags))
    }
}
