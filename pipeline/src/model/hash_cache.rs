//! The sha256 of model files, remembered across runs in `<cache>/hashes.json` (`$TEXAUG_CACHE`, else
//! `~/.cache/texaug`), so a resume, a second shard or a second recipe on the same weights does not read gigabytes
//! again.
//!
//! **The contract:** an entry is keyed by the file's canonical path (symlinks resolved, so the blobs of a Hugging
//! Face cache are hashed once whatever snapshot names them) and trusted while the file's size and modification
//! time (to the nanosecond) are unchanged. A file rewritten in place with the same size and its mtime set back
//! keeps its old digest; every ordinary write changes the mtime and so is hashed again. Remove `hashes.json` to
//! hash everything afresh. The file is written atomically; entries of files that no longer exist are dropped
//! when it is saved, and a corrupt or unreadable file counts as empty.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use texaug_stages::files::{sha256_file, write_atomic};

pub const CACHE_FILE: &str = "hashes.json";
const VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    size: u64,
    mtime_ns: u128,
    sha256: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct CacheFile {
    version: u32,
    files: BTreeMap<PathBuf, Entry>,
}

/// The digests known so far, and where they are saved.
#[derive(Debug)]
pub struct HashCache {
    path: Option<PathBuf>,
    files: BTreeMap<PathBuf, Entry>,
    changed: bool,
    /// Files read and hashed (not taken from the cache) since this cache was opened.
    pub hashed: usize,
}

/// texaug's cache folder: `$TEXAUG_CACHE`, else `~/.cache/texaug`.
pub fn cache_dir() -> Option<PathBuf> {
    match std::env::var_os("TEXAUG_CACHE").filter(|v| !v.is_empty()) {
        Some(dir) => Some(PathBuf::from(dir)),
        None => std::env::var_os("HOME")
            .filter(|v| !v.is_empty())
            .map(|h| PathBuf::from(h).join(".cache").join("texaug")),
    }
}

fn read_entries(path: &Path) -> BTreeMap<PathBuf, Entry> {
    std::fs::read(path)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<CacheFile>(&bytes).ok())
        .filter(|c| c.version == VERSION)
        .map(|c| c.files)
        .unwrap_or_default()
}

impl HashCache {
    /// The cache in texaug's cache folder (none, hashing everything, when there is no such folder).
    pub fn open_default() -> HashCache {
        HashCache::open(cache_dir().map(|d| d.join(CACHE_FILE)))
    }

    /// The cache saved at `path` (`None`: remember nothing).
    pub fn open(path: Option<PathBuf>) -> HashCache {
        let files = path.as_deref().map(read_entries).unwrap_or_default();
        HashCache {
            path,
            files,
            changed: false,
            hashed: 0,
        }
    }

    /// The size and hex sha256 of the file at `path` (symlinks followed): from the cache when its canonical path,
    /// size and mtime match an entry, else read and hashed (and remembered).
    pub fn digest(&mut self, path: &Path) -> Result<(u64, String)> {
        let canonical = path
            .canonicalize()
            .with_context(|| format!("resolving {}", path.display()))?;
        let meta = std::fs::metadata(&canonical)
            .with_context(|| format!("reading {}", canonical.display()))?;
        let size = meta.len();
        let mtime_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        if let Some(e) = self.files.get(&canonical) {
            if e.size == size && e.mtime_ns == mtime_ns {
                return Ok((size, e.sha256.clone()));
            }
        }
        let sha256 =
            sha256_file(&canonical).with_context(|| format!("hashing {}", canonical.display()))?;
        self.hashed += 1;
        self.files.insert(
            canonical,
            Entry {
                size,
                mtime_ns,
                sha256: sha256.clone(),
            },
        );
        self.changed = true;
        Ok((size, sha256))
    }

    /// Writes the cache back (merged with what another process saved meanwhile) when it learnt something. A cache
    /// that cannot be written costs only time, so failing here is not an error of the run.
    pub fn save(&mut self) {
        let Some(path) = &self.path else { return };
        if !self.changed {
            return;
        }
        let mut files = read_entries(path);
        files.append(&mut self.files.clone());
        files.retain(|p, _| p.exists());
        let doc = CacheFile {
            version: VERSION,
            files,
        };
        if let Ok(bytes) = serde_json::to_vec_pretty(&doc) {
            if write_atomic(path, &bytes).is_ok() {
                self.changed = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    fn set_mtime(path: &Path, t: SystemTime) {
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(t)
            .unwrap();
    }

    #[test]
    fn an_unchanged_file_is_not_read_again_and_a_new_mtime_is() {
        let dir = tempfile::tempdir().unwrap();
        let cache_file = dir.path().join("cache/hashes.json");
        let weights = dir.path().join("w.safetensors");
        std::fs::write(&weights, b"weights-1").unwrap();
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        set_mtime(&weights, t);

        let mut c = HashCache::open(Some(cache_file.clone()));
        let (size, first) = c.digest(&weights).unwrap();
        assert_eq!((size, c.hashed), (9, 1));
        c.save();
        assert!(cache_file.is_file());

        // A later run (a resume): same size and mtime → the cached digest, without reading the file. Proven by
        // changing the bytes behind the cache's back (the documented contract: size + mtime are trusted).
        std::fs::write(&weights, b"weights-2").unwrap();
        set_mtime(&weights, t);
        let mut c = HashCache::open(Some(cache_file.clone()));
        assert_eq!(c.digest(&weights).unwrap().1, first);
        assert_eq!(c.hashed, 0, "an unchanged file was read again");

        // A new mtime (any ordinary write) → hashed again.
        set_mtime(&weights, t + Duration::from_secs(1));
        let (_, again) = c.digest(&weights).unwrap();
        assert_eq!(c.hashed, 1);
        assert_ne!(again, first);
        assert_eq!(again, texaug_stages::files::sha256_hex(b"weights-2"));
        c.save();

        // A symlink to the file shares its entry; entries of removed files are dropped on save.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&weights, &link).unwrap();
        let mut c = HashCache::open(Some(cache_file.clone()));
        assert_eq!(c.digest(&link).unwrap().1, again);
        assert_eq!(c.hashed, 0);
        let gone = dir.path().join("gone.bin");
        std::fs::write(&gone, b"x").unwrap();
        c.digest(&gone).unwrap();
        std::fs::remove_file(&gone).unwrap();
        c.save();
        let text = std::fs::read_to_string(&cache_file).unwrap();
        assert!(
            !text.contains("gone.bin") && text.contains("w.safetensors"),
            "{text}"
        );
    }

    #[test]
    fn a_corrupt_cache_counts_as_empty() {
        let dir = tempfile::tempdir().unwrap();
        let cache_file = dir.path().join("hashes.json");
        std::fs::write(&cache_file, b"{not json").unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, b"abc").unwrap();
        let mut c = HashCache::open(Some(cache_file));
        assert_eq!(
            c.digest(&f).unwrap().1,
            texaug_stages::files::sha256_hex(b"abc")
        );
        assert_eq!(c.hashed, 1);
    }
}
