//! The plan's jobs grouped into fixed batches ("units") on the full, unsharded plan, before `--shard` and
//! `--resume` filter it: a sample's batch — and so its bytes, where a batched kernel's rounding depends on its
//! batch — is the same in a plain, a sharded and a resumed run. A shard runs whole units; a resumed run runs a
//! partly recorded unit whole again and keeps only what it lacks.
//!
//! Both the batches and the shards hold still when sources are added:
//! - Jobs batch in plan order (the manifest's order), so rows appended to a manifest leave every earlier batch as it
//!   was but the last, unfilled one of each kind.
//! - A job whose id hashes to 0 modulo [`SEGMENT_BATCHES`] × batch is an *anchor*: it starts a new batch, and the
//!   batches from it to the next anchor of their kind form a *segment*. A row inserted in the middle of a manifest
//!   re-batches only the rest of its segment, not everything after it.
//! - Shards take contiguous stretches of the segments ordered by a hash of their anchor's id (the kind's first
//!   segment by a hash of the kind), cut where the jobs before a batch reach I/N of all jobs. The cuts balance the
//!   shards to a batch at each end, and added work lands at random places of that order, so the cuts move little:
//!   a batch changes shard only when its segment is split by a new anchor or it sits next to a cut. Hashing the
//!   segments' places also mixes every kind (and so every strength, i.e. cost) into every shard.

use std::collections::HashMap;

use sha2::{Digest, Sha256};
use texaug_stages::diffusion::request::t_start;

use super::jobs::{Job, JobRef};
use super::shard::Shard;

/// Batches per segment on average: longer segments waste less of a batch at their end (about half a batch per
/// segment), shorter ones re-batch less after an inserted row.
pub const SEGMENT_BATCHES: u64 = 8;

/// What must agree inside one UNet call, as far as the plan knows it: the stage (its kind, condition, scheduler
/// and model), steps, the start step strength turns into, guided or not, and the size. Prompt, negative prompt,
/// guidance value, seed and strength within one start step are per request.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
struct UnitKey {
    stage_index: usize,
    steps: u32,
    t_start: usize,
    guided: bool,
    size: u32,
}

impl UnitKey {
    /// A stable spelling of the key, hashed for the segment before a kind's first anchor.
    fn label(&self) -> String {
        format!(
            "{}/{}/{}/{}/{}",
            self.stage_index, self.steps, self.t_start, self.guided, self.size
        )
    }
}

/// What batching reads of a job: a full [`Job`], or the compact [`JobRef`] a shard plans every job with.
pub trait Batchable {
    fn sample_id(&self) -> &str;
    /// Stage index, steps, strength, guidance and size: what the batch key is made of.
    fn key_fields(&self) -> (usize, u32, f64, f64, u32);
    fn set_unit(&mut self, unit: usize);
}

impl Batchable for Job {
    fn sample_id(&self) -> &str {
        &self.sample_id
    }
    fn key_fields(&self) -> (usize, u32, f64, f64, u32) {
        (
            self.stage_index,
            self.steps,
            self.strength,
            self.guidance,
            self.size,
        )
    }
    fn set_unit(&mut self, unit: usize) {
        self.unit = unit;
    }
}

impl Batchable for JobRef {
    fn sample_id(&self) -> &str {
        JobRef::sample_id(self)
    }
    fn key_fields(&self) -> (usize, u32, f64, f64, u32) {
        (
            self.stage_index as usize,
            self.steps,
            self.strength,
            self.guidance,
            self.size,
        )
    }
    fn set_unit(&mut self, unit: usize) {
        self.unit = unit;
    }
}

fn unit_key(job: &impl Batchable) -> UnitKey {
    let (stage_index, steps, strength, guidance, size) = job.key_fields();
    UnitKey {
        stage_index,
        steps,
        t_start: t_start(steps as usize, strength),
        guided: guidance > 1.0,
        size,
    }
}

fn hash64(bytes: &[u8]) -> u64 {
    let digest = Sha256::digest(bytes);
    u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
}

