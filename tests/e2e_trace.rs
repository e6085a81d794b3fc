//! End to end: what makes a run traceable and safe to resume. The model hash covers every file the run loads
//! (a Hugging Face cache snapshot, a ControlNet), `--resume` refuses a journal of another recipe or model, one
//! process at a time writes a shard, a full disk stops the run cleanly, and resume then finishes it.

mod common;

use common::*;
use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Output;
use texaug_stages::files::sha256_hex;

const PART: &str = "manifest/part-0000-of-0001.parquet";
const JOURNAL: &str = "manifest/part-0000-of-0001.journal.jsonl";

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("e2e_trace-{name}"));
    if dir.exists() {
        let _ = std::process::Command::new("umount")
            .arg(dir.join("out"))
            .output();
        std::fs::remove_dir_all(&dir).unwrap();
    }
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Every file of an output but the shard locks (a run that takes a lock writes its pid there), with its bytes.
fn contents(out: &Path) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
    let mut t = tree(out);
    t.retain(|p, _| p.extension().is_none_or(|e| e != "lock"));
    t
}

/// Panics, naming the files, when two snapshots of an output differ.
fn assert_same(before: &std::collections::BTreeMap<PathBuf, Vec<u8>>, out: &Path, what: &str) {
    let after = contents(out);
    let changed: Vec<&PathBuf> = before
        .keys()
        .chain(after.keys())
        .filter(|p| before.get(*p) != after.get(*p))
        .collect();
    assert!(changed.is_empty(), "{what} changed {changed:?}");
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `texaug run RECIPE --progress none ARGS…` with extra environment variables.
fn run_env(recipe: &Path, args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut cmd = texaug();
    cmd.args(["run", recipe.to_str().unwrap(), "--progress", "none"])
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn init_tiny(kind: &str, seed: u32, out: &Path) {
    let v = vocab();
    let seed = seed.to_string();
    let o = run(&[
        "model",
        "init-tiny",
        "--kind",
        kind,
        "--out",
        out.to_str().unwrap(),
        "--vocab",
        v.to_str().unwrap(),
        "--seed",
        &seed,
    ]);
    assert!(o.status.success(), "init-tiny {kind}\n{}", text(&o));
}

/// The values of one column over a manifest part.
fn column(part: &Path, name: &str) -> Vec<String> {
    string_rows(part, &[name]).into_iter().flatten().collect()
}

/// The one model hash every row of a part carries.
fn model_hash(out: &Path) -> String {
    let hashes: BTreeSet<String> = column(&out.join(PART), "model_hash").into_iter().collect();
    assert_eq!(hashes.len(), 1, "{hashes:?}");
    hashes.into_iter().next().unwrap()
}

fn run_toml(out: &Path) -> toml::Value {
    toml::from_str(&std::fs::read_to_string(out.join("run.toml")).unwrap()).unwrap()
}

/// The sorted `path`s of a run.toml section's `files`.
fn listed(doc: &toml::Value, section: &str) -> Vec<String> {
    doc[section]["files"]
        .as_array()
        .unwrap_or_else(|| panic!("run.toml has no [{section}] files"))
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_string())
        .collect()
}

/// Copies a model folder into a fake Hugging Face cache as huggingface_hub lays it out: every file once under
/// `blobs/<sha256>`, `snapshots/<rev>/<path>` relative symlinks to it, and `refs/main` naming the revision.
fn hub_cache_of(model: &Path, cache: &Path, repo_dir: &str) {
    let base = cache.join(repo_dir);
    let snap = base.join("snapshots/0123abcd");
    for (rel, bytes) in tree(model) {
        let sha = sha256_hex(&bytes);
        std::fs::create_dir_all(base.join("blobs")).unwrap();
        std::fs::write(base.join("blobs").join(&sha), &bytes).unwrap();
        let link = snap.join(&rel);
        std::fs::create_dir_all(link.parent().unwrap()).unwrap();
        let up = "../".repeat(rel.components().count() + 1);
        std::os::unix::fs::symlink(format!("{up}blobs/{sha}"), &link).unwrap();
    }
    std::fs::create_dir_all(base.join("refs")).unwrap();
    std::fs::write(base.join("refs/main"), "0123abcd").unwrap();
}

#[test]
fn a_model_in_the_hugging_face_cache_layout_is_hashed_file_by_file_and_once() {
    let dir = scratch("hub");
    let manifest = write_sources(&dir, 1, false);
    let recipe = write_recipe(&dir, &manifest, 1, 1);
    let hub = dir.join("hub");
    hub_cache_of(tiny_model(), &hub, "models--texaug-test--tiny");
    let by_id = dir.join("by-id.toml");
    let by_id_text = std::fs::read_to_string(&recipe).unwrap().replace(
        &format!("path = \"{}\"", tiny_model().display()),
        "id = \"texaug-test/tiny\"",
    );
    assert!(by_id_text.contains("id = \"texaug-test/tiny\""));
    std::fs::write(&by_id, by_id_text).unwrap();
    let cache = dir.join("texaug-cache");

    let plain_out = dir.join("plain");
    let o = run_env(
        &recipe,
        &["--output", plain_out.to_str().unwrap()],
        &[("TEXAUG_CACHE", &cache)],
    );
    assert!(o.status.success(), "{}", text(&o));
    let hub_out = dir.join("hub-out");
    let o = run_env(
        &by_id,
        &["--output", hub_out.to_str().unwrap()],
        &[
            ("TEXAUG_CACHE", &cache),
            ("HF_HUB_CACHE", &hub),
            ("HF_HUB_OFFLINE", Path::new("1")),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));

    // Every linked file is listed and hashed: the same files, so the same hash, as the plain folder.
    let (plain_doc, hub_doc) = (run_toml(&plain_out), run_toml(&hub_out));
    let files = listed(&hub_doc, "model");
    assert!(
        files.contains(&"unet/diffusion_pytorch_model.safetensors".to_string())
            && files.contains(&"model_index.json".to_string()),
        "{files:?}"
    );
    assert_eq!(files, listed(&plain_doc, "model"));
    let empty = sha256_hex(b"");
    assert_ne!(model_hash(&hub_out), empty);
    assert_eq!(model_hash(&hub_out), model_hash(&plain_out));
    assert_eq!(
        hub_doc["model"]["hash"].as_str().unwrap(),
        model_hash(&hub_out)
    );
    assert_eq!(hub_doc["model"]["id"].as_str().unwrap(), "texaug-test/tiny");

    // The digests are cached by the blobs' real paths.
    let cached = std::fs::read_to_string(cache.join("hashes.json")).unwrap();
    assert!(cached.contains("/blobs/"), "{cached}");
}

#[test]
fn two_controlnets_record_two_model_hashes() {
    let dir = scratch("controlnet");
    let (a, b) = (dir.join("cn-a"), dir.join("cn-b"));
    init_tiny("controlnet", 0, &a);
    init_tiny("controlnet", 1, &b);
    write_png(&dir.join("img/vase.png"), 40, 40, 90);
    let depth = image::ImageBuffer::<image::Luma<u16>, Vec<u16>>::from_fn(40, 40, |x, y| {
        image::Luma([(x * 1000 + y * 300) as u16])
    });
    depth.save(dir.join("img/vase-depth.png")).unwrap();
    let manifest = dir.join("sources.csv");
    std::fs::write(
        &manifest,
        "id,path,label,kind,depth\nvase,img/vase.png,vase,image,img/vase-depth.png\n",
    )
    .unwrap();
    let recipe = |name: &str, controlnet: &Path| {
        let text = recipe_head(name, 5, name, &manifest, &a, None)
            + &format!(
                r#"[[stage]]
kind = "depth"
prompts = ["a {{label}} made of wood"]
strength = 0.8
steps = 2
guidance = 3.0
size = 64
controlnet = "{controlnet}"
"#,
                controlnet = controlnet.display(),
            );
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(&path, text).unwrap();
        path
    };
    let own = recipe("own", &a.join("controlnet"));
    let other = recipe("other", &b.join("controlnet"));
    for r in [&own, &other] {
        let o = run_env(r, &[], &[]);
        assert!(o.status.success(), "{}", text(&o));
    }
    let (own_out, other_out) = (dir.join("own"), dir.join("other"));
    assert_eq!(column(&own_out.join(PART), "status"), ["ok"]);
    assert_eq!(column(&other_out.join(PART), "status"), ["ok"]);
    assert_ne!(model_hash(&own_out), model_hash(&other_out));
    // The other ControlNet has a section of its own in run.toml; the model's own one is among the model's files.
    let doc = run_toml(&other_out);
    assert!(
        listed(&doc, "controlnet").contains(&"diffusion_pytorch_model.safetensors".to_string()),
        "{doc}"
    );
    assert_eq!(
        doc["controlnet"]["path"].as_str().unwrap(),
        b.join("controlnet").display().to_string()
    );
    assert_eq!(
        doc["model"]["hash"].as_str().unwrap(),
        model_hash(&other_out)
    );
    let own_doc = run_toml(&own_out);
    assert!(own_doc.get("controlnet").is_none(), "{own_doc}");
    assert!(listed(&own_doc, "model").contains(&"controlnet/config.json".to_string()));
}

#[test]
fn resume_refuses_a_journal_of_another_recipe_or_model() {
    let dir = scratch("resume");
    let manifest = write_sources(&dir, 2, false);
    let recipe = write_recipe(&dir, &manifest, 1, 1);
    let out = dir.join("out");
    let o = run_env(&recipe, &[], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let old_recipe = column(&out.join(PART), "recipe_hash")[0].clone();
    let old_model = model_hash(&out);

    // An edited recipe: another recipe hash.
    let edited = std::fs::read_to_string(&recipe).unwrap() + "# edited\n";
    std::fs::write(&recipe, &edited).unwrap();
    let new_recipe = sha256_hex(edited.as_bytes());
    let before = contents(&out);
    let o = run_env(&recipe, &["--resume"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "recipe_hash {} in the journal, {} now",
            &old_recipe[..12],
            &new_recipe[..12]
        )) && !err.contains("model differs")
            && err.contains("--output DIR")
            && err.contains("--force-resume to keep the old samples beside new ones"),
        "{err}"
    );
    assert_same(&before, &out, "a refused resume");
    // --force-resume goes on, keeping the old samples.
    let o = run_env(&recipe, &["--force-resume"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(stderr(&o).contains("--force-resume"), "{}", text(&o));
    assert_eq!(
        column(&out.join(PART), "recipe_hash"),
        [old_recipe.clone(), old_recipe.clone()]
    );

    // Another model (same recipe text otherwise): another model hash.
    let model2 = dir.join("tiny-2");
    init_tiny("sd1", 1, &model2);
    let fresh = dir.join("out2");
    let o = run_env(&recipe, &["--output", fresh.to_str().unwrap()], &[]);
    assert!(o.status.success(), "{}", text(&o));
    std::fs::write(
        &recipe,
        edited.replace(
            &tiny_model().display().to_string(),
            &model2.display().to_string(),
        ),
    )
    .unwrap();
    let o = run_env(
        &recipe,
        &["--resume", "--output", fresh.to_str().unwrap()],
        &[],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = stderr(&o);
    assert!(
        err.contains(&format!("model_hash {} in the journal", &old_model[..12]))
            && err.contains("model differs")
            && err.contains("--force-resume"),
        "{err}"
    );
}

#[test]
fn a_shard_in_use_is_refused_at_once_and_other_shards_are_not() {
    let dir = scratch("lock");
    let manifest = write_sources(&dir, 2, false);
    let recipe = write_recipe(&dir, &manifest, 1, 1);
    let out = dir.join("out");
    let o = run_env(&recipe, &[], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let lock_path = out.join("manifest/part-0000-of-0001.lock");
    assert!(lock_path.is_file());

    // This process holds the lock, as a running texaug would.
    let lock = File::options()
        .read(true)
        .write(true)
        .open(&lock_path)
        .unwrap();
    lock.try_lock().unwrap();
    std::fs::write(&lock_path, "pid = 4242\nhost = \"node-17\"\n").unwrap();
    let before = tree(&out);
    let t0 = std::time::Instant::now();
    let o = run_env(&recipe, &["--resume"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "output {} shard 0/1 is in use by pid 4242 on host node-17",
            out.display()
        )) && err.contains("wait for it or use another --output"),
        "{err}"
    );
    assert!(t0.elapsed().as_secs() < 30, "it waited for the lock");
    assert_eq!(
        tree(&out).keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>()
    );
    assert!(
        tree(&out) == before,
        "a refused run changed the output (its lock file included)"
    );

    // Another shard of the same output is not blocked by it.
    let shard0 = out.join("manifest/part-0000-of-0002.lock");
    std::fs::write(&shard0, "").unwrap();
    let lock0 = File::options().write(true).open(&shard0).unwrap();
    lock0.try_lock().unwrap();
    let o = run_env(&recipe, &["--shard", "1/2"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let o = run_env(&recipe, &["--shard", "0/2"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(stderr(&o).contains("shard 0/2 is in use"), "{}", text(&o));
    drop((lock, lock0));
    // Released: the run goes on.
    let o = run_env(&recipe, &["--resume"], &[]);
    assert!(o.status.success(), "{}", text(&o));
}

/// What a stopped run must leave: journal rows all ok, a folder for each of them and for nothing else, no temp
/// files. Returns the recorded ids.
fn check_consistent(out: &Path) -> BTreeSet<String> {
    let journal = std::fs::read_to_string(out.join(JOURNAL)).unwrap_or_default();
    let mut ids = BTreeSet::new();
    for line in journal.lines() {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("journal line is not a record ({e}): {line:?}"));
        assert_eq!(v["status"], "ok", "a full disk made a failed row: {line}");
        ids.insert(v["sample_id"].as_str().unwrap().to_string());
    }
    assert!(
        journal.is_empty() || journal.ends_with('\n'),
        "a torn record"
    );
    let folders = sample_folders(out);
    assert_eq!(folders, ids, "sample folders and journal disagree");
    for (path, _) in tree(out) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            !name.starts_with(".texaug-tmp"),
            "left behind: {}",
            path.display()
        );
    }
    ids
}

fn resume_finishes(recipe: &Path, out: &Path, planned: &[String]) {
    let o = run_env(recipe, &["--resume"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let mut ids = column(&out.join(PART), "sample_id");
    ids.sort();
    let mut want = planned.to_vec();
    want.sort();
    assert_eq!(ids, want);
    assert!(column(&out.join(PART), "status").iter().all(|s| s == "ok"));
    assert_eq!(check_consistent(out).len(), planned.len());
}

#[test]
fn a_full_disk_stops_the_run_at_once_and_resume_finishes_it() {
    let dir = scratch("enospc");
    let manifest = write_sources(&dir, 5, false);
    let recipe = write_recipe(&dir, &manifest, 2, 1);
    let planned = planned_ids(&recipe, None);
    assert_eq!(planned.len(), 10);
    let out = dir.join("out");
    // The 5th write into the output (a sample's files and its journal record are one write each) finds the disk
    // full, so at most two samples can be recorded whatever order the threads write in.
    let o = run_env(
        &recipe,
        &[],
        &[("TEXAUG_FAULT_ENOSPC_AFTER", Path::new("5"))],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = stderr(&o);
    assert_eq!(
        err.matches("free space and run again with --resume")
            .count(),
        1,
        "{err}"
    );
    assert!(
        err.contains("the disk is full") && err.contains("/out/"),
        "{err}"
    );
    let recorded = check_consistent(&out);
    assert!(
        recorded.len() <= 2,
        "the run went on after the disk was full: {} recorded",
        recorded.len()
    );
    resume_finishes(&recipe, &out, &planned);
}

/// Unmounts the scratch tmpfs however the test ends.
struct Mounted(PathBuf);
impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).output();
    }
}

/// The same on a real small file system, where one can be mounted (root, outside most containers).
#[test]
fn a_real_full_tmpfs_stops_the_run_and_resume_finishes_it() {
    let dir = scratch("tmpfs");
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(&out)
        .output();
    if !mounted.is_ok_and(|o| o.status.success()) {
        eprintln!("skipped: cannot mount a tmpfs here (not root, or in a container); the injected fault covers it");
        return;
    }
    let guard = Mounted(out.clone());
    let manifest = write_sources(&dir, 8, false);
    let recipe = write_recipe(&dir, &manifest, 2, 1);
    let planned = planned_ids(&recipe, None);
    let o = run_env(&recipe, &[], &[]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "64 KiB held everything?\n{}",
        text(&o)
    );
    let err = stderr(&o);
    assert!(
        err.contains("free space and run again with --resume"),
        "{err}"
    );
    check_consistent(&out);
    // Space is there again: resume finishes the plan.
    let grown = std::process::Command::new("mount")
        .args(["-o", "remount,size=64m"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(grown.status.success(), "{grown:?}");
    resume_finishes(&recipe, &out, &planned);
    drop(guard);
}
