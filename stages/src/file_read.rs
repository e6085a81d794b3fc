//! The one way texaug reads an input file: only a regular file, checked from its metadata before it is opened
//! (so a FIFO never blocks the process and a device is never read), and never more than a size cap.

use std::fs::{File, Metadata, OpenOptions};
use std::io::Read;
use std::path::Path;

/// Why a file was not read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// It does not exist or cannot be opened or read.
    Io(std::io::Error),
    /// It exists but is not a regular file: "a FIFO (named pipe)", "a directory", ….
    NotRegular(&'static str),
    /// It holds more than the cap (at least `size` bytes).
    TooLarge { size: u64 },
    /// Between the check and the open, the path came to name another file.
    Changed,
}

/// What a non-regular file is, for messages; `None` for a regular file.
pub(crate) fn non_regular_kind(meta: &Metadata) -> Option<&'static str> {
    let ty = meta.file_type();
    if ty.is_file() {
        return None;
    }
    if ty.is_dir() {
        return Some("a directory");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ty.is_fifo() {
            return Some("a FIFO (named pipe)");
        }
        if ty.is_socket() {
            return Some("a socket");
        }
        if ty.is_char_device() {
            return Some("a character device");
        }
        if ty.is_block_device() {
            return Some("a block device");
        }
    }
    Some("not a regular file")
}

/// `O_NONBLOCK` where its value is known: should the path be swapped for a FIFO between the check and the open,
/// the open still returns at once (and the check after it refuses the FIFO).
#[cfg(unix)]
fn o_nonblock() -> Option<i32> {
    if cfg!(all(
        target_os = "linux",
        any(
            target_arch = "x86",
            target_arch = "x86_64",
            target_arch = "arm",
            target_arch = "aarch64",
            target_arch = "riscv64",
            target_arch = "powerpc64",
            target_arch = "s390x",
            target_arch = "loongarch64"
        )
    )) {
        Some(0o4000)
    } else if cfg!(any(
        target_os = "macos",
        target_os = "ios",
        target_os = "freebsd",
        target_os = "netbsd",
        target_os = "openbsd",
        target_os = "dragonfly"
    )) {
        Some(0x4)
    } else {
        None
    }
}

fn open_no_block(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    if let Some(flag) = o_nonblock() {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(flag);
    }
    options.open(path)
}

#[cfg(unix)]
fn same_file(a: &Metadata, b: &Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

#[cfg(not(unix))]
fn same_file(_: &Metadata, _: &Metadata) -> bool {
    true
}

/// The metadata of what `path` names (symbolic links followed), refusing anything but a regular file of at most
/// `max_bytes`. Nothing is opened.
pub(crate) fn check_regular(path: &Path, max_bytes: u64) -> Result<Metadata, ReadError> {
    let meta = std::fs::metadata(path).map_err(ReadError::Io)?;
    if let Some(kind) = non_regular_kind(&meta) {
        return Err(ReadError::NotRegular(kind));
    }
    if meta.len() > max_bytes {
        return Err(ReadError::TooLarge { size: meta.len() });
    }
    Ok(meta)
}

/// Reads a regular file of at most `max_bytes`: the metadata is checked before opening, the opened file is checked
/// to be the one checked, and the read stops after `max_bytes + 1` bytes should the file have grown.
pub(crate) fn read_regular(path: &Path, max_bytes: u64) -> Result<Vec<u8>, ReadError> {
    let checked = check_regular(path, max_bytes)?;
    let file = open_no_block(path).map_err(ReadError::Io)?;
    let opened = file.metadata().map_err(ReadError::Io)?;
    if let Some(kind) = non_regular_kind(&opened) {
        return Err(ReadError::NotRegular(kind));
    }
    if !same_file(&checked, &opened) {
        return Err(ReadError::Changed);
    }
    let expected = opened.len().min(max_bytes);
    let mut bytes = Vec::with_capacity(usize::try_from(expected).unwrap_or(0));
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > max_bytes {
        return Err(ReadError::TooLarge {
            size: bytes.len() as u64,
        });
    }
    Ok(bytes)
}

/// [`read_regular`] for callers outside this crate (the pipeline's recipe and manifest readers): the same checks,
/// with the reason a file was refused as an `io::Error` whose message reads after "cannot read <file>: ".
pub fn read_input_file(path: &Path, max_bytes: u64) -> std::io::Result<Vec<u8>> {
    use std::io::{Error, ErrorKind};
    read_regular(path, max_bytes).map_err(|e| match e {
        ReadError::Io(e) => e,
        ReadError::NotRegular(kind) => Error::new(
            ErrorKind::InvalidInput,
            format!("it is {kind}, not a regular file"),
        ),
        ReadError::TooLarge { size } => Error::new(
            ErrorKind::InvalidData,
            format!("it holds at least {size} bytes, over the limit of {max_bytes} bytes"),
        ),
        ReadError::Changed => Error::other("the file changed while it was being opened"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_regular_files_under_the_cap_only() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.bin");
        std::fs::write(&file, [7u8; 100]).unwrap();
        assert_eq!(read_regular(&file, 100).unwrap(), vec![7u8; 100]);
        assert!(matches!(
            read_regular(&file, 99),
            Err(ReadError::TooLarge { size: 100 })
        ));
        assert!(matches!(
            read_regular(dir.path(), 1 << 20),
            Err(ReadError::NotRegular("a directory"))
        ));
        assert!(matches!(
            read_regular(&dir.path().join("missing"), 1 << 20),
            Err(ReadError::Io(_))
        ));
    }
}
