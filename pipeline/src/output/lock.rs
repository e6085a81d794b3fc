//! One writer per output folder and shard: `texaug run` takes an exclusive `flock`-style lock (std
//! [`File::try_lock`]) on `manifest/part-IIII-of-NNNN.lock` before it removes or writes anything of that shard, and
//! holds it until it ends (the kernel releases it when the process dies, however it dies). The file holds the
//! holder's pid and host, so a second run on the same shard says who has it. The file is never deleted: deleting
//! a lock file while another process has it open would let two processes each lock "the" file. Other shards of the
//! same output have lock files of their own and are not blocked.
//!
//! flock is reliable on local file systems; on NFS it depends on the server (Linux ≥ 2.6.12 maps it to POSIX
//! byte-range locks, which NFSv4 honours across hosts).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Write};
use std::path::Path;

use anyhow::{bail, Context, Result};

use super::layout::{lock_path, manifest_dir};
use crate::plan::Shard;

/// A held lock on one shard of an output folder; released when dropped.
#[derive(Debug)]
pub struct ShardLock {
    _file: File,
}

/// This machine's name: `/etc/hostname`, else `$HOSTNAME`, else `unknown`.
pub fn host_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "unknown".into())
}

/// `pid = P` and `host = "H"` of a lock file's text (TOML), where present.
fn holder(text: &str) -> (Option<String>, Option<String>) {
    let value = |key: &str| {
        text.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == key).then(|| v.trim().trim_matches('"').to_string())
        })
    };
    (value("pid"), value("host"))
}

impl ShardLock {
    /// Takes the lock of `shard` of `output` (creating `manifest/`), or fails at once naming the holder.
    // `File::try_lock` (Rust 1.89, the workspace's `rust-version`) is flock(2) on Linux.
    pub fn acquire(output: &Path, shard: Shard) -> Result<ShardLock> {
        let dir = manifest_dir(output);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = lock_path(output, shard);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("opening the lock file {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                let (pid, host) = holder(&text);
                bail!(
                    "output {} shard {shard} is in use by pid {} on host {} (lock file {}); wait for it or use \
                     another --output",
                    output.display(),
                    pid.as_deref().unwrap_or("?"),
                    host.as_deref().unwrap_or("?"),
                    path.display()
                );
            }
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("locking {}", path.display()))
            }
        }
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let text = format!(
            "# held by the texaug run writing shard {shard} of this folder, while it runs\npid = {}\nhost = \"{}\"\n\
             started_unix = {started}\n",
            std::process::id(),
            host_name().replace(['"', '\\'], "_"),
        );
        file.set_len(0)
            .and_then(|_| file.write_all(text.as_bytes()))
            .and_then(|_| file.sync_data())
            .with_context(|| format!("writing the lock file {}", path.display()))?;
        Ok(ShardLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_shard_is_refused_naming_its_holder_and_other_shards_are_free() {
        let dir = tempfile::tempdir().unwrap();
        let shard = Shard { index: 0, count: 2 };
        let held = ShardLock::acquire(dir.path(), shard).unwrap();
        let text = std::fs::read_to_string(lock_path(dir.path(), shard)).unwrap();
        assert!(
            text.contains(&format!("pid = {}", std::process::id())),
            "{text}"
        );
        // flock locks belong to an open file, so a second open in this process is refused like another process.
        let err = ShardLock::acquire(dir.path(), shard)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!(
                "in use by pid {} on host {}",
                std::process::id(),
                host_name()
            )) && err.contains("shard 0/2")
                && err.contains("another --output"),
            "{err}"
        );
        let other = ShardLock::acquire(dir.path(), Shard { index: 1, count: 2 }).unwrap();
        drop((held, other));
        assert!(ShardLock::acquire(dir.path(), shard).is_ok());
    }

    #[test]
    fn the_holder_is_read_from_the_lock_file() {
        assert_eq!(
            holder("# x\npid = 42\nhost = \"node7\"\n"),
            (Some("42".into()), Some("node7".into()))
        );
        assert_eq!(holder(""), (None, None));
    }
}
