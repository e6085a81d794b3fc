//! The ledger of one shard: a JSON-lines journal appended (and fsynced) per finished sample, and the Parquet part
//! rewritten atomically from it. The journal is the truth for `--resume`; a torn last line (a kill mid-write) is
//! dropped, and a record that cannot be appended in full (a disk that filled up) is cut off again at once. A
//! resume checks that the journal was written by the same recipe and model ([`check_resumable`]).
//!
//! Memory stays flat however long the run: the ledger keeps only where each sample's latest record lies in the
//! journal, and the Parquet part is written from the journal a chunk of records at a time.

use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use texaug_stages::files;

use super::disk::{fault_before_write, OutputUnwritable};
use super::layout::{journal_path, manifest_dir, parquet_path};
use super::parquet::write_parquet_chunked;
use super::record::SampleRecord;
use crate::plan::Shard;

/// Rewrite the Parquet part after this many new records (or a tenth of the part, when larger), so a long run's
/// manifest is readable while it runs without rewriting cost growing with the square of its size.
const PARQUET_EVERY: usize = 64;

/// Records per row group when the Parquet part is written from the journal: the memory a rewrite takes.
pub const PARQUET_CHUNK: usize = 2048;

/// Reads a journal: every complete line; a torn (unterminated or unparsable) last line is ignored. Returns the
/// records and the byte length of the complete part.
pub fn read_journal(path: &Path) -> Result<(Vec<SampleRecord>, u64)> {
    let (located, valid_len) = read_journal_located(path)?;
    Ok((located.into_iter().map(|(r, _)| r).collect(), valid_len))
}

/// Where a record lies in the journal, and whether it is a success.
#[derive(Clone, Copy, Debug)]
struct Entry {
    offset: u64,
    len: u64,
    ok: bool,
}

/// [`read_journal`], each record with its entry.
fn read_journal_located(path: &Path) -> Result<(Vec<(SampleRecord, Entry)>, u64)> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(e) => return Err(e).with_context(|| format!("reading journal {}", path.display())),
    };
    let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let text = String::from_utf8_lossy(&bytes[..complete]);
    let lines: Vec<&str> = text.lines().collect();
    let mut records = Vec::with_capacity(lines.len());
    let mut valid_len = 0u64;
    for (i, line) in lines.iter().enumerate() {
        match serde_json::from_str::<SampleRecord>(line) {
            Ok(r) => {
                let entry = Entry {
                    offset: valid_len,
                    len: line.len() as u64,
                    ok: r.is_done(),
                };
                records.push((r, entry));
                valid_len += line.len() as u64 + 1;
            }
            // A kill can leave a line whose newline reached the disk before its bytes did; drop it only if last.
            Err(_) if i + 1 == lines.len() => break,
            Err(e) => bail!(
                "{}:{}: journal line is corrupt ({e}); remove the line (its sample will be made again) and resume",
                path.display(),
                i + 1
            ),
        }
    }
    Ok((records, valid_len))
}

/// The last record of each sample_id, sorted by id (a retried sample's later record wins).
pub fn latest_by_id(records: Vec<SampleRecord>) -> BTreeMap<String, SampleRecord> {
    let mut map = BTreeMap::new();
    for r in records {
        map.insert(r.sample_id.clone(), r);
    }
    map
}

/// The first 12 characters of a hash, as messages show it.
fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

