//! Source manifests: CSV, JSONL or Parquet with columns `id, path, label` and optional `kind, depth, prompt, split`,
//! or a directory walk. Relative paths resolve against the manifest's folder; every problem is located by line.

use crate::diagnostic::{Diagnostic, Diagnostics};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub const COLUMNS: &[&str] = &["id", "path", "label", "kind", "depth", "prompt", "split"];
pub const IMAGE_EXTS: &[&str] = &["png", "jpg", "jpeg", "webp"];
pub const MESH_EXTS: &[&str] = &["glb", "gltf"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Image,
    Mesh,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Image => "image",
            SourceKind::Mesh => "mesh",
        }
    }

    pub fn from_extension(path: &Path) -> Option<SourceKind> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        if IMAGE_EXTS.contains(&ext.as_str()) {
            Some(SourceKind::Image)
        } else if MESH_EXTS.contains(&ext.as_str()) {
            Some(SourceKind::Mesh)
        } else {
            None
        }
    }
}

/// One source: an image or a mesh to re-texture.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub id: String,
    pub path: PathBuf,
    pub label: String,
    pub kind: SourceKind,
    pub depth: Option<PathBuf>,
    pub prompt: Option<String>,
    pub split: Option<String>,
    /// Where it was declared, for diagnostics: the manifest (or walked folder) and 1-based line (row).
    pub origin: PathBuf,
    pub line: usize,
}

/// A row as written, before checks.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRow {
    id: Option<String>,
    path: Option<String>,
    label: Option<String>,
    kind: Option<String>,
    depth: Option<String>,
    prompt: Option<String>,
    split: Option<String>,
}

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

fn read_csv(path: &Path) -> Result<Vec<(usize, RawRow)>, Vec<Diagnostic>> {
    let cannot = |e: &dyn std::fmt::Display| {
        vec![Diagnostic::new(
            path,
            0,
            0,
            format!("cannot read the manifest: {e}"),
            "check the path in [sources] manifest",
        )]
    };
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| cannot(&e))?;
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

fn read_jsonl(path: &Path) -> Result<Vec<(usize, RawRow)>, Vec<Diagnostic>> {
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

fn read_parquet(path: &Path) -> Result<Vec<(usize, RawRow)>, Vec<Diagnostic>> {
    use polars::prelude::*;
    let fail = |msg: String, fix: &str| vec![Diagnostic::new(path, 0, 0, msg, fix)];
    let file = std::fs::File::open(path).map_err(|e| {
        fail(
            format!("cannot read the manifest: {e}"),
            "check the path in [sources] manifest",
        )
    })?;
    let df = ParquetReader::new(file).finish().map_err(|e| {
        fail(
            format!("not a readable Parquet file: {e}"),
            "write it with polars, pyarrow or DuckDB",
        )
    })?;
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
                "store id, path, label, kind, depth, prompt and split as strings",
            )),
        }
    }
    if !diags.is_empty() {
        return Err(diags);
    }
    let get = |c: &str, i: usize| columns.get(c).and_then(|v| v[i].clone());
    Ok((0..df.height())
        .map(|i| {
            let row = RawRow {
                id: get("id", i),
                path: get("path", i),
                label: get("label", i),
                kind: get("kind", i),
                depth: get("depth", i),
                prompt: get("prompt", i),
                split: get("split", i),
            };
            // Row numbers count like lines in a text manifest (header = 1) so messages read the same.
            (i + 2, row)
        })
        .collect())
}

/// Checks required fields, kinds and duplicate ids; resolves paths against `base`.
fn finish_rows(
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

#[cfg(test)]
mod tests {
    use super::*;

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
