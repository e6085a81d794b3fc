//! When the output folder cannot take more files — its disk is full (ENOSPC), its file system is read-only, or
//! writing there is denied — a run stops at once rather than failing every remaining sample after spending device
//! time on it. This file tells such errors from a sample's own ([`unwritable_kind`]), words the one message the
//! run ends with ([`OutputUnwritable`]), and holds the fault-injection hook the tests fill a disk with
//! ([`fault_before_write`]).

use std::error::Error;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// **Fault injection for tests.** `TEXAUG_FAULT_ENOSPC_AFTER=N` (N ≥ 1) makes the N-th write into the output (a
/// sample's files or a journal record, counted together in this process) and every later one fail with
/// `StorageFull`, as a disk that has filled up would. Unset (the normal case) it costs one atomic load per write.
pub const FAULT_ENV: &str = "TEXAUG_FAULT_ENOSPC_AFTER";

/// The fault-injection hook, called before each sample write and each journal append (the only two callers):
/// `Err(StorageFull)` once the count [`FAULT_ENV`] names is reached, `Ok` otherwise.
pub fn fault_before_write(path: &Path) -> io::Result<()> {
    static AFTER: OnceLock<Option<u64>> = OnceLock::new();
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let Some(after) = *AFTER.get_or_init(|| {
        std::env::var(FAULT_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
    }) else {
        return Ok(());
    };
    if WRITES.fetch_add(1, Ordering::SeqCst) + 1 >= after {
        return Err(io::Error::new(
            io::ErrorKind::StorageFull,
            format!(
                "No space left on device (injected by {FAULT_ENV}={after} at {})",
                path.display()
            ),
        ));
    }
    Ok(())
}

/// The kind of an error that means the output folder takes no more files: `StorageFull`, `ReadOnlyFilesystem`
/// or `PermissionDenied`, found by walking the error's `source()` chain to an `io::Error`. Some writers (the
/// Parquet encoder) pass an `io::Error` on only as text; `No space left on device` (the ENOSPC message) in any
/// message of the chain counts as `StorageFull` too. Call it only on errors of writes into the output folder:
/// a `PermissionDenied` reading a source is a sample's own failure.
pub fn unwritable_kind(err: &(dyn Error + 'static)) -> Option<io::ErrorKind> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            let kind = io.kind();
            if matches!(
                kind,
                io::ErrorKind::StorageFull
                    | io::ErrorKind::ReadOnlyFilesystem
                    | io::ErrorKind::PermissionDenied
            ) {
                return Some(kind);
            }
        }
        if e.to_string().contains("No space left on device") {
            return Some(io::ErrorKind::StorageFull);
        }
        next = e.source();
    }
    None
}

/// [`unwritable_kind`] of an `anyhow::Error` (its chain, context included).
pub fn unwritable_kind_anyhow(err: &anyhow::Error) -> Option<io::ErrorKind> {
    err.chain().find_map(unwritable_kind)
}

/// The run stopped because the output takes no more files. Its `Display` is the whole message the user sees.
#[derive(Debug)]
pub struct OutputUnwritable {
    pub kind: io::ErrorKind,
    /// What was being written (`sample 0123… (its files)`, `the journal`).
    pub what: String,
    pub path: PathBuf,
    /// The underlying error, as text.
    pub detail: String,
}

impl OutputUnwritable {
    /// `Some` when `err` (from writing `what` at `path`) is one of [`unwritable_kind`]'s.
    pub fn classify(
        err: &(dyn Error + 'static),
        what: impl Into<String>,
        path: &Path,
    ) -> Option<OutputUnwritable> {
        unwritable_kind(err).map(|kind| OutputUnwritable {
            kind,
            what: what.into(),
            path: path.to_path_buf(),
            detail: chain_text(err),
        })
    }

    /// As [`Self::classify`] for an `anyhow::Error`; any other error is returned as it is.
    pub fn classify_anyhow(err: anyhow::Error, what: &str, path: &Path) -> anyhow::Error {
        match unwritable_kind_anyhow(&err) {
            Some(kind) => anyhow::Error::new(OutputUnwritable {
                kind,
                what: what.to_string(),
                path: path.to_path_buf(),
                detail: format!("{err:#}"),
            }),
            None => err,
        }
    }
}

fn chain_text(err: &(dyn Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut next = err.source();
    while let Some(e) = next {
        let s = e.to_string();
        if !text.contains(&s) {
            text.push_str(": ");
            text.push_str(&s);
        }
        next = e.source();
    }
    text
}

impl fmt::Display for OutputUnwritable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (state, fix) = match self.kind {
            io::ErrorKind::StorageFull => ("the disk is full", "free space and run again with --resume"),
            io::ErrorKind::ReadOnlyFilesystem => (
                "the output is on a read-only file system",
                "make it writable (or pass --output DIR on a writable disk) and run again with --resume",
            ),
            _ => (
                "the output is not writable (permission denied)",
                "make it writable and run again with --resume",
            ),
        };
        write!(
            f,
            "the run stopped: {state}. Writing {} at {} failed ({}). Every sample recorded in the journal is \
             kept and nothing half-written is left; {fix}",
            self.what,
            self.path.display(),
            self.detail
        )
    }
}

impl Error for OutputUnwritable {}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(io::Error);
    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "cannot write x.png")
        }
    }
    impl Error for Outer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn a_full_disk_is_found_down_the_source_chain_and_other_errors_are_not() {
        let full = Outer(io::Error::from(io::ErrorKind::StorageFull));
        assert_eq!(unwritable_kind(&full), Some(io::ErrorKind::StorageFull));
        let ro = Outer(io::Error::from(io::ErrorKind::ReadOnlyFilesystem));
        assert_eq!(
            unwritable_kind(&ro),
            Some(io::ErrorKind::ReadOnlyFilesystem)
        );
        let other = Outer(io::Error::other("the PNG encoder broke"));
        assert_eq!(unwritable_kind(&other), None);
        // Passed on as text only (the Parquet writer): the ENOSPC message still counts.
        let text = Outer(io::Error::other("No space left on device (os error 28)"));
        assert_eq!(unwritable_kind(&text), Some(io::ErrorKind::StorageFull));
        let any =
            anyhow::Error::new(io::Error::from(io::ErrorKind::StorageFull)).context("appending");
        let e = OutputUnwritable::classify_anyhow(any, "the journal", Path::new("/o/j.jsonl"));
        let msg = e.to_string();
        assert!(e.downcast_ref::<OutputUnwritable>().is_some());
        assert!(
            msg.contains("disk is full")
                && msg.contains("/o/j.jsonl")
                && msg.contains("free space and run again with --resume"),
            "{msg}"
        );
        let plain = OutputUnwritable::classify_anyhow(anyhow::anyhow!("bad"), "x", Path::new("y"));
        assert!(plain.downcast_ref::<OutputUnwritable>().is_none());
    }
}