/// Whether a journal's `records` were made by the recipe and model a resume would add to: `Err` with the message
/// (which hash differs, old → new, and how to go on) when a record carries another `recipe_hash` or `model_hash`.
pub fn check_resumable(
    records: &[SampleRecord],
    recipe_hash: &str,
    model_hash: &str,
    journal: &Path,
) -> Result<(), String> {
    let old_recipe = records.iter().find(|r| r.recipe_hash != recipe_hash);
    let old_model = records.iter().find(|r| r.model_hash != model_hash);
    let mut what = Vec::new();
    if let Some(r) = old_recipe {
        what.push(format!(
            "the recipe differs (recipe_hash {} in the journal, {} now: the recipe file was edited)",
            short(&r.recipe_hash),
            short(recipe_hash)
        ));
    }
    if let Some(r) = old_model {
        what.push(format!(
            "the model differs (model_hash {} in the journal, {} now: another model, ControlNet or depth \
             estimator, or changed weights)",
            short(&r.model_hash),
            short(model_hash)
        ));
    }
    if what.is_empty() {
        return Ok(());
    }
    Err(format!(
        "cannot resume: {} holds samples of another run: {}. Start a new output with --output DIR, or pass \
         --force-resume to keep the old samples beside new ones",
        journal.display(),
        what.join("; and ")
    ))
}

/// The writer side: owned by one thread.
pub struct Ledger {
    journal: std::fs::File,
    journal_path: PathBuf,
    /// The journal's length after its last complete record.
    journal_len: u64,
    parquet: PathBuf,
    /// The latest record of each sample, by id (a retried sample's later record wins).
    index: BTreeMap<String, Entry>,
    unsaved: usize,
}

/// How many samples of the shard the journal holds, by outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LedgerSummary {
    pub ok: usize,
    pub failed: usize,
}

impl Ledger {
    /// Opens the shard's ledger. Without `resume`, an existing non-empty journal or part is an error (so a run
    /// never silently mixes with an older one); with it, the journal's records are loaded and the torn tail cut.
    pub fn open(output: &Path, shard: Shard, resume: bool) -> Result<Ledger> {
        let journal = journal_path(output, shard);
        let parquet = parquet_path(output, shard);
        let non_empty = |p: &Path| std::fs::metadata(p).map(|m| m.len() > 0).unwrap_or(false);
        // Results exist when the journal holds a record (a run that stopped before its first sample leaves an
        // empty journal and part, which block nothing), or when a part exists without a journal (a merged folder).
        let has_results = non_empty(&journal) || (!journal.exists() && non_empty(&parquet));
        if !resume && has_results {
            bail!(
                "{} already holds results of shard {shard}; pass --resume to continue that run, \
                 or --output <another folder> to start a new one",
                output.display()
            );
        }
        std::fs::create_dir_all(manifest_dir(output))
            .with_context(|| format!("creating {}", manifest_dir(output).display()))?;
        files::remove_temp_files_for(&parquet);
        let (records, valid_len) = read_journal_located(&journal)?;
        let index = records
            .into_iter()
            .map(|(r, entry)| (r.sample_id, entry))
            .collect();
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(&journal)
            .with_context(|| format!("opening journal {}", journal.display()))?;
        // Cut a torn tail so the next record starts on its own line.
        file.set_len(valid_len)
            .with_context(|| format!("truncating the torn tail of {}", journal.display()))?;
        Ok(Ledger {
            journal: file,
            journal_path: journal,
            journal_len: valid_len,
            parquet,
            index,
            unsaved: 0,
        })
    }

    /// The samples whose latest record is a success: what a resumed run does not make again.
    pub fn ok_ids(&self) -> HashSet<String> {
        self.index
            .iter()
            .filter(|(_, e)| e.ok)
            .map(|(id, _)| id.clone())
            .collect()
    }

    pub fn summary(&self) -> LedgerSummary {
        let ok = self.index.values().filter(|e| e.ok).count();
        LedgerSummary {
            ok,
            failed: self.index.len() - ok,
        }
    }

    /// Appends one record durably; see [`Ledger::append_all`].
    pub fn append(&mut self, record: SampleRecord) -> Result<()> {
        self.append_all(vec![record])
    }

