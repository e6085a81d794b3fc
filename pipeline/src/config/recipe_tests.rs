//! Tests of recipe loading and its checks.

use super::*;
use crate::config::recipe::{canonical_scheduler, Strength};

fn write(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("r.toml");
    std::fs::write(&p, text).unwrap();
    p
}

const GOOD: &str = r#"
name = "mugs"
seed = 7
[sources]
manifest = "m.csv"
[model]
path = "models/tiny"
[[stage]]
kind = "style"
prompts = ["a {label} of oak"]
strength = [0.4, 0.8]
steps = 4
size = 64
"#;

#[test]
fn a_good_recipe_loads_with_paths_resolved_against_its_folder() {
    let dir = tempfile::tempdir().unwrap();
    let r = load(&write(dir.path(), GOOD)).unwrap();
    assert_eq!(r.recipe.sources.manifest, Some(dir.path().join("m.csv")));
    assert_eq!(r.recipe.model.path, Some(dir.path().join("models/tiny")));
    assert_eq!(r.recipe.stages[0].strength, Strength::Range([0.4, 0.8]));
    assert_eq!(r.recipe.devices.batch, 1);
}

#[test]
fn bad_values_are_all_reported_at_their_lines() {
    let dir = tempfile::tempdir().unwrap();
    let text = GOOD
        .replace("steps = 4", "steps = 0")
        .replace("size = 64", "size = 63\nscheduler = \"heun\"");
    let err = load(&write(dir.path(), &text)).unwrap_err();
    let lines: Vec<usize> = err.0.iter().map(|d| d.line).collect();
    assert_eq!(lines, vec![12, 13, 14], "{err}");
}

#[test]
fn unknown_keys_name_the_valid_ones() {
    let dir = tempfile::tempdir().unwrap();
    let text = GOOD.replace("steps = 4", "stepz = 4");
    let err = load(&write(dir.path(), &text)).unwrap_err();
    assert_eq!(err.0.len(), 1);
    assert_eq!((err.0[0].line, err.0[0].col), (12, 1));
    assert!(err.0[0].fix.contains("steps"), "{err}");
}

#[test]
fn scheduler_aliases_are_canonicalized() {
    assert_eq!(canonical_scheduler("dpm++2m"), Some("dpmpp2m"));
    assert_eq!(canonical_scheduler("Euler-A"), Some("euler_a"));
    assert_eq!(canonical_scheduler("heun"), None);
}

#[test]
fn every_shipped_recipe_parses_cleanly() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../recipes");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let (loaded, diags) = check(&path);
            assert!(
                loaded.is_some() && diags.is_empty(),
                "{}",
                Diagnostics(diags)
            );
            n += 1;
        }
    }
    assert!(n >= 4, "found {n} recipes in {}", dir.display());
}

#[test]
fn depth_keys_are_checked_and_belong_to_depth_stages() {
    let dir = tempfile::tempdir().unwrap();
    let style = GOOD.replace("size = 64", "size = 64\nsharpness = 4");
    let err = load(&write(dir.path(), &style)).unwrap_err();
    assert!(err.to_string().contains("depth stages only"), "{err}");

    let depth = GOOD
        .replace("kind = \"style\"", "kind = \"depth\"")
        .replace(
            "size = 64",
            "size = 64\nviews = 6\ngutter = 2\nconditioning_scale = 0.5",
        );
    let err = load(&write(dir.path(), &depth)).unwrap_err();
    assert_eq!(err.0.len(), 1, "{err}");
    assert!(err.0[0].message.contains("needs a `controlnet`"), "{err}");

    let ok = depth.replace(
        "conditioning_scale = 0.5",
        "controlnet = \"cn\"\nconditioning_scale = 0.5\n[depth]\nestimator = \"midas.pt\"",
    );
    let r = load(&write(dir.path(), &ok)).unwrap();
    assert_eq!(r.recipe.stages[0].controlnet, Some(dir.path().join("cn")));
    let est = r.recipe.depth.and_then(|d| d.estimator);
    assert_eq!(est, Some(dir.path().join("midas.pt")));
}

#[test]
fn the_estimators_input_size_and_normalization_are_recipe_keys() {
    let dir = tempfile::tempdir().unwrap();
    let depth = GOOD.replace("kind = \"style\"", "kind = \"depth\"");
    let midas_small = format!(
        "{depth}[depth]\nestimator = \"midas_small.pt\"\nsize = 256\nmean = [0.485, 0.456, 0.406]\n\
         std = [0.229, 0.224, 0.225]\n"
    );
    let d = load(&write(dir.path(), &midas_small))
        .unwrap()
        .recipe
        .depth
        .unwrap();
    assert_eq!(d.size, Some(256));
    assert_eq!(d.mean, Some([0.485, 0.456, 0.406]));
    assert_eq!(d.std, Some([0.229, 0.224, 0.225]));

    let bad = format!(
        "{depth}[depth]\nestimator = \"e.pt\"\nsize = 100\nmean = [0.5, 0.5, 0.5]\nstd = [0.5, 0.0, 0.5]\n"
    );
    let err = load(&write(dir.path(), &bad)).unwrap_err();
    let text = err.to_string();
    assert_eq!(err.0.len(), 2, "{text}");
    assert!(
        text.contains("multiple of 32") && text.contains("std must be three numbers > 0"),
        "{text}"
    );
    // Each at its own line of the recipe.
    let lines: Vec<usize> = err.0.iter().map(|d| d.line).collect();
    assert!(lines.windows(2).all(|w| w[0] != w[1]), "{lines:?}");
}

