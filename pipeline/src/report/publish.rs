//! The report folder is built beside its final place (`OUT/report.tmp-<pid>`) and swapped in whole, so a reader
//! (or a copy of OUT) sees the old report or the new one, never half of one.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

pub const REPORT_DIR: &str = "report";

/// A report folder being built; removed when dropped unpublished (an error on the way, Ctrl-C unwinding).
pub struct Staging {
    dir: PathBuf,
    published: bool,
}

impl Staging {
    pub fn new(output: &Path) -> Result<Staging> {
        let dir = output.join(format!("{REPORT_DIR}.tmp-{}", std::process::id()));
        // Left by an earlier process that had this pid and died before publishing.
        if dir.exists() {
            std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
        }
        std::fs::create_dir_all(dir.join("thumbs"))
            .with_context(|| format!("creating {}", dir.display()))?;
        Ok(Staging {
            dir,
            published: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Puts the built folder at `dest`, replacing what is there.
    pub fn publish(mut self, dest: &Path) -> Result<()> {
        let exists = dest.symlink_metadata().is_ok();
        if exists && exchange(&self.dir, dest).is_ok() {
            // The old report now lies at the staging path, where dropping `self` removes it.
            return Ok(());
        }
        if exists {
            // No atomic exchange here (another OS or file system): the old report steps aside first.
            let old = dest.with_file_name(format!("{REPORT_DIR}.old-{}", std::process::id()));
            std::fs::rename(dest, &old)
                .with_context(|| format!("moving the old {} aside", dest.display()))?;
            std::fs::rename(&self.dir, dest).with_context(|| {
                format!("renaming {} to {}", self.dir.display(), dest.display())
            })?;
            self.published = true;
            remove(&old);
            return Ok(());
        }
        std::fs::rename(&self.dir, dest)
            .with_context(|| format!("renaming {} to {}", self.dir.display(), dest.display()))?;
        self.published = true;
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.published {
            remove(&self.dir);
        }
    }
}

fn remove(path: &Path) {
    let _ = if path.is_dir() && !path.is_symlink() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
}

#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| CString::new(p.as_os_str().as_bytes()).map_err(std::io::Error::other);
    let (a, b) = (c(a)?, c(b)?);
    // SAFETY: both arguments are NUL-terminated paths that outlive the call; AT_FDCWD makes them relative to the
    // working directory as std's own calls are.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange(_a: &Path, _b: &Path) -> std::io::Result<()> {
    Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publishing_replaces_the_old_report_and_a_failed_build_leaves_none() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join(REPORT_DIR);
        for round in ["first", "second"] {
            let staging = Staging::new(dir.path()).unwrap();
            std::fs::write(staging.path().join("index.html"), round).unwrap();
            staging.publish(&dest).unwrap();
            assert_eq!(
                std::fs::read_to_string(dest.join("index.html")).unwrap(),
                round
            );
        }
        let abandoned = Staging::new(dir.path()).unwrap();
        let tmp = abandoned.path().to_path_buf();
        drop(abandoned);
        assert!(!tmp.exists());
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, [REPORT_DIR]);
    }
}
