//! The plan's jobs grouped into fixed batches ("units") on the full, unsharded plan, before `--shard` and
//! `--resume` filter it: a sample's batch — and so its bytes, where a batched kernel's rounding depends on its
//! batch — is the same in a plain, a sharded and a resumed run. A shard runs whole units; a resumed run runs a
//! partly recorded unit whole again and keeps only what it lacks.

use std::collections::HashMap;

use sha2::{Digest, Sha256};
use texaug_stages::diffusion::request::t_start;

use super::jobs::Job;
use super::shard::Shard;

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

fn unit_key(job: &Job) -> UnitKey {
    UnitKey {
        stage_index: job.stage_index,
        steps: job.steps,
        t_start: t_start(job.steps as usize, job.strength),
        guided: job.guidance > 1.0,
        size: job.size,
    }
}

/// Jobs of the plan (in plan order) with equal keys, `batch` at most per unit, each unit starting where its first
/// job stands in the plan; every job's `unit` is set to its unit's index.
pub fn units(jobs: Vec<Job>, batch: usize) -> Vec<Vec<Job>> {
    let batch = batch.max(1);
    let mut units: Vec<Vec<Job>> = Vec::new();
    // Key → the unit still taking jobs for it (full units stay where they are, so first-seen order holds).
    let mut open: HashMap<UnitKey, usize> = HashMap::new();
    for mut job in jobs {
        let key = unit_key(&job);
        match open.get(&key) {
            Some(&i) if units[i].len() < batch => {
                job.unit = i;
                units[i].push(job);
            }
            _ => {
                open.insert(key, units.len());
                job.unit = units.len();
                units.push(vec![job]);
            }
        }
    }
    units
}

/// The shard a unit belongs to: from a hash of its first sample id, so the assignment depends on the unit alone.
pub fn unit_shard(unit: &[Job], count: usize) -> usize {
    let first = unit.first().map_or("", |j| j.sample_id.as_str());
    let digest = Sha256::digest(first.as_bytes());
    let n = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
    (n % count.max(1) as u64) as usize
}

/// The units of one shard.
pub fn shard_units(units: Vec<Vec<Job>>, shard: Shard) -> Vec<Vec<Job>> {
    units
        .into_iter()
        .filter(|u| unit_shard(u, shard.count) == shard.index)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::recipe::Recipe;
    use crate::config::sources::{Source, SourceKind};
    use crate::plan::jobs::plan;
    use std::collections::BTreeSet;
    use std::path::PathBuf;

    fn jobs(n: usize, strength: &str, steps: u32) -> Vec<Job> {
        let sources: Vec<Source> = (0..n)
            .map(|i| Source {
                id: format!("s{i}"),
                path: PathBuf::from(format!("s{i}.png")),
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
        plan(&recipe, &sources)
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
            let part = shard_units(units.clone(), Shard { index, count: 3 });
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
}
