//! Where things lie in an output folder: `samples/<first two characters of the id>/<sample_id>/`,
//! `manifest/part-IIII-of-NNNN.{journal.jsonl,parquet,lock}`, `manifest/part-merged.parquet` and `run.toml`. Every
//! path of an output folder is made here.

use std::path::{Path, PathBuf};

use crate::plan::Shard;

/// The merged part `texaug merge` writes.
pub const MERGED_PART: &str = "part-merged.parquet";
pub const RUN_TOML: &str = "run.toml";

/// Whether `s` is a sample id as texaug makes them (`plan.rs`): 16 lowercase hex characters. An id read back from
/// a manifest is checked with this before it becomes part of a path, so no `..` or `/` can reach one.
pub fn is_sample_id(s: &str) -> bool {
    s.len() == 16
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The folder of one sample, relative to the output folder: under one of 256 subfolders named by the id's first
/// two hex digits, so a folder of 10^7 samples lists 256 entries and each of those ~40,000 (docs/SCALE.md).
pub fn sample_rel_dir(sample_id: &str) -> String {
    let prefix = sample_id.get(..2).unwrap_or("__");
    format!("samples/{prefix}/{sample_id}")
}

/// The folder of a sample in an output written before samples were split by prefix (`samples/<sample_id>`).
pub fn legacy_sample_dir(output: &Path, sample_id: &str) -> PathBuf {
    output.join("samples").join(sample_id)
}

/// A file of one sample, relative to the output folder (as the manifest records it).
pub fn sample_rel_file(sample_id: &str, file: &str) -> String {
    format!("{}/{file}", sample_rel_dir(sample_id))
}

pub fn sample_dir(output: &Path, sample_id: &str) -> PathBuf {
    output.join(sample_rel_dir(sample_id))
}

pub fn manifest_dir(output: &Path) -> PathBuf {
    output.join("manifest")
}

/// `part-<tag>.journal.jsonl`, the tag being a shard's (`0003-of-0016`).
pub fn journal_name(tag: &str) -> String {
    format!("part-{tag}.journal.jsonl")
}

pub fn parquet_name(tag: &str) -> String {
    format!("part-{tag}.parquet")
}

pub fn journal_path(output: &Path, shard: Shard) -> PathBuf {
    manifest_dir(output).join(journal_name(&shard.tag()))
}

pub fn parquet_path(output: &Path, shard: Shard) -> PathBuf {
    manifest_dir(output).join(parquet_name(&shard.tag()))
}

/// The lock file of one shard of an output folder, beside its journal: held (flock) by the run writing the shard.
pub fn lock_path(output: &Path, shard: Shard) -> PathBuf {
    manifest_dir(output).join(format!("part-{}.lock", shard.tag()))
}

/// The shard tag of a manifest file name (`part-<tag>.journal.jsonl` or `part-<tag>.parquet`), if it is one.
pub fn part_tag(file_name: &str) -> Option<&str> {
    let tag = file_name.strip_prefix("part-")?;
    tag.strip_suffix(".journal.jsonl")
        .or_else(|| tag.strip_suffix(".parquet"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_ids_are_sixteen_lowercase_hex_characters() {
        assert!(is_sample_id("0123456789abcdef"));
        for bad in [
            "",
            "0123456789ABCDEF",
            "0123456789abcde",
            "0123456789abcdef0",
            "../../../etc/pas",
            "0123456789abcd/f",
            "0123456789abcdeg",
        ] {
            assert!(!is_sample_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn the_lock_lies_beside_the_journal_and_is_no_part() {
        let shard = Shard {
            index: 3,
            count: 16,
        };
        let lock = lock_path(Path::new("out"), shard);
        assert_eq!(lock, Path::new("out/manifest/part-0003-of-0016.lock"));
        assert_eq!(
            lock.parent(),
            journal_path(Path::new("out"), shard).parent()
        );
        assert_eq!(part_tag("part-0003-of-0016.lock"), None);
    }
}
