//! End to end: the models users hold — a single-file checkpoint (written by `texaug model to-single-file`) runs a
//! recipe to the same bytes as its diffusers folder, with its own model hash; `validate` and `model inspect` say
//! what a file is and what to write when it cannot be told; `[model]` keys that need a single file are refused on
//! a folder.

mod common;

use common::*;
use std::path::{Path, PathBuf};

/// The tiny SD 1 model as one single file.
fn single_file(dir: &Path) -> PathBuf {
    let file = dir.join("tiny-sd1.safetensors");
    let o = run(&[
        "model",
        "to-single-file",
        "--model",
        tiny_model().to_str().unwrap(),
        "--out",
        file.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    file
}

/// `write_recipe`'s recipe with its `[model] path = …` line replaced by `model`.
fn recipe_with_model(dir: &Path, manifest: &Path, model: &str) -> PathBuf {
    let plain = write_recipe(dir, manifest, 1, 2);
    let text = std::fs::read_to_string(&plain).unwrap();
    let path_line = format!("path = \"{}\"", tiny_model().display());
    assert!(text.contains(&path_line));
    let path = dir.join("recipe-model.toml");
    std::fs::write(&path, text.replace(&path_line, model)).unwrap();
    path
}

fn run_toml(out: &Path) -> toml::Value {
    toml::from_str(&std::fs::read_to_string(out.join("run.toml")).unwrap()).unwrap()
}

#[test]
fn a_single_file_checkpoint_runs_to_the_same_bytes_as_its_folder() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write_sources(dir.path(), 3, true);
    let file = single_file(dir.path());

    let folder_dir = dir.path().join("folder");
    let file_dir = dir.path().join("file");
    std::fs::create_dir_all(&folder_dir).unwrap();
    std::fs::create_dir_all(&file_dir).unwrap();
    let folder_recipe = write_recipe(&folder_dir, &manifest, 1, 2);
    let file_recipe = recipe_with_model(
        &file_dir,
        &manifest,
        &format!(
            "path = \"{}\"\nconfig = \"{}\"",
            file.display(),
            tiny_model().display()
        ),
    );
    for recipe in [&folder_recipe, &file_recipe] {
        let o = run(&["run", recipe.to_str().unwrap(), "--progress", "none"]);
        assert!(o.status.success(), "{}", text(&o));
    }
    let (a, b) = (folder_dir.join("out"), file_dir.join("out"));
    let (ta, tb) = (tree(&a.join("samples")), tree(&b.join("samples")));
    assert!(!ta.is_empty());
    assert_eq!(ta.keys().collect::<Vec<_>>(), tb.keys().collect::<Vec<_>>());
    for (p, bytes) in &ta {
        assert!(
            tb[p] == *bytes,
            "{}: the single file gives other bytes",
            p.display()
        );
    }
    // Traceable to what was loaded: the file and the config folder, not the folder's own weights.
    let (ra, rb) = (run_toml(&a), run_toml(&b));
    assert_ne!(ra["model"]["hash"], rb["model"]["hash"]);
    let files: Vec<&str> = rb["model"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(files, ["tiny-sd1.safetensors"]);
    assert!(rb["model_config"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["path"].as_str() == Some("unet/config.json")));
}

#[test]
fn validate_says_what_a_file_is_and_what_to_write() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write_sources(dir.path(), 1, false);
    let file = single_file(dir.path());
    // The tiny model's shapes are no published model's: `kind` or `config` is needed.
    let recipe = recipe_with_model(
        dir.path(),
        &manifest,
        &format!("path = \"{}\"", file.display()),
    );
    let o = run(&["validate", recipe.to_str().unwrap()]);
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(
        out.contains("recipe-model.toml:")
            && out.contains("cannot tell")
            && out.contains("[model] kind")
            && out.contains("[model] config"),
        "{out}"
    );
    // A LoRA given as the model says what it is.
    let lora = dir.path().join("style-lora.safetensors");
    write_tensors(
        &lora,
        &[
            (
                "lora_unet_mid_block_attentions_0_proj_in.lora_down.weight",
                &[4, 32],
            ),
            (
                "lora_unet_mid_block_attentions_0_proj_in.lora_up.weight",
                &[32, 4],
            ),
            ("lora_unet_mid_block_attentions_0_proj_in.alpha", &[]),
        ],
    );
    let recipe = recipe_with_model(
        dir.path(),
        &manifest,
        &format!("path = \"{}\"", lora.display()),
    );
    let o = run(&["validate", recipe.to_str().unwrap()]);
    let out = text(&o);
    assert!(!o.status.success() && out.contains("a LoRA"), "{out}");
    // A single file's keys on a folder model are refused where they are written.
    let recipe = recipe_with_model(
        dir.path(),
        &manifest,
        &format!("path = \"{}\"\nkind = \"sd1\"", tiny_model().display()),
    );
    let o = run(&["validate", recipe.to_str().unwrap()]);
    let out = text(&o);
    assert!(
        !o.status.success() && out.contains("`kind` applies to a single-file checkpoint"),
        "{out}"
    );
    let recipe = recipe_with_model(
        dir.path(),
        &manifest,
        &format!("path = \"{}\"\nkind = \"sd3\"", file.display()),
    );
    let out = text(&run(&["validate", recipe.to_str().unwrap()]));
    assert!(
        out.contains("unknown model kind \"sd3\"")
            && out.contains("\"sd2-v\"")
            && out.contains("\"sdxl-refiner\""),
        "{out}"
    );
}

/// A safetensors file of zero tensors with these names and shapes (f32).
fn write_tensors(path: &Path, tensors: &[(&str, &[i64])]) {
    let mut header = serde_json::Map::new();
    let mut offset = 0u64;
    for (name, shape) in tensors {
        let n: i64 = shape.iter().product();
        let len = 4 * n as u64;
        header.insert(
            (*name).into(),
            serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + len]}),
        );
        offset += len;
    }
    let h = serde_json::to_vec(&header).unwrap();
    let mut bytes = (h.len() as u64).to_le_bytes().to_vec();
    bytes.extend(h);
    bytes.resize(bytes.len() + offset as usize, 0);
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn model_inspect_reports_a_single_file_a_lora_and_a_folder() {
    let dir = tempfile::tempdir().unwrap();
    let file = single_file(dir.path());
    let o = run(&["model", "inspect", file.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["unet_in"], 4);
    assert_eq!(v["context_dim"], 32);
    assert_eq!(v["text_encoder"], "CLIP (SD 1.x)");
    assert!(v["kind"].as_str().unwrap().starts_with("unknown"), "{v}");
    assert!(v["parameters"]["unet"].as_i64().unwrap() > 100_000, "{v}");

    let lora = dir.path().join("l.safetensors");
    write_tensors(
        &lora,
        &[
            ("lora_unet_a.lora_down.weight", &[8, 32]),
            ("lora_unet_a.lora_up.weight", &[32, 8]),
            ("lora_te_b.lora_down.weight", &[4, 32]),
            ("lora_te_b.lora_up.weight", &[32, 4]),
            ("lora_unet_a.alpha", &[]),
        ],
    );
    let o = run(&["model", "inspect", lora.to_str().unwrap(), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["format"], "LoRA");
    assert_eq!(v["lora"]["modules"], 2);
    assert_eq!(v["lora"]["unet_modules"], 1);
    assert_eq!(v["lora"]["text_encoder_modules"], 1);
    assert_eq!(v["lora"]["has_alpha"], true);

    let o = run(&["model", "inspect", tiny_model().to_str().unwrap()]);
    let out = text(&o);
    assert!(
        o.status.success() && out.contains("diffusers folder") && out.contains("unet_in"),
        "{out}"
    );
}

#[test]
fn generate_runs_a_single_file_with_its_config_folder() {
    let dir = tempfile::tempdir().unwrap();
    let file = single_file(dir.path());
    let input = dir.path().join("in.png");
    write_png(&input, 32, 32, 90);
    let mut outs = Vec::new();
    for (name, model, config) in [
        (
            "a.png",
            file.to_str().unwrap(),
            Some(tiny_model().to_str().unwrap()),
        ),
        ("b.png", tiny_model().to_str().unwrap(), None),
    ] {
        let out = dir.path().join(name);
        let mut args = vec![
            "generate",
            "--model",
            model,
            "--image",
            input.to_str().unwrap(),
            "--prompt",
            "a mug",
            "--steps",
            "2",
            "--out",
            out.to_str().unwrap(),
        ];
        if let Some(c) = config {
            args.extend(["--config", c]);
        }
        let o = run(&args);
        assert!(o.status.success(), "{}", text(&o));
        outs.push(std::fs::read(&out).unwrap());
    }
    assert_eq!(
        outs[0], outs[1],
        "the single file and its folder give the same image"
    );
}

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(rel)
}

/// `write_recipe`'s recipe with its whole `[model]` table body replaced by `body` (which may end in
/// `[[model.lora]]` tables).
fn recipe_with_model_table(dir: &Path, manifest: &Path, body: &str) -> PathBuf {
    let plain = write_recipe(dir, manifest, 1, 2);
    let text = std::fs::read_to_string(&plain).unwrap();
    let table = format!(
        "path = \"{}\"\nscheduler = \"ddim\"\n",
        tiny_model().display()
    );
    assert!(text.contains(&table));
    let path = dir.join("recipe-model.toml");
    std::fs::write(&path, text.replace(&table, &format!("{body}\n"))).unwrap();
    path
}

/// `[[model.lora]]` in a run: merged (other bytes than without), part of the model hash and run.toml; at scale 0
/// the bytes of the plain model; a missing LoRA file is refused at its line.
#[test]
fn a_recipe_lora_changes_the_samples_and_the_model_hash() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write_sources(dir.path(), 2, false);
    let model = fixture("models/sd1-tiny");
    let lora = fixture("loras/sd1-tiny-kohya_alpha.safetensors");
    let mut outs = Vec::new();
    for (name, extra) in [
        ("plain", String::new()),
        (
            "lora",
            format!("[[model.lora]]\npath = \"{}\"\nscale = 0.8", lora.display()),
        ),
        (
            "zero",
            format!("[[model.lora]]\npath = \"{}\"\nscale = 0.0", lora.display()),
        ),
    ] {
        let sub = dir.path().join(name);
        std::fs::create_dir_all(&sub).unwrap();
        let body = format!(
            "path = \"{}\"\nscheduler = \"ddim\"\n{extra}",
            model.display()
        );
        let recipe = recipe_with_model_table(&sub, &manifest, &body);
        let o = run(&["run", recipe.to_str().unwrap(), "--progress", "none"]);
        assert!(o.status.success(), "{name}\n{}", text(&o));
        let out = sub.join("out");
        outs.push((tree(&out.join("samples")), run_toml(&out)));
    }
    let (plain, lora_run, zero) = (&outs[0], &outs[1], &outs[2]);
    assert_ne!(plain.0, lora_run.0, "the LoRA changes the images");
    assert_eq!(plain.0, zero.0, "at scale 0 the LoRA changes nothing");
    assert_ne!(plain.1["model"]["hash"], lora_run.1["model"]["hash"]);
    assert_eq!(
        lora_run.1["lora"][0]["files"][0]["path"].as_str(),
        Some("sd1-tiny-kohya_alpha.safetensors")
    );

    let body = format!(
        "path = \"{}\"\n[[model.lora]]\npath = \"missing.safetensors\"",
        model.display()
    );
    let recipe = recipe_with_model_table(dir.path(), &manifest, &body);
    let out = text(&run(&["validate", recipe.to_str().unwrap()]));
    assert!(
        out.contains("LoRA file not found")
            && out.contains("missing.safetensors")
            && out.contains("recipe-model.toml:"),
        "{out}"
    );
}

