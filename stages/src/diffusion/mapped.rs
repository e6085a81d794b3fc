//! Weight files mapped into memory, read-only: a weight loaded on the CPU in its file's dtype points into the
//! mapping instead of being copied, as diffusers' safetensors loading does. A 4 GB SD 1.5 folder then loads in
//! the time it takes to read its headers; its pages come from the page cache when first used, shared by every
//! device worker and every process on the machine that maps the same file.
//!
//! A file is mapped at most once per process (by device, inode, size and modification time) and never unmapped, so no
//! tensor can outlive the memory it points into. A mapping holds its inode, so an inode number is never reused for
//! another file while the process runs and the key cannot name a different file. The mapping is read-only: a write to a
//! mapped weight would be a bug, and it faults at once instead of changing another loaded copy; [`overwrite`] is how a
//! weight is changed (the LoRA merge). A file truncated by another process while mapped makes its pages unreadable
//! (SIGBUS), as for any memory-mapped reader; downloads replace files by rename, which leaves the mapping valid.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::sync::Mutex;

use tch::Tensor;

type FileKey = (u64, u64, u64, i64, i64);

static MAPPINGS: Mutex<Option<HashMap<FileKey, &'static memmap2::Mmap>>> = Mutex::new(None);

/// The bytes of `file`, mapped read-only for the rest of the process.
pub fn map(file: &File) -> std::io::Result<&'static [u8]> {
    let meta = file.metadata()?;
    let key = (
        meta.dev(),
        meta.ino(),
        meta.len(),
        meta.mtime(),
        meta.mtime_nsec(),
    );
    let mut maps = MAPPINGS.lock().unwrap_or_else(|p| p.into_inner());
    let maps = maps.get_or_insert_with(HashMap::new);
    if let Some(m) = maps.get(&key) {
        return Ok(&m[..]);
    }
    // SAFETY: read-only; the file's bytes may change under the mapping only if another process writes
    // the file in place, which the module documentation covers (a reader of a mapped file cannot prevent it).
    let m = unsafe { memmap2::MmapOptions::new().map(file)? };
    let m: &'static memmap2::Mmap = Box::leak(Box::new(m));
    maps.insert(key, m);
    Ok(&m[..])
}

/// Whether `t`'s memory lies in a mapped file (and so must not be written).
pub fn is_mapped(t: &Tensor) -> bool {
    let ptr = t.data_ptr() as usize;
    let maps = MAPPINGS.lock().unwrap_or_else(|p| p.into_inner());
    maps.as_ref().is_some_and(|maps| {
        maps.values().any(|m| {
            let start = m.as_ptr() as usize;
            (start..start + m.len()).contains(&ptr)
        })
    })
}

/// Sets the weight `dst` to `value` (same shape), in place when `dst` owns its memory, else by giving it a copy
/// of its own: a mapped weight is never written.
pub fn overwrite(dst: &mut Tensor, value: &Tensor) {
    tch::no_grad(|| {
        if is_mapped(dst) {
            dst.set_data(&value.to_kind(dst.kind()).copy());
        } else {
            dst.copy_(value);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_file_is_mapped_once_and_a_mapped_weight_is_overwritten_by_a_copy() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.bin");
        let values = [1.0f32, 2.0, 3.0, 4.0];
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        File::create(&path).unwrap().write_all(&bytes).unwrap();
        let a = map(&File::open(&path).unwrap()).unwrap();
        let b = map(&File::open(&path).unwrap()).unwrap();
        assert_eq!(a.as_ptr(), b.as_ptr(), "one mapping per file");
        assert_eq!(a, &bytes[..]);
        // SAFETY: 16 bytes of 4-byte aligned memory (a page start) that live for the process.
        let mut t = unsafe {
            Tensor::from_blob(a.as_ptr(), &[4], &[1], tch::Kind::Float, tch::Device::Cpu)
        };
        assert!(is_mapped(&t));
        assert!(!is_mapped(&Tensor::zeros([4], tch::kind::FLOAT_CPU)));
        overwrite(&mut t, &Tensor::from_slice(&[9.0f32, 8.0, 7.0, 6.0]));
        assert!(!is_mapped(&t));
        assert_eq!(Vec::<f32>::try_from(&t).unwrap(), vec![9.0, 8.0, 7.0, 6.0]);
        assert_eq!(a, &bytes[..], "the file's bytes are untouched");
    }
}