fn is_anchor(job: &impl Batchable, batch: usize) -> bool {
    hash64(job.sample_id().as_bytes()).is_multiple_of(SEGMENT_BATCHES * batch.max(1) as u64)
}

/// Jobs of the plan (in plan order) with equal keys, `batch` at most per unit, an anchor starting a new one; each
/// unit stands where its first job stands in the plan, and every job's `unit` is set to its unit's index.
pub fn units<J: Batchable>(jobs: Vec<J>, batch: usize) -> Vec<Vec<J>> {
    let batch = batch.max(1);
    let mut units: Vec<Vec<J>> = Vec::new();
    // Key → the unit still taking jobs for it (full units stay where they are, so first-seen order holds).
    let mut open: HashMap<UnitKey, usize> = HashMap::new();
    for mut job in jobs {
        let key = unit_key(&job);
        match open.get(&key) {
            Some(&i) if units[i].len() < batch && !is_anchor(&job, batch) => {
                job.set_unit(i);
                units[i].push(job);
            }
            _ => {
                open.insert(key, units.len());
                job.set_unit(units.len());
                units.push(vec![job]);
            }
        }
    }
    units
}

/// The shard (of `count`) of every unit of the full plan `units` (as [`units`] made them with `batch`).
pub fn unit_shards<J: Batchable>(units: &[Vec<J>], batch: usize, count: usize) -> Vec<usize> {
    let count = count.max(1);
    // (segment hash, place in the segment, unit index), in unit order.
    let mut order: Vec<(u64, usize, usize)> = Vec::with_capacity(units.len());
    let mut segment_of: HashMap<UnitKey, (u64, usize)> = HashMap::new();
    for (i, unit) in units.iter().enumerate() {
        let Some(first) = unit.first() else { continue };
        let key = unit_key(first);
        let segment = match segment_of.get_mut(&key) {
            Some(seg) if !is_anchor(first, batch) => {
                seg.1 += 1;
                *seg
            }
            _ => {
                let hash = if is_anchor(first, batch) {
                    hash64(first.sample_id().as_bytes())
                } else {
                    hash64(key.label().as_bytes())
                };
                segment_of.insert(key, (hash, 0));
                (hash, 0)
            }
        };
        order.push((segment.0, segment.1, i));
    }
    order.sort_unstable();
    let total: usize = units.iter().map(Vec::len).sum();
    let mut shards = vec![0; units.len()];
    let mut before = 0usize;
    for &(_, _, i) in &order {
        let len = units[i].len();
        // The unit's middle decides its shard, so a cut falls between the units nearest to I/N of the jobs.
        let middle = before as u128 * 2 + len as u128;
        shards[i] = ((middle * count as u128) / (2 * total.max(1) as u128)) as usize;
        before += len;
    }
    shards
}