    /// Appends a job's records durably in one write (write, flush, fsync), then refreshes the Parquet part now and
    /// then. Records that cannot be written whole are cut off again, so the journal ends on a complete line; a full
    /// or read-only disk is an [`OutputUnwritable`] error.
    pub fn append_all(&mut self, records: Vec<SampleRecord>) -> Result<()> {
        let Some(first) = records.first().map(|r| r.sample_id.clone()) else {
            return Ok(());
        };
        let mut bytes = Vec::new();
        let mut lines = Vec::with_capacity(records.len());
        for record in &records {
            let start = bytes.len();
            serde_json::to_writer(&mut bytes, record).context("encoding a journal record")?;
            lines.push((start as u64, (bytes.len() - start) as u64));
            bytes.push(b'\n');
        }
        let written = fault_before_write(&self.journal_path)
            .and_then(|_| self.journal.write_all(&bytes))
            .and_then(|_| self.journal.flush())
            .and_then(|_| self.journal.sync_data());
        if let Err(e) = written {
            let _ = self.journal.set_len(self.journal_len);
            let what = format!("the journal record of sample {first}");
            return Err(
                match OutputUnwritable::classify(&e, what, &self.journal_path) {
                    Some(full) => anyhow::Error::new(full),
                    None => anyhow::Error::new(e).context(format!(
                        "appending to the journal {}",
                        self.journal_path.display()
                    )),
                },
            );
        }
        for (record, (start, len)) in records.into_iter().zip(lines) {
            let entry = Entry {
                offset: self.journal_len + start,
                len,
                ok: record.is_done(),
            };
            self.index.insert(record.sample_id, entry);
            self.unsaved += 1;
        }
        self.journal_len += bytes.len() as u64;
        if self.unsaved >= PARQUET_EVERY.max(self.index.len() / 10) {
            self.save_parquet()?;
        }
        Ok(())
    }

    /// Rewrites the Parquet part from the journal, in sample-id order, [`PARQUET_CHUNK`] records at a time.
    pub fn save_parquet(&mut self) -> Result<()> {
        let mut reader = std::fs::File::open(&self.journal_path)
            .with_context(|| format!("reading journal {}", self.journal_path.display()))?;
        let journal_path = &self.journal_path;
        let mut entries = self.index.iter().peekable();
        let mut line = Vec::new();
        let next_chunk = || -> Result<Option<Vec<SampleRecord>>> {
            if entries.peek().is_none() {
                return Ok(None);
            }
            let mut rows = Vec::with_capacity(PARQUET_CHUNK);
            for (id, e) in entries.by_ref().take(PARQUET_CHUNK) {
                line.resize(e.len as usize, 0);
                reader
                    .seek(SeekFrom::Start(e.offset))
                    .and_then(|_| reader.read_exact(&mut line))
                    .with_context(|| format!("reading journal {}", journal_path.display()))?;
                let record: SampleRecord = serde_json::from_slice(&line).with_context(|| {
                    format!(
                        "{}: the record of sample {id} changed on disk while the run wrote it",
                        journal_path.display()
                    )
                })?;
                rows.push(record);
            }
            Ok(Some(rows))
        };
        write_parquet_chunked(&self.parquet, next_chunk).map_err(|e| {
            OutputUnwritable::classify_anyhow(e, "the manifest part", &self.parquet)
        })?;
        self.unsaved = 0;
        Ok(())
    }

    /// Writes the final Parquet part and says what the shard holds.
    pub fn finish(mut self) -> Result<LedgerSummary> {
        self.save_parquet()?;
        Ok(self.summary())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::parquet::read_parquet;
    use crate::output::record::tests::record;

    #[test]
    fn a_torn_last_line_is_dropped_and_cut_on_resume() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path();
        let mut l = Ledger::open(out, Shard::ALL, false).unwrap();
        l.append(record("a", "ok")).unwrap();
        l.append(record("b", "failed")).unwrap();
        drop(l);
        let jp = journal_path(out, Shard::ALL);
        let mut f = std::fs::OpenOptions::new().append(true).open(&jp).unwrap();
        f.write_all(b"{\"sample_id\":\"c\",\"ru").unwrap();
        drop(f);
        let (recs, _) = read_journal(&jp).unwrap();
        assert_eq!(recs.len(), 2);
        let mut l = Ledger::open(out, Shard::ALL, true).unwrap();
        assert_eq!(l.summary(), LedgerSummary { ok: 1, failed: 1 });
        assert_eq!(l.ok_ids(), HashSet::from(["a".to_string()]));
        l.append(record("b", "ok")).unwrap();
        assert_eq!(l.finish().unwrap(), LedgerSummary { ok: 2, failed: 0 });
        let (recs, _) = read_journal(&jp).unwrap();
        assert_eq!(recs.len(), 3);
        let part = read_parquet(&parquet_path(out, Shard::ALL)).unwrap();
        let ids: Vec<&str> = part.iter().map(|r| r.sample_id.as_str()).collect();
        assert_eq!(ids, vec!["a", "b"]);
    }

