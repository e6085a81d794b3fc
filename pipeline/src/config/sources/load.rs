//! A recipe's sources: its manifest read by format (CSV, JSONL or Parquet), or a walk of its folder.

use std::path::Path;

use anyhow::Result;

use super::csv::read_csv;
use super::jsonl::read_jsonl;
use super::parquet::read_parquet;
use super::rows::finish_rows;
use super::source::Source;
use super::walk::walk_dir;
use crate::config::diagnostic::{Diagnostic, Diagnostics};
use crate::config::recipe::LoadedRecipe;

/// Loads a manifest by extension (.csv, .jsonl/.ndjson, .parquet).
pub fn load_manifest(path: &Path) -> Result<Vec<Source>, Diagnostics> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let rows = match ext.as_str() {
        "csv" => read_csv(path),
        "jsonl" | "ndjson" => read_jsonl(path),
        "parquet" => read_parquet(path),
        _ => Err(vec![Diagnostic::new(
            path,
            0,
            0,
            format!("unknown manifest format `.{ext}`"),
            "use a .csv, .jsonl or .parquet file with columns id, path, label",
        )]),
    }
    .map_err(Diagnostics)?;
    let base = path.parent().unwrap_or(Path::new("."));
    finish_rows(path, base, rows).map_err(Diagnostics)
}

/// The recipe's sources: its manifest, or a walk of its folder.
pub fn load_recipe_sources(loaded: &LoadedRecipe) -> Result<Vec<Source>> {
    let s = &loaded.recipe.sources;
    let sources = match (&s.manifest, &s.dir) {
        (Some(m), _) => load_manifest(m)?,
        (None, Some(d)) => walk_dir(d, s.label.as_deref())?,
        (None, None) => anyhow::bail!(
            "{}: [sources] needs `manifest` or `dir`",
            loaded.path.display()
        ),
    };
    Ok(sources)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::sources::source::SourceKind;

    #[test]
    fn csv_rows_resolve_paths_and_infer_kinds() {
        let dir = tempfile::tempdir().unwrap();
        let m = dir.path().join("m.csv");
        std::fs::write(
            &m,
            "id,path,label,split\na,img/a.png,mug,train\nb,b.glb,cup,\n",
        )
        .unwrap();
        let s = load_manifest(&m).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].path, dir.path().join("img/a.png"));
        assert_eq!(s[0].kind, SourceKind::Image);
        assert_eq!(s[0].split.as_deref(), Some("train"));
        assert_eq!(s[1].kind, SourceKind::Mesh);
        assert_eq!(s[1].split, None);
        assert_eq!((s[0].line, s[1].line), (2, 3));
    }

    #[test]
    fn duplicates_unknown_columns_and_kinds_are_located() {
        let dir = tempfile::tempdir().unwrap();
        let m = dir.path().join("m.csv");
        std::fs::write(&m, "id,path,label\na,a.png,mug\na,b.png,mug\nc,c.txt,mug\n").unwrap();
        let err = load_manifest(&m).unwrap_err();
        let lines: Vec<usize> = err.0.iter().map(|d| d.line).collect();
        assert_eq!(lines, vec![3, 4], "{err}");
        std::fs::write(&m, "id,path,label,colour\na,a.png,mug,red\n").unwrap();
        let err = load_manifest(&m).unwrap_err();
        assert_eq!((err.0[0].line, err.0[0].col), (1, 4), "{err}");
    }

    #[test]
    fn jsonl_errors_carry_their_line() {
        let dir = tempfile::tempdir().unwrap();
        let m = dir.path().join("m.jsonl");
        std::fs::write(
            &m,
            "{\"id\":\"a\",\"path\":\"a.png\",\"label\":\"mug\"}\n\n{\"id\":\"b\",\"pth\":\"b.png\"}\n",
        )
        .unwrap();
        let err = load_manifest(&m).unwrap_err();
        assert_eq!(err.0.len(), 1);
        assert_eq!(err.0[0].line, 3);
    }

    #[test]
    fn parquet_manifests_load() {
        use polars::prelude::*;
        let dir = tempfile::tempdir().unwrap();
        let m = dir.path().join("m.parquet");
        let mut df = DataFrame::new(
            1,
            vec![
                Column::new("id".into(), vec!["a"]),
                Column::new("path".into(), vec!["a.png"]),
                Column::new("label".into(), vec!["mug"]),
            ],
        )
        .unwrap();
        ParquetWriter::new(std::fs::File::create(&m).unwrap())
            .finish(&mut df)
            .unwrap();
        let s = load_manifest(&m).unwrap();
        assert_eq!(s[0].id, "a");
        assert_eq!(s[0].path, dir.path().join("a.png"));
    }

    #[test]
    fn a_walk_labels_by_parent_folder() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("mug")).unwrap();
        std::fs::write(dir.path().join("mug/x.png"), b"").unwrap();
        std::fs::write(dir.path().join("mug/notes.txt"), b"").unwrap();
        std::fs::write(dir.path().join("y.glb"), b"").unwrap();
        let s = walk_dir(dir.path(), Some("parent-dir")).unwrap();
        let ids: Vec<(&str, &str)> = s
            .iter()
            .map(|s| (s.id.as_str(), s.label.as_str()))
            .collect();
        let root_name = dir
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert_eq!(
            ids,
            vec![("mug/x.png", "mug"), ("y.glb", root_name.as_str())]
        );
    }
}
