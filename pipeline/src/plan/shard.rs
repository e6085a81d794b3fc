//! `--shard I/N` (or `--shard auto`, from the scheduler's environment): which part of the plan one process of a
//! cluster run makes.

use std::fmt;
use std::str::FromStr;

/// `--shard I/N`: the units (fixed batches) of the full plan that [`super::batching::unit_shard`] assigns to I.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// The file-name form used for manifest parts: `0003-of-0016` (zero-padded so parts sort in shard order).
    pub fn tag(&self) -> String {
        format!("{:04}-of-{:04}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("shard `{s}` must look like I/N with 0 <= I < N, e.g. 0/4");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: usize = i.trim().parse().map_err(|_| bad())?;
        let count: usize = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

/// What `--shard` says: a fixed `I/N`, or `auto` (a Slurm array task or a Kubernetes Indexed Job pod).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardArg {
    Fixed(Shard),
    Auto,
}

impl FromStr for ShardArg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.trim().eq_ignore_ascii_case("auto") {
            return Ok(ShardArg::Auto);
        }
        s.parse()
            .map(ShardArg::Fixed)
            .map_err(|e| format!("{e}, or `auto` inside a Slurm array or a Kubernetes Indexed Job"))
    }
}

/// The variables `--shard auto` reads, for its error message.
pub const AUTO_VARIABLES: &str = "SLURM_ARRAY_TASK_ID with SLURM_ARRAY_TASK_COUNT (or SLURM_ARRAY_TASK_MIN/MAX/STEP) \
                                  or with --shards N / TEXAUG_SHARDS, or JOB_COMPLETION_INDEX with --shards N or \
                                  TEXAUG_SHARDS";