/// A stage's `loras` apply to that stage's jobs only, switched on one loaded model: the LoRA stage's samples are
/// the bytes of a run with the LoRA on the whole model, the other stage's those of a run without.
#[test]
fn stage_loras_apply_to_their_stage_only() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write_sources(dir.path(), 2, true);
    let model = fixture("models/sd1-tiny");
    let lora = fixture("loras/sd1-tiny-kohya_no_alpha.safetensors");
    let stage = |name: &str, loras: &str| {
        format!(
            "[[stage]]\nkind = \"style\"\nname = \"{name}\"\nprompts = [\"a {{label}} made of wood\"]\n\
             strength = [0.5, 0.9]\nsteps = 2\nguidance = 3.0\nvariants = 2\nsize = 64\n{loras}\n"
        )
    };
    let recipe = |sub: &str, model_extra: &str, stages: &[String]| {
        let d = dir.path().join(sub);
        std::fs::create_dir_all(&d).unwrap();
        let recipe_text = format!(
            "name = \"e2e\"\nseed = 11\noutput = \"out\"\n[sources]\nmanifest = \"{}\"\n[model]\npath = \"{}\"\n\
             scheduler = \"ddim\"\n{model_extra}\n[devices]\nuse = \"cpu\"\nbatch = 2\n{}",
            manifest.display(),
            model.display(),
            stages.concat()
        );
        let p = d.join("recipe.toml");
        std::fs::write(&p, recipe_text).unwrap();
        let o = run(&["run", p.to_str().unwrap(), "--progress", "none"]);
        assert!(o.status.success(), "{sub}\n{}", text(&o));
        tree(&d.join("out/samples"))
    };
    let with_lora = format!("loras = [{{ path = \"{}\", scale = 0.9 }}]", lora.display());
    let mixed = recipe(
        "mixed",
        "",
        &[stage("plain", ""), stage("styled", &with_lora)],
    );
    let plain_only = recipe("plain", "", &[stage("plain", "")]);
    let model_lora = format!("[[model.lora]]\npath = \"{}\"\nscale = 0.9", lora.display());
    let styled_only = recipe("styled", &model_lora, &[stage("styled", "")]);
    assert_eq!(mixed.len(), plain_only.len() + styled_only.len());
    for (p, bytes) in plain_only.iter().chain(&styled_only) {
        assert!(
            mixed.get(p) == Some(bytes),
            "{} differs in the mixed run",
            p.display()
        );
    }
    // The same samples without the LoRA: other bytes, so the equality above is the LoRA's doing.
    let styled_plain = recipe("styled-plain", "", &[stage("styled", "")]);
    assert_eq!(
        styled_plain.keys().collect::<Vec<_>>(),
        styled_only.keys().collect::<Vec<_>>()
    );
    for (p, bytes) in &styled_plain {
        if p.extension().is_some_and(|e| e == "png") {
            assert!(
                styled_only[p] != *bytes,
                "{}: the LoRA changed nothing",
                p.display()
            );
        }
    }
}

