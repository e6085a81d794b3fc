//! A cluster run on a real Slurm (Debian's slurm-wlm + munge, one host: `ci/slurm/start.sh`): the project's own
//! `recipes/cluster/slurm-array.sh` runs as an array of 4 tasks, at most 2 at once, with `--shard auto`, and
//! `slurm-merge.sh` as a job that depends on it; the merged output equals an unsharded run byte for byte. Then a
//! task is cancelled while it runs and resubmitted, and the merge still holds every sample exactly once.
//!
//! Under `make test` (TEXAUG_REQUIRE_SLURM=1) a missing Slurm is a failure; elsewhere the test says it skipped.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The daemons of one test, stopped when it ends (pass or fail).
struct Slurm {
    dir: PathBuf,
    conf: String,
}

impl Drop for Slurm {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(repo().join("ci/slurm/stop.sh"))
            .arg(&self.dir)
            .status();
    }
}

impl Slurm {
    fn start() -> Option<Slurm> {
        let required = std::env::var("TEXAUG_REQUIRE_SLURM").as_deref() == Ok("1");
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("slurm");
        let o = Command::new("bash")
            .arg(repo().join("ci/slurm/start.sh"))
            .arg(&dir)
            .output()
            .expect("bash");
        if !o.status.success() {
            let why = text(&o);
            assert!(
                !required,
                "TEXAUG_REQUIRE_SLURM=1 but Slurm did not start (ci/slurm/start.sh needs root and apt-get, or \
                 slurm-wlm + munge installed):\n{why}"
            );
            eprintln!("skipped: no Slurm here (set TEXAUG_REQUIRE_SLURM=1 to require it):\n{why}");
            return None;
        }
        let out = String::from_utf8_lossy(&o.stdout);
        let conf = out
            .lines()
            .find_map(|l| l.strip_prefix("export SLURM_CONF="))
            .expect("start.sh prints SLURM_CONF")
            .to_string();
        Some(Slurm { dir, conf })
    }

    /// A Slurm command run from `cwd`, with the texaug binary the scripts call.
    fn cmd(&self, program: &str, cwd: &Path) -> Command {
        let mut c = Command::new(program);
        c.current_dir(cwd)
            .env("SLURM_CONF", &self.conf)
            .env("TEXAUG", env!("CARGO_BIN_EXE_texaug"));
        c
    }

