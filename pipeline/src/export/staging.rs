//! An export is built in a hidden sibling of its folder and renamed into place at the end, so the folder is
//! complete or absent (a killed export leaves only the sibling, removed by the next one), and an earlier export
//! there is replaced whole rather than mixed with the new files.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// Written at the top of every export: what made it, and the proof that a folder may be replaced.
pub const MARKER: &str = "texaug-export.json";

pub struct Staging {
    target: PathBuf,
    dir: PathBuf,
    done: bool,
}

impl Staging {
    /// Starts building `target` (its parent is made). Refused when `target` holds anything but an earlier export,
    /// and when it is the output folder being exported, one of its parents, or inside its samples or manifest.
    pub fn begin(target: &Path, output: &Path) -> Result<Staging> {
        let name = target
            .file_name()
            .with_context(|| format!("--out {} names no folder", target.display()))?
            .to_string_lossy()
            .into_owned();
        let parent = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent)
            .with_context(|| format!("making the export's parent folder {}", parent.display()))?;
        let target = parent
            .canonicalize()
            .with_context(|| format!("resolving {}", parent.display()))?
            .join(&name);
        let output = output
            .canonicalize()
            .with_context(|| format!("resolving the output folder {}", output.display()))?;
        if output.starts_with(&target)
            || target.starts_with(output.join("samples"))
            || target.starts_with(output.join("manifest"))
        {
            bail!(
                "--out {} would replace or mix with the run's own files in {}; export to a new folder such as \
                 {}/export/<format> (the default)",
                target.display(),
                output.display(),
                output.display()
            );
        }
        if target.exists() && !target.join(MARKER).is_file() && !is_empty_dir(&target)? {
            bail!(
                "{} exists and is not an earlier texaug export (it has no {MARKER}); pass another --out, or remove \
                 the folder",
                target.display()
            );
        }
        let dir = parent_of(&target).join(format!(".{name}.texaug-partial"));
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .with_context(|| format!("removing an unfinished export {}", dir.display()))?;
        }
        std::fs::create_dir_all(&dir).with_context(|| format!("making {}", dir.display()))?;
        Ok(Staging {
            target,
            dir,
            done: false,
        })
    }

    /// The folder to build in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the export will be once committed (absolute).
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Moves the built folder into place; an earlier export goes aside first and is removed after.
    pub fn commit(mut self) -> Result<PathBuf> {
        let old = self.dir.with_extension("old");
        if old.exists() {
            std::fs::remove_dir_all(&old).with_context(|| format!("removing {}", old.display()))?;
        }
        let replacing = self.target.exists();
        if replacing {
            std::fs::rename(&self.target, &old).with_context(|| {
                format!("moving the earlier export {} aside", self.target.display())
            })?;
        }
        std::fs::rename(&self.dir, &self.target).with_context(|| {
            format!("moving the export into place at {}", self.target.display())
        })?;
        self.done = true;
        if replacing {
            std::fs::remove_dir_all(&old)
                .with_context(|| format!("removing the earlier export at {}", old.display()))?;
        }
        Ok(self.target.clone())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn parent_of(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new("."))
}

fn is_empty_dir(path: &Path) -> Result<bool> {
    if !path.is_dir() {
        return Ok(false);
    }
    let mut entries =
        std::fs::read_dir(path).with_context(|| format!("listing {}", path.display()))?;
    Ok(entries.next().is_none())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_export_replaces_only_an_earlier_export_and_never_the_run() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir_all(out.join("samples")).unwrap();
        let target = out.join("export/coco");
        let s = Staging::begin(&target, &out).unwrap();
        std::fs::write(s.dir().join(MARKER), "{}").unwrap();
        std::fs::write(s.dir().join("a"), "1").unwrap();
        s.commit().unwrap();
        let s = Staging::begin(&target, &out).unwrap();
        std::fs::write(s.dir().join(MARKER), "{}").unwrap();
        s.commit().unwrap();
        assert!(target.join(MARKER).is_file() && !target.join("a").exists());
        // An export that fails leaves the earlier one as it was and no partial folder.
        let s = Staging::begin(&target, &out).unwrap();
        let partial = s.dir().to_path_buf();
        drop(s);
        assert!(!partial.exists() && target.join(MARKER).is_file());

        for bad in [out.clone(), dir.path().to_path_buf(), out.join("samples/x")] {
            let e = format!("{:#}", Staging::begin(&bad, &out).err().unwrap());
            assert!(e.contains("run's own files"), "{e}");
        }
        let other = dir.path().join("photos");
        std::fs::create_dir_all(&other).unwrap();
        std::fs::write(other.join("keep.jpg"), "x").unwrap();
        let e = format!("{:#}", Staging::begin(&other, &out).err().unwrap());
        assert!(e.contains("not an earlier texaug export"), "{e}");
    }
}
