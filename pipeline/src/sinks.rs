//! Files out: every write goes to a temp file in the destination's folder, is fsynced, then renamed into place, so a
//! reader (or a resumed run) sees a whole file or none.

use sha2::{Digest, Sha256};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The prefix of every temp file texaug writes; a resumed run deletes leftovers with it.
pub const TEMP_PREFIX: &str = ".texaug-tmp-";

/// Writes through `fill` into a temp file next to `path`, then renames it into place.
pub fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut std::fs::File) -> io::Result<()>,
) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(&temp_prefix_for(path))
        .tempfile_in(dir)?;
    fill(tmp.as_file_mut())?;
    tmp.as_file_mut().flush()?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// The prefix of the temp files written for `path`: a resumed run can remove its own leftovers without touching
/// the temp files of another shard writing into the same folder.
pub fn temp_prefix_for(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("{TEMP_PREFIX}{name}-")
}

/// Removes the temp files a killed writer of `path` left next to it.
pub fn remove_temp_files_for(path: &Path) {
    let prefix = temp_prefix_for(path);
    let dir = path.parent().unwrap_or(Path::new("."));
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// Writes `bytes` atomically and returns their hex sha256.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<String> {
    write_atomic_with(path, |f| f.write_all(bytes))?;
    Ok(hex::encode(Sha256::digest(bytes)))
}

/// Hex sha256 of a file's contents, streamed.
pub fn sha256_file(path: &Path) -> io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    io::copy(&mut file, &mut h)?;
    Ok(hex::encode(h.finalize()))
}

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
    fn atomic_writes_leave_only_the_target_and_report_its_hash() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/a.bin");
        let hash = write_atomic(&p, b"abc").unwrap();
        assert_eq!(
            hash,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(sha256_file(&p).unwrap(), hash);
        assert_eq!(files_under(dir.path()), vec![PathBuf::from("sub/a.bin")]);
    }

    #[test]
    fn leftover_temp_files_of_one_target_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("part-0000-of-0002.parquet");
        let ours = format!("{}x1", temp_prefix_for(&target));
        let other = format!(
            "{}x2",
            temp_prefix_for(&dir.path().join("part-0001-of-0002.parquet"))
        );
        for name in [&ours, &other, &"keep.png".to_string()] {
            std::fs::write(dir.path().join(name), b"partial").unwrap();
        }
        remove_temp_files_for(&target);
        let left: Vec<PathBuf> = files_under(dir.path());
        assert_eq!(left, vec![PathBuf::from(other), PathBuf::from("keep.png")]);
    }
}