/// `[[model.embedding]]`: prompts use its token; the file is part of the model hash and run.toml.
#[test]
fn a_recipe_embedding_is_used_by_its_token() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write_sources(dir.path(), 1, false);
    let model = fixture("models/sd1-tiny");
    let emb = fixture("embeddings/sd1-tiny-bad-style.safetensors");
    let mut runs = Vec::new();
    for (name, extra) in [
        ("plain", String::new()),
        (
            "embedding",
            format!(
                "[[model.embedding]]\npath = \"{}\"\ntoken = \"<bad-style>\"",
                emb.display()
            ),
        ),
    ] {
        let sub = dir.path().join(name);
        std::fs::create_dir_all(&sub).unwrap();
        let body = format!(
            "path = \"{}\"\nscheduler = \"ddim\"\n{extra}",
            model.display()
        );
        let recipe = recipe_with_model_table(&sub, &manifest, &body);
        let text_in = std::fs::read_to_string(&recipe).unwrap();
        std::fs::write(
            &recipe,
            text_in.replace(
                "\"a {label} made of wood\"",
                "\"a {label} made of wood, <bad-style>\"",
            ),
        )
        .unwrap();
        let o = run(&["run", recipe.to_str().unwrap(), "--progress", "none"]);
        assert!(o.status.success(), "{name}\n{}", text(&o));
        let out = sub.join("out");
        runs.push((tree(&out.join("samples")), run_toml(&out)));
    }
    assert_ne!(
        runs[0].0, runs[1].0,
        "the token's vectors change the images"
    );
    assert_ne!(runs[0].1["model"]["hash"], runs[1].1["model"]["hash"]);
    assert_eq!(
        runs[1].1["embedding"][0]["files"][0]["path"].as_str(),
        Some("sd1-tiny-bad-style.safetensors")
    );
}
