//! Whole folders: the files under one, and hard-linking or copying a file into another.

use std::io;
use std::path::{Path, PathBuf};

/// Hard-links `from` to `to`, copying when a link is impossible (another file system) or `copy` is asked for.
pub fn link_or_copy(from: &Path, to: &Path, copy: bool) -> io::Result<()> {
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir)?;
    }
    if !copy && std::fs::hard_link(from, to).is_ok() {
        return Ok(());
    }
    std::fs::copy(from, to).map(|_| ())
}

/// Every regular file under `dir`, relative to it, sorted.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .filter_map(|e| e.path().strip_prefix(dir).ok().map(Path::to_path_buf))
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_listed_relative_and_sorted() {
        let dir = tempfile::tempdir().unwrap();
        for rel in ["b/2.png", "a.bin", "b/1.png"] {
            let p = dir.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b"x").unwrap();
        }
        let want: Vec<PathBuf> = ["a.bin", "b/1.png", "b/2.png"].map(PathBuf::from).into();
        assert_eq!(files_under(dir.path()), want);
        link_or_copy(
            &dir.path().join("a.bin"),
            &dir.path().join("c/a.bin"),
            false,
        )
        .unwrap();
        assert_eq!(std::fs::read(dir.path().join("c/a.bin")).unwrap(), b"x");
    }
}
