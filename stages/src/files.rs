//! Files out, and their digests: every write goes to a temp file in the destination's folder, is fsynced, renamed
//! into place and the folder entry fsynced, so a reader (or a resumed run) sees the old file or the whole new one,
//! never a part. The one implementation of atomic writes and file hashing in texaug.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

/// The prefix of every temp file texaug writes; a resumed run deletes leftovers with it.
pub const TEMP_PREFIX: &str = ".texaug-tmp-";

/// The prefix of the temp files written for `path`: a resumed run can remove its own leftovers without touching
/// the temp files of another shard writing into the same folder.
pub fn temp_prefix_for(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("{TEMP_PREFIX}{name}-")
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Writes through `fill` into a temp file next to `path` (creating the folder), fsyncs it, renames it into place
/// and fsyncs the folder. On any error the temp file is removed and `path` is untouched.
pub fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut File) -> io::Result<()>,
) -> io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = parent_dir(path);
    std::fs::create_dir_all(&dir)?;
    let (tmp, mut file) = loop {
        let tmp = dir.join(format!(
            "{}{}-{}",
            temp_prefix_for(path),
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        match OpenOptions::new().write(true).create_new(true).open(&tmp) {
            Ok(f) => break (tmp, f),
            // A leftover of an earlier process with the same pid: take the next name.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    };
    let result = (|| {
        fill(&mut file)?;
        file.flush()?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    // The rename is durable only once the folder entry is; not every platform lets a folder be opened.
    if let Ok(d) = File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Writes `bytes` atomically and returns their hex sha256.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<String> {
    write_atomic_with(path, |f| f.write_all(bytes))?;
    Ok(sha256_hex(bytes))
}

/// Removes the temp files a killed writer of `path` left next to it.
pub fn remove_temp_files_for(path: &Path) {
    let prefix = temp_prefix_for(path);
    if let Ok(entries) = std::fs::read_dir(parent_dir(path)) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// Hex sha256 of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Hex sha256 of a file's contents, streamed in 1 MiB reads.
pub fn sha256_file(path: &Path) -> io::Result<String> {
    let mut file = File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// One digest for a set of files, from their labels (e.g. paths inside a model folder) and digests: a lone file's
/// own digest (so a single-file checkpoint's hash is the file's sha256), else the sha256 of the sorted
/// `digest  label` lines. The one formula of every model hash texaug records.
pub fn combined_digest(entries: &[(String, String)]) -> String {
    if let [(_, only)] = entries {
        return only.clone();
    }
    let mut lines: Vec<(&str, &str)> = entries
        .iter()
        .map(|(label, digest)| (digest.as_str(), label.as_str()))
        .collect();
    lines.sort_unstable_by(|a, b| (a.1, a.0).cmp(&(b.1, b.0)));
    let mut h = Sha256::new();
    for (digest, label) in lines {
        h.update(format!("{digest}  {label}\n").as_bytes());
    }
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn atomic_writes_leave_only_the_target_and_report_its_hash() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let p = dir.join("sub/a.bin");
        let hash = write_atomic(&p, b"abc").unwrap();
        assert_eq!(
            hash,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(sha256_file(&p).unwrap(), hash);
        assert_eq!(names(&dir.join("sub")), vec!["a.bin"]);
        // A failing writer leaves the old file and no temp file.
        let err = write_atomic_with(&p, |_| Err(io::Error::other("disk on fire")));
        assert!(err.is_err());
        assert_eq!(std::fs::read(&p).unwrap(), b"abc");
        assert_eq!(names(&dir.join("sub")), vec!["a.bin"]);
    }

    #[test]
    fn combined_digests_follow_every_file_and_not_the_order() {
        let e = |l: &str, d: &str| (l.to_string(), d.to_string());
        assert_eq!(combined_digest(&[e("unet/w", "aa")]), "aa");
        let ab = combined_digest(&[e("a", "11"), e("b", "22")]);
        assert_eq!(ab, combined_digest(&[e("b", "22"), e("a", "11")]));
        assert_ne!(ab, combined_digest(&[e("a", "11"), e("b", "23")]));
        assert_ne!(ab, combined_digest(&[e("a", "22"), e("b", "11")]));
    }

    #[test]
    fn leftover_temp_files_of_one_target_are_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let target = dir.join("part-0000-of-0002.parquet");
        let ours = format!("{}x1", temp_prefix_for(&target));
        let other = format!(
            "{}x2",
            temp_prefix_for(&dir.join("part-0001-of-0002.parquet"))
        );
        for name in [&ours, &other, &"keep.png".to_string()] {
            std::fs::write(dir.join(name), b"partial").unwrap();
        }
        remove_temp_files_for(&target);
        assert_eq!(names(dir), vec![other, "keep.png".to_string()]);
    }
}