/// The units of one shard.
pub fn shard_units<J: Batchable>(units: Vec<Vec<J>>, batch: usize, shard: Shard) -> Vec<Vec<J>> {
    let shards = unit_shards(&units, batch, shard.count);
    units
        .into_iter()
        .zip(shards)
        .filter(|(_, s)| *s == shard.index)
        .map(|(u, _)| u)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::recipe::Recipe;
    use crate::config::sources::{Source, SourceKind};
    use crate::plan::jobs::plan;
    use std::collections::{BTreeSet, HashMap};
    use std::path::PathBuf;

    fn jobs(n: usize, strength: &str, steps: u32) -> Vec<Job> {
        let ids: Vec<String> = (0..n).map(|i| format!("s{i}")).collect();
        jobs_of(&ids, strength, steps)
    }

    fn jobs_of(ids: &[String], strength: &str, steps: u32) -> Vec<Job> {
        let (recipe, sources) = plan_inputs(ids, strength, steps);
        plan(&recipe, &sources)
    }

    fn plan_inputs(ids: &[String], strength: &str, steps: u32) -> (Recipe, Vec<Source>) {
        let sources: Vec<Source> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| Source {
                id: id.clone(),
                path: PathBuf::from(format!("{id}.png")),
                label: "mug".into(),
                kind: SourceKind::Image,
                depth: None,
                mask: None,
                prompt: None,
                split: None,
                origin: PathBuf::from("m.csv"),
                line: i + 2,
            })
            .collect();
        let recipe: Recipe = toml::from_str(&format!(
            "name = \"t\"\n[sources]\nmanifest = \"m.csv\"\n[model]\npath = \"m\"\n[[stage]]\nkind = \"style\"\n\
             prompts = [\"a {{label}}\", \"a blue {{label}}\"]\nstrength = {strength}\nsteps = {steps}\nvariants = 3\n\
             [[stage]]\nname = \"second\"\nkind = \"style\"\nprompts = [\"a red {{label}}\"]\nstrength = 0.5\n"
        ))
        .unwrap();
        (recipe, sources)
    }

    #[test]
    fn a_shard_planned_compact_is_that_shard_of_the_full_plan() {
        let (recipe, sources) = plan_inputs(&names(0..300, "obj"), "[0.3, 0.9]", 20);
        let full = units(plan(&recipe, &sources), 4);
        let compact = units(crate::plan::jobs::plan_refs(&recipe, &sources), 4);
        assert_eq!(unit_shards(&full, 4, 5), unit_shards(&compact, 4, 5));
        let view = |j: &Job| {
            (
                j.sample_id.clone(),
                j.unit,
                j.seed,
                j.strength.to_bits(),
                j.prompt.clone(),
                j.stage.clone(),
                j.scheduler.clone(),
            )
        };
        for index in 0..5 {
            let shard = Shard { index, count: 5 };
            let expected: Vec<_> = shard_units(full.clone(), 4, shard)
                .iter()
                .flatten()
                .map(view)
                .collect();
            let mut builder = crate::plan::jobs::JobBuilder::new(&recipe, &sources);
            let got: Vec<_> = shard_units(compact.clone(), 4, shard)
                .iter()
                .flatten()
                .map(|r| view(&builder.build(r)))
                .collect();
            assert!(!got.is_empty());
            assert_eq!(got, expected, "shard {index}/5");
        }
    }

    #[test]
    fn ranged_strength_fills_batches_within_one_start_step() {
        // Strength in [0.4, 0.8] over 10 steps starts at one of five steps: 60 jobs of the first stage share five
        // start steps, so batches of 4 fill (not one job per batch, as a key on the exact strength would give).
        let all = jobs(20, "[0.4, 0.8]", 10);
        let n = all.len();
        let units = units(all, 4);
        assert_eq!(units.iter().map(Vec::len).sum::<usize>(), n);
        let full = units.iter().filter(|u| u.len() == 4).count();
        assert!(
            full * 4 >= n * 3 / 4,
            "{full} full units of {}",
            units.len()
        );
        for (i, u) in units.iter().enumerate() {
            let key = unit_key(&u[0]);
            assert!(u.iter().all(|j| unit_key(j) == key && j.unit == i), "{u:?}");
        }
        let strengths: BTreeSet<u64> = units
            .iter()
            .filter(|u| u.len() == 4 && u[0].stage_index == 0)
            .flat_map(|u| u.iter().map(|j| j.strength.to_bits()))
            .collect();
        assert!(
            strengths.len() > 20,
            "batches mix strengths within a start step"
        );
    }

    #[test]
    fn shards_take_whole_units_and_partition_the_plan() {
        let units = units(jobs(30, "[0.4, 0.8]", 10), 4);
        let all: BTreeSet<String> = units
            .iter()
            .flatten()
            .map(|j| j.sample_id.clone())
            .collect();
        let mut seen = BTreeSet::new();
        let mut unit_indices = BTreeSet::new();
        for index in 0..3 {
            let part = shard_units(units.clone(), 4, Shard { index, count: 3 });
            assert!(!part.is_empty(), "shard {index} of 3 is empty");
            for u in &part {
                let original = &units[u[0].unit];
                assert_eq!(
                    u.iter().map(|j| &j.sample_id).collect::<Vec<_>>(),
                    original.iter().map(|j| &j.sample_id).collect::<Vec<_>>(),
                    "a shard holds the units of the full plan, whole"
                );
                assert!(unit_indices.insert(u[0].unit), "a unit in two shards");
                for j in u {
                    assert!(seen.insert(j.sample_id.clone()));
                }
            }
        }
        assert_eq!(seen, all);
    }

    /// Sample id → (its shard of `count`, the ids batched with it).
    fn placement(
        ids: &[String],
        batch: usize,
        count: usize,
    ) -> HashMap<String, (usize, Vec<String>)> {
        let units = units(jobs_of(ids, "[0.3, 0.9]", 20), batch);
        let shards = unit_shards(&units, batch, count);
        let mut out = HashMap::new();
        for (u, s) in units.iter().zip(shards) {
            let mates: Vec<String> = u.iter().map(|j| j.sample_id.clone()).collect();
            for j in u {
                out.insert(j.sample_id.clone(), (s, mates.clone()));
            }
        }
        out
    }

    /// The share of `before`'s samples that keep their shard, and the share that keep their whole batch (so their
    /// bytes).
    fn kept(
        before: &HashMap<String, (usize, Vec<String>)>,
        after: &HashMap<String, (usize, Vec<String>)>,
    ) -> (f64, f64) {
        let shard = before.iter().filter(|(id, p)| after[*id].0 == p.0).count();
        let batch = before.iter().filter(|(id, p)| after[*id] == **p).count();
        let n = before.len() as f64;
        (shard as f64 / n, batch as f64 / n)
    }

    fn names(range: std::ops::Range<usize>, prefix: &str) -> Vec<String> {
        range.map(|i| format!("{prefix}{i:05}")).collect()
    }

    #[test]
    fn appended_sources_move_only_new_work() {
        // 400 sources × 4 jobs, batches of 4, 8 shards; 5% more sources appended to the manifest.
        let old = names(0..400, "obj");
        let mut new = old.clone();
        new.extend(names(400..420, "new"));
        for count in [4, 8] {
            let (shard, batch) = kept(&placement(&old, 4, count), &placement(&new, 4, count));
            assert!(shard >= 0.9, "{count} shards: {shard:.3} keep their shard");
            assert!(batch >= 0.9, "{count} shards: {batch:.3} keep their batch");
        }
    }

    #[test]
    fn inserted_sources_keep_most_shards() {
        // 5% more sources at random places of the manifest (as a sorted folder listing would put them).
        let old = names(0..400, "obj");
        let mut new = old.clone();
        for k in 0..20 {
            let at = (hash64(format!("at{k}").as_bytes()) % new.len() as u64) as usize;
            new.insert(at, format!("ins{k:02}"));
        }
        let (shard, batch) = kept(&placement(&old, 4, 8), &placement(&new, 4, 8));
        assert!(shard >= 0.9, "{shard:.3} keep their shard");
        // An insertion re-batches the rest of its segment only, not everything after it as fixed-size chunks
        // would (0.49 of the samples keep their batch here; 0.26 without anchors).
        assert!(batch >= 0.4, "{batch:.3} keep their batch");
    }

    #[test]
    fn shards_are_balanced_to_ten_percent_at_a_thousand_jobs() {
        for (sources, batch) in [(250, 4), (300, 2), (1000, 8)] {
            let units = units(jobs(sources, "[0.4, 0.8]", 10), batch);
            let total: usize = units.iter().map(Vec::len).sum();
            assert!(total >= 1000);
            for count in [2, 3, 4, 8, 16] {
                let mut size = vec![0usize; count];
                for (u, s) in units.iter().zip(unit_shards(&units, batch, count)) {
                    size[s] += u.len();
                }
                let mean = total as f64 / count as f64;
                let worst = size
                    .iter()
                    .map(|&n| (n as f64 - mean).abs() / mean)
                    .fold(0.0, f64::max);
                assert!(
                    worst <= 0.10,
                    "{total} jobs, batch {batch}, {count} shards: {size:?}"
                );
            }
        }
    }
}