    #[test]
    fn the_part_is_written_from_the_journal_in_chunks_with_the_latest_record_of_each_sample() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path();
        let mut l = Ledger::open(out, Shard::ALL, false).unwrap();
        let n = PARQUET_CHUNK * 2 + 17;
        for i in (0..n).rev() {
            let status = if i % 3 == 0 { "failed" } else { "ok" };
            l.append(record(&format!("s{i:05}"), status)).unwrap();
        }
        // Retried: the later record wins.
        l.append(record("s00000", "ok")).unwrap();
        assert_eq!(l.finish().unwrap().failed, (n - 1) / 3);
        let part = read_parquet(&parquet_path(out, Shard::ALL)).unwrap();
        let ids: Vec<String> = part.iter().map(|r| r.sample_id.clone()).collect();
        let expected: Vec<String> = (0..n).map(|i| format!("s{i:05}")).collect();
        assert_eq!(ids, expected, "every sample once, sorted by id");
        assert!(part[0].is_ok() && !part[3].is_ok());
    }

    #[test]
    fn an_existing_run_needs_resume() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(dir.path(), Shard::ALL, false).unwrap();
        l.append(record("a", "ok")).unwrap();
        drop(l);
        let err = Ledger::open(dir.path(), Shard::ALL, false).err().unwrap();
        assert!(err.to_string().contains("--resume"), "{err}");
        // Another shard of the same output is independent.
        assert!(Ledger::open(dir.path(), Shard { index: 1, count: 2 }, false).is_ok());
    }

    #[test]
    fn a_journal_of_another_recipe_or_model_cannot_be_resumed() {
        let journal = Path::new("out/manifest/part-0000-of-0001.journal.jsonl");
        let mut a = record("a", "ok");
        a.recipe_hash = "1111111111110000".into();
        a.model_hash = "aaaaaaaaaaaa0000".into();
        let same = [a.clone()];
        assert!(check_resumable(&same, &a.recipe_hash, &a.model_hash, journal).is_ok());
        assert!(check_resumable(&[], "x", "y", journal).is_ok());
        let err = check_resumable(&same, "2222222222220000", &a.model_hash, journal).unwrap_err();
        assert!(
            err.contains(
                "recipe differs (recipe_hash 111111111111 in the journal, 222222222222 now"
            ) && !err.contains("model differs")
                && err.contains("--output DIR")
                && err.contains("--force-resume"),
            "{err}"
        );
        let err = check_resumable(&same, &a.recipe_hash, "bbbbbbbbbbbb0000", journal).unwrap_err();
        assert!(
            err.contains("model differs (model_hash aaaaaaaaaaaa in the journal, bbbbbbbbbbbb now")
                && !err.contains("recipe differs"),
            "{err}"
        );
        // One record of another run among many is enough.
        let mut b = a.clone();
        b.model_hash = "cccccccccccc0000".into();
        assert!(check_resumable(&[a.clone(), b], &a.recipe_hash, &a.model_hash, journal).is_err());
    }

    #[test]
    fn a_corrupt_middle_line_is_an_error_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let jp = dir.path().join("j.jsonl");
        let good = serde_json::to_string(&record("a", "ok")).unwrap();
        std::fs::write(&jp, format!("{good}\nnot json\n{good}\n")).unwrap();
        let err = read_journal(&jp).unwrap_err();
        assert!(err.to_string().contains("j.jsonl:2"), "{err}");
    }
}