#[test]
fn render_stages_check_their_keys_where_they_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let render = |keys: &str| format!("{GOOD}[[stage]]\nkind = \"render\"\n{keys}\n");
    let ok = render(
        "after = \"style\"\nviews = 6\nelevation = [10, 40]\nfov = 45\nbackground = \"images\"\nbackgrounds = \"bg\"\nformat = \"jpeg\"\nquality = 80",
    );
    let r = load(&write(dir.path(), &ok)).unwrap();
    assert_eq!(r.recipe.stages[1].backgrounds, Some(dir.path().join("bg")));

    let cases = [
        ("after = \"nope\"", "names no stage"),
        ("after = \"render\"", "names a render stage"),
        (
            "prompts = [\"a {label}\"]",
            "does not apply to a render stage",
        ),
        ("elevation = [40, 10]", "elevation must lie in [-90, 90]"),
        ("fov = 0", "fov (vertical field of view)"),
        ("supersample = 9", "supersample must be in 1..=8"),
        ("background = \"images\"", "needs a folder of images"),
        ("backgrounds = \"bg\"", "applies to background = \"images\""),
        (
            "background = \"random\"\nbackground_color = [1, 2, 3]",
            "applies to background = \"solid\"",
        ),
        ("background = \"sky\"", "unknown background"),
        ("quality = 80", "applies to format = \"jpeg\""),
        ("format = \"tiff\"", "unknown format"),
        ("size = 8", "size must be in 16..=4096"),
    ];
    for (keys, expected) in cases {
        let err = load(&write(dir.path(), &render(keys))).unwrap_err();
        assert!(err.to_string().contains(expected), "{keys}: {err}");
        let line = 1 + render(keys)
            .lines()
            .collect::<Vec<_>>()
            .iter()
            .rposition(|l| l.starts_with(keys.lines().last().unwrap().split(' ').next().unwrap()))
            .unwrap();
        assert!(
            err.to_string().contains(&format!(":{line}:")),
            "{keys} not located at line {line}: {err}"
        );
    }
    // Render keys on a style stage are refused at their key.
    let style = GOOD.replace("size = 64", "size = 64\nazimuth = [0, 90]");
    let err = load(&write(dir.path(), &style)).unwrap_err();
    assert!(
        err.to_string().contains("applies to render stages only"),
        "{err}"
    );
}

#[test]
fn the_clip_filter_needs_a_score_model_and_a_score_in_range() {
    let dir = tempfile::tempdir().unwrap();
    let filtered = GOOD.replace(
        "size = 64",
        "size = 64\nmin_clip_score = 25\nkeep_filtered = true",
    );
    let err = load(&write(dir.path(), &filtered)).unwrap_err();
    assert!(err.to_string().contains("needs a [score] table"), "{err}");
    let scored = format!("{filtered}[score]\npath = \"clip\"\n");
    let r = load(&write(dir.path(), &scored)).unwrap();
    let score = r.recipe.score.unwrap();
    assert_eq!(score.path, Some(dir.path().join("clip")));
    assert_eq!(score.prompt, "a photo of a {label}");
    let bad = scored.replace("min_clip_score = 25", "min_clip_score = 250");
    let err = load(&write(dir.path(), &bad)).unwrap_err();
    assert!(
        err.to_string()
            .contains("min_clip_score must lie in [0, 100]"),
        "{err}"
    );
    let both =
        format!("{filtered}[score]\npath = \"clip\"\nid = \"openai/clip-vit-large-patch14\"\n");
    let err = load(&write(dir.path(), &both)).unwrap_err();
    assert!(
        err.to_string().contains("exactly one of `path` or `id`"),
        "{err}"
    );
    let keep_alone = GOOD.replace("size = 64", "size = 64\nkeep_filtered = true");
    let err = load(&write(dir.path(), &keep_alone)).unwrap_err();
    assert!(
        err.to_string()
            .contains("applies to a stage with `min_clip_score`"),
        "{err}"
    );
}

#[test]
fn fit_defaults_to_keeping_the_aspect_and_names_its_choices() {
    let dir = tempfile::tempdir().unwrap();
    let r = load(&write(dir.path(), GOOD)).unwrap();
    assert_eq!(r.recipe.stages[0].fit, texaug_stages::job::Fit::Keep);
    let crop = GOOD.replace("size = 64", "size = 64\nfit = \"crop\"");
    let r = load(&write(dir.path(), &crop)).unwrap();
    assert_eq!(r.recipe.stages[0].fit, texaug_stages::job::Fit::Crop);
    let bad = GOOD.replace("size = 64", "size = 64\nfit = \"squash\"");
    let err = load(&write(dir.path(), &bad)).unwrap_err();
    assert_eq!(err.0.len(), 1, "{err}");
    let text = err.to_string();
    assert!(text.contains("squash") && text.contains("stretch"), "{err}");
    assert_eq!(err.0[0].line, 14, "{err}");
}
