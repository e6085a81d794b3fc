//! The plan's jobs grouped into fixed batches before the run. Which device runs a unit depends on timing, but what
//! is in it does not, so outputs are the same bytes on every run even where a batched kernel's arithmetic depends
//! on the batch.

use std::collections::HashMap;

use crate::plan::Job;

/// What jobs of one unit share: stage, steps, strength, guidance and size (a job's requests are only known once
/// it is prepared; within a unit the requests are grouped by their
/// [`batch_key`](texaug_stages::diffusion::request::batch_key)).
type UnitKey = (usize, u32, u64, u64, u32);

fn unit_key(job: &Job) -> UnitKey {
    (
        job.stage_index,
        job.steps,
        job.strength.to_bits(),
        job.guidance.to_bits(),
        job.size,
    )
}

/// Consecutive jobs of the plan with equal [`UnitKey`]s, `batch` at most per unit.
pub fn units(jobs: Vec<Job>, batch: usize) -> Vec<Vec<Job>> {
    let batch = batch.max(1);
    let mut units: Vec<Vec<Job>> = Vec::new();
    // Settings → the unit still taking jobs for them (full units stay where they are, so first-seen order holds).
    let mut open: HashMap<UnitKey, usize> = HashMap::new();
    for job in jobs {
        let key = unit_key(&job);
        match open.get(&key) {
            Some(&i) if units[i].len() < batch => units[i].push(job),
            _ => {
                open.insert(key, units.len());
                units.push(vec![job]);
            }
        }
    }
    units
}