    /// `sbatch ARGS` → the job id (`--parsable`).
    fn sbatch(&self, cwd: &Path, args: &[&str]) -> String {
        let o = self
            .cmd("sbatch", cwd)
            .arg("--parsable")
            .args(args)
            .output()
            .expect("sbatch");
        assert!(o.status.success(), "sbatch {args:?}: {}", text(&o));
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    /// Blocks until `job` has ended (`srun --dependency=afterany` returns then), at most `seconds`.
    fn wait_for(&self, cwd: &Path, job: &str, seconds: u32) {
        let o = self
            .cmd("timeout", cwd)
            .args([
                &seconds.to_string(),
                "srun",
                "--quiet",
                "--ntasks=1",
                "--cpus-per-task=1",
                "--mem=64M",
                &format!("--dependency=afterany:{job}"),
                "true",
            ])
            .output()
            .expect("srun");
        assert!(o.status.success(), "waiting for job {job}: {}", text(&o));
    }

    fn state(&self, cwd: &Path, job: &str) -> Vec<String> {
        let o = self
            .cmd("scontrol", cwd)
            .args(["show", "job", job])
            .output()
            .expect("scontrol");
        String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .filter_map(|w| w.strip_prefix("JobState=").map(str::to_string))
            .collect()
    }
}

/// Sbatch options that fit the CI machine, passed on the command line over the script's #SBATCH lines.
const FIT: [&str; 3] = ["--gres=none", "--mem=2G", "--cpus-per-task=1"];

fn array_script() -> String {
    repo()
        .join("recipes/cluster/slurm-array.sh")
        .display()
        .to_string()
}

fn merge_script() -> String {
    repo()
        .join("recipes/cluster/slurm-merge.sh")
        .display()
        .to_string()
}

#[test]
fn a_slurm_array_and_its_merge_job_equal_one_unsharded_run() {
    let Some(slurm) = Slurm::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let manifest = write_sources(d, 16, true);
    // Enough steps that a task runs for seconds: the cancel below lands while it works.
    let recipe = write_recipe(d, &manifest, 2, 2);
    let slow = std::fs::read_to_string(&recipe)
        .unwrap()
        .replace("steps = 2", "steps = 24");
    std::fs::write(&recipe, slow).unwrap();
    let r = recipe.to_str().unwrap();
    let script = array_script();
    let whole = d.join("whole");
    run_recipe(&recipe, &whole, &[]);

    let out = d.join("shared/out");
    let out_s = out.to_str().unwrap();
    let mut args: Vec<&str> = FIT.to_vec();
    args.extend(["--array=0-3%2", &script, r, out_s]);
    let array = slurm.sbatch(d, &args);
    let after = format!("--dependency=afterok:{array}");
    let merge = slurm.sbatch(d, &[&after, &merge_script(), out_s]);
    slurm.wait_for(d, &merge, 240);
    let logs = || {
        std::fs::read_dir(d)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
            .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n---\n")
    };
    assert_eq!(slurm.state(d, &merge), ["COMPLETED"], "{}", logs());
    assert_eq!(slurm.state(d, &array), ["COMPLETED"; 4], "{}", logs());
    // Four shards, each found by --shard auto.
    for i in 0..4 {
        assert!(
            out.join(format!("manifest/part-{i:04}-of-0004.parquet"))
                .is_file(),
            "{}",
            logs()
        );
    }
    let merged = d.join("shared/out-merged");
    assert_eq!(tree(&whole.join("samples")), tree(&merged.join("samples")));
    let ids = |p: &Path| {
        let mut v: Vec<String> = records(p).into_iter().map(|r| r.3).collect();
        v.sort();
        v
    };
    assert_eq!(
        ids(&whole.join("manifest/part-0000-of-0001.parquet")),
        ids(&merged.join("manifest/part-merged.parquet"))
    );

    // A task cancelled while it runs, then resubmitted: the merge again holds every sample once.
    let again = d.join("shared/again");
    let again_s = again.to_str().unwrap();
    let mut args: Vec<&str> = FIT.to_vec();
    args.extend(["--array=0-3%1", &script, r, again_s]);
    // Killed once its first sample is in its journal (it has more to make) by a job that waits for that, submitted
    // first so it runs before task 1 (the array runs one task at a time, task 0 first).
    let journal = again.join("manifest/part-0001-of-0004.journal.jsonl");
    let killer = slurm.sbatch(
        d,
        &[
            "--mem=64M",
            "--cpus-per-task=1",
            "--time=5",
            "--output=killer-%j.log",
            "--wrap",
            &format!(
                "until grep -q sample_id {j} 2>/dev/null; do sleep 0.02; done; \
                 scancel --signal=KILL --full $(squeue -h -o %i -r -t R | grep '_1$')",
                j = journal.display()
            ),
        ],
    );
    let array = slurm.sbatch(d, &args);
    slurm.wait_for(d, &array, 240);
    slurm.wait_for(d, &killer, 60);
    let states = slurm.state(d, &array);
    assert!(
        states.iter().any(|s| s == "CANCELLED" || s == "FAILED"),
        "{states:?}\n{}",
        logs()
    );
    // Killed mid-run: the merge refuses the shard's missing samples, naming the shard.
    let o = run(&["merge", again_s, "--out", d.join("early").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("shard 1/4"), "{}", text(&o));
    let mut args: Vec<&str> = FIT.to_vec();
    args.extend([
        "--array=1",
        "--export=ALL,TEXAUG_SHARDS=4",
        &script,
        r,
        again_s,
    ]);
    let rerun = slurm.sbatch(d, &args);
    let after = format!("--dependency=afterok:{rerun}");
    let merge = slurm.sbatch(d, &[&after, &merge_script(), again_s]);
    slurm.wait_for(d, &merge, 240);
    assert_eq!(slurm.state(d, &merge), ["COMPLETED"], "{}", logs());
    let merged = d.join("shared/again-merged");
    assert_eq!(tree(&whole.join("samples")), tree(&merged.join("samples")));
    assert_eq!(
        ids(&whole.join("manifest/part-0000-of-0001.parquet")),
        ids(&merged.join("manifest/part-merged.parquet"))
    );
}