impl ShardArg {
    /// The shard, reading a Slurm array task's or an Indexed Job pod's variables through `env` for `auto`;
    /// `shards` is `--shards N` (else `TEXAUG_SHARDS`), which an Indexed Job needs (its pods are not told the count).
    /// Given a count, a Slurm task's id is its shard index (so a task resubmitted alone keeps its shard); without
    /// one, the array's range gives index and count.
    pub fn resolve(
        self,
        shards: Option<usize>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Shard, String> {
        match self {
            ShardArg::Fixed(s) => Ok(s),
            ShardArg::Auto => auto_shard(shards, env),
        }
    }

    /// [`Self::resolve`] with the process environment.
    pub fn resolve_env(self, shards: Option<usize>) -> Result<Shard, String> {
        self.resolve(shards, &|k| std::env::var(k).ok())
    }
}

fn auto_shard(
    shards: Option<usize>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Shard, String> {
    let number = |k: &str| -> Result<Option<usize>, String> {
        match env(k) {
            None => Ok(None),
            Some(v) if v.trim().is_empty() => Ok(None),
            Some(v) => v
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| format!("--shard auto: {k}={v:?} is not a non-negative number")),
        }
    };
    let configured = match shards {
        Some(n) => Some(n),
        None => number("TEXAUG_SHARDS")?,
    };
    let shard = |index: usize, count: usize, from: &str| {
        if count == 0 || index >= count {
            Err(format!(
                "--shard auto: {from} gives shard {index} of {count}; the array must be a range such as \
                 --array=0-15 (or pass --shard I/N)"
            ))
        } else {
            Ok(Shard { index, count })
        }
    };
    if let Some(id) = number("SLURM_ARRAY_TASK_ID")? {
        // A declared count makes the task id the shard index: a resubmitted task (`--array=5` of a run of 16)
        // is shard 5 of 16, whatever range its own array has.
        if let Some(n) = configured {
            return shard(id, n, "SLURM_ARRAY_TASK_ID with the shard count given");
        }
        let min = number("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
        let step = number("SLURM_ARRAY_TASK_STEP")?.unwrap_or(1).max(1);
        let count = match (number("SLURM_ARRAY_TASK_COUNT")?, number("SLURM_ARRAY_TASK_MAX")?) {
            (Some(n), _) => n,
            (None, Some(max)) if max >= min => (max - min) / step + 1,
            _ => {
                return Err(format!(
                    "--shard auto: SLURM_ARRAY_TASK_ID is set but not the array's size; set one of {AUTO_VARIABLES}"
                ))
            }
        };
        if id < min || (id - min) % step != 0 {
            return Err(format!(
                "--shard auto: array task {id} is not on the range from {min} by {step}; submit --array=0-{}",
                count.saturating_sub(1)
            ));
        }
        return shard((id - min) / step, count, "SLURM_ARRAY_TASK_ID");
    }
    if let Some(index) = number("JOB_COMPLETION_INDEX")? {
        let Some(count) = configured else {
            return Err(
                "--shard auto: JOB_COMPLETION_INDEX is set but not the number of shards; pass --shards N (the \
                 Job's `completions`) or set TEXAUG_SHARDS"
                    .into(),
            );
        };
        return shard(index, count, "JOB_COMPLETION_INDEX");
    }
    Err(format!(
        "--shard auto found no array task in the environment; it reads {AUTO_VARIABLES}. Outside a job array pass \
         --shard I/N"
    ))
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn auto_reads_a_slurm_array_from_its_count_or_its_range() {
        let s = |i, n| Ok(Shard { index: i, count: n });
        let auto = |vars: &[(&str, &str)], shards| ShardArg::Auto.resolve(shards, &env(vars));
        assert_eq!(
            auto(
                &[
                    ("SLURM_ARRAY_TASK_ID", "2"),
                    ("SLURM_ARRAY_TASK_COUNT", "4")
                ],
                None
            ),
            s(2, 4)
        );
        // --array=1-8:2 → ids 1, 3, 5, 7.
        let range = [
            ("SLURM_ARRAY_TASK_ID", "5"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_MAX", "7"),
            ("SLURM_ARRAY_TASK_STEP", "2"),
        ];
        assert_eq!(auto(&range, None), s(2, 4));
        assert_eq!(
            auto(
                &[("JOB_COMPLETION_INDEX", "3"), ("TEXAUG_SHARDS", "8")],
                None
            ),
            s(3, 8)
        );
        assert_eq!(auto(&[("JOB_COMPLETION_INDEX", "3")], Some(5)), s(3, 5));
        // One task of a 4-shard run resubmitted alone (--array=1): its id is the shard once the count is given.
        let resubmitted = [
            ("SLURM_ARRAY_TASK_ID", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "1"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
        ];
        assert_eq!(auto(&resubmitted, Some(4)), s(1, 4));
        assert_eq!(auto(&resubmitted, None), s(0, 1));
    }

    #[test]
    fn auto_names_the_variables_it_needs() {
        let e = ShardArg::Auto.resolve(None, &env(&[])).unwrap_err();
        assert!(
            e.contains("SLURM_ARRAY_TASK_ID") && e.contains("JOB_COMPLETION_INDEX"),
            "{e}"
        );
        let e = ShardArg::Auto
            .resolve(None, &env(&[("JOB_COMPLETION_INDEX", "1")]))
            .unwrap_err();
        assert!(e.contains("--shards"), "{e}");
        // --array=0,3,7: not a range.
        let list = [
            ("SLURM_ARRAY_TASK_ID", "7"),
            ("SLURM_ARRAY_TASK_COUNT", "3"),
            ("SLURM_ARRAY_TASK_MIN", "0"),
        ];
        assert!(ShardArg::Auto.resolve(None, &env(&list)).is_err());
        assert_eq!(
            "1/2".parse::<ShardArg>(),
            Ok(ShardArg::Fixed(Shard { index: 1, count: 2 }))
        );
        assert!("2/2".parse::<ShardArg>().unwrap_err().contains("auto"));
    }

    #[test]
    fn shard_parsing_rejects_out_of_range() {
        assert_eq!("1/3".parse::<Shard>(), Ok(Shard { index: 1, count: 3 }));
        assert!("3/3".parse::<Shard>().is_err());
        assert!("1-3".parse::<Shard>().is_err());
        assert!("0/0".parse::<Shard>().is_err());
    }
}
