//! The one way a path recorded in a manifest row becomes a file to read: relative, no `..`, and still inside the
//! output folder once symbolic links are followed, so a hostile or corrupt manifest can never make an export read
//! (and copy into a data set) a file from elsewhere.

use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};

/// The regular file `rel` names inside `root` (both canonical, so a link that leads out is refused too).
pub fn resolve_inside(root: &Path, rel: &str) -> Result<PathBuf> {
    let path = Path::new(rel);
    if rel.is_empty() {
        bail!("the path is empty");
    }
    for c in path.components() {
        match c {
            Component::Normal(_) | Component::CurDir => {}
            Component::ParentDir => {
                bail!("`{rel}` goes up with `..`; paths in a manifest are relative to the output folder and stay in it")
            }
            Component::RootDir | Component::Prefix(_) => {
                bail!("`{rel}` is absolute; paths in a manifest are relative to the output folder")
            }
        }
    }
    let root = root
        .canonicalize()
        .with_context(|| format!("the output folder {}", root.display()))?;
    let joined = root.join(path);
    let real = joined.canonicalize().map_err(|e| {
        anyhow::anyhow!(
            "{} is missing ({e}); run the recipe again with --resume to remake it, or remove the row's sample",
            joined.display()
        )
    })?;
    if !real.starts_with(&root) {
        bail!(
            "`{rel}` leads out of the output folder (to {}) through a symbolic link",
            real.display()
        );
    }
    if !real.is_file() {
        bail!("{} is not a regular file", joined.display());
    }
    Ok(real)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_leave_the_output_folder_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir_all(out.join("samples/ab")).unwrap();
        std::fs::write(out.join("samples/ab/image.png"), b"x").unwrap();
        std::fs::write(dir.path().join("secret"), b"s").unwrap();
        assert!(resolve_inside(&out, "samples/ab/image.png").is_ok());
        let refused = |rel: &str| format!("{:#}", resolve_inside(&out, rel).unwrap_err());
        assert!(refused("../../etc/passwd").contains(".."));
        assert!(refused("samples/../../secret").contains(".."));
        assert!(refused("/etc/passwd").contains("absolute"));
        assert!(refused("").contains("empty"));
        assert!(refused("samples/ab/gone.png").contains("missing"));
        assert!(refused("samples/ab").contains("regular file"));
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(dir.path().join("secret"), out.join("samples/ab/link.png"))
                .unwrap();
            assert!(refused("samples/ab/link.png").contains("symbolic link"));
        }
    }
}
