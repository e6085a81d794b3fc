//! The CLIP scorer against transformers: the small CLIPModel in `tests/fixtures/clip/model` (saved by transformers)
//! and `texaug model init-tiny --kind clip` (loaded by transformers) must give transformers' normalised
//! embeddings to float32 rounding, tokenize as `CLIPTokenizer`, and preprocess as `CLIPImageProcessor`.
//! The fixtures come from `ci/reference/clip_score.py`; no Python runs here.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use tch::{Device, Kind, Tensor};
use texaug_stages::score::tiny::init_tiny_clip;
use texaug_stages::score::ClipScorer;

/// Float32 rounding of a few hundred multiply-adds on values of order 1.
const EMBED_TOLERANCE: f64 = 1e-5;
/// Our resize is PIL's fixed-point algorithm, so the pixel values agree to float32 rounding of the normalisation.
const PIXEL_TOLERANCE: f64 = 1e-6;
/// The score (100 × cosine) from our preprocessing against the reference's pixels.
const SCORE_TOLERANCE: f64 = 0.5;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/clip")
}

fn expected() -> HashMap<String, Tensor> {
    let path = fixtures().join("expected.safetensors");
    Tensor::read_safetensors(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
        .into_iter()
        .collect()
}

fn get<'a>(t: &'a HashMap<String, Tensor>, key: &str) -> &'a Tensor {
    t.get(key)
        .unwrap_or_else(|| panic!("expected.safetensors has no `{key}`"))
}

fn prompts() -> Vec<String> {
    let path = fixtures().join("prompts.json");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    v["prompts"]
        .as_array()
        .expect("prompts")
        .iter()
        .map(|p| p.as_str().expect("a string").to_owned())
        .collect()
}

fn max_abs(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size(), "shape");
    (a.to_kind(Kind::Double) - b.to_kind(Kind::Double))
        .abs()
        .max()
        .double_value(&[])
}

fn check(what: &str, got: &Tensor, want: &Tensor, tolerance: f64) {
    let d = max_abs(got, want);
    eprintln!("{what}: max abs diff {d:.3e}");
    assert!(
        d < tolerance,
        "{what}: max abs diff {d:.3e} ≥ {tolerance:e}"
    );
}

fn small() -> ClipScorer {
    ClipScorer::load(&fixtures().join("model"), Device::Cpu).expect("the small CLIP model loads")
}

fn picture() -> image::RgbImage {
    image::open(fixtures().join("picture.png"))
        .expect("picture.png")
        .to_rgb8()
}

fn ids_of(t: &Tensor) -> Vec<Vec<i64>> {
    (0..t.size()[0])
        .map(|i| Vec::try_from(t.get(i)).expect("ids"))
        .collect()
}

#[test]
fn embeds_equal_transformers() {
    let t = expected();
    let clip = small();
    check(
        "small image_embeds",
        &clip.image_embeds(get(&t, "pixel_values")),
        get(&t, "image_embeds"),
        EMBED_TOLERANCE,
    );
    check(
        "small text_embeds",
        &clip.text_embeds(get(&t, "input_ids")),
        get(&t, "text_embeds"),
        EMBED_TOLERANCE,
    );
    let norms = clip
        .image_embeds(get(&t, "pixel_values"))
        .norm_scalaropt_dim(2, [-1], false);
    assert!(max_abs(&norms, &Tensor::ones([2], (Kind::Float, Device::Cpu))) < 1e-6);
}

#[test]
fn tokenization_equals_transformers() {
    let t = expected();
    let ids = small().tokenize(&prompts());
    assert_eq!(ids_of(&ids), ids_of(get(&t, "input_ids")));
}

#[test]
fn preprocessing_matches_clip_image_processor() {
    let t = expected();
    let clip = small();
    let ours = clip.pixel_values(&picture()).unsqueeze(0);
    let reference = get(&t, "pixel_values").narrow(0, 0, 1);
    check("picture pixel_values", &ours, &reference, PIXEL_TOLERANCE);
    // The same through the scorer's own path: 100 × cosine against each prompt.
    let texts = prompts();
    let cos = (clip.image_embeds(&ours) * clip.text_embeds(&clip.tokenize(&texts)))
        .sum_dim_intlist(-1, false, Kind::Float);
    check(
        "picture 100 × cosine",
        &(&cos * 100.0),
        &(get(&t, "picture_cosine") * 100.0),
        SCORE_TOLERANCE,
    );
    let scores = clip
        .score(&vec![picture(); texts.len()], &texts)
        .expect("scores");
    let want: Vec<f64> = Vec::try_from(cos.to_kind(Kind::Double)).unwrap();
    for (s, c) in scores.iter().zip(&want) {
        // torchmetrics' CLIPScore: 100 × max(cos, 0).
        assert!((s - 100.0 * c.max(0.0)).abs() < 1e-4, "{s} vs cos {c}");
    }
}

/// Copies the small model's files into a fresh folder, for breaking one of them.
fn small_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(fixtures().join("model")).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dir.path().join(p.file_name().unwrap())).unwrap();
    }
    dir
}

fn load_err(dir: &Path) -> String {
    ClipScorer::load(dir, Device::Cpu)
        .expect_err("the broken model must not load")
        .to_string()
}

#[test]
fn a_missing_key_names_the_key_and_the_file() {
    let dir = small_copy();
    let file = dir.path().join("model.safetensors");
    let kept: Vec<(String, Tensor)> = Tensor::read_safetensors(&file)
        .unwrap()
        .into_iter()
        .filter(|(k, _)| k != "vision_model.pre_layrnorm.weight")
        .collect();
    Tensor::write_safetensors(&kept, &file).unwrap();
    let e = load_err(dir.path());
    assert!(
        e.contains("vision_model.pre_layrnorm.weight") && e.contains(&file.display().to_string()),
        "{e}"
    );
}

#[test]
fn a_bad_config_names_the_file_and_the_field() {
    let dir = small_copy();
    let path = dir.path().join("config.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    v["vision_config"]["num_attention_heads"] = 5.into();
    std::fs::write(&path, v.to_string()).unwrap();
    let e = load_err(dir.path());
    assert!(
        e.contains("vision_config.num_attention_heads") && e.contains(&path.display().to_string()),
        "{e}"
    );
    // A shape the weights do not have: the key, the file and both shapes.
    v["vision_config"]["num_attention_heads"] = 4.into();
    v["projection_dim"] = 8.into();
    std::fs::write(&path, v.to_string()).unwrap();
    let e = load_err(dir.path());
    assert!(
        e.contains("text_projection.weight") && e.contains("[8, 16]") && e.contains("[16, 16]"),
        "{e}"
    );
    std::fs::write(&path, "{\"text_config\": ").unwrap();
    let e = load_err(dir.path());
    assert!(
        e.contains(&path.display().to_string()) && e.contains("line 1"),
        "{e}"
    );
    std::fs::remove_file(&path).unwrap();
    let e = load_err(dir.path());
    assert!(e.contains(&path.display().to_string()), "{e}");
    let e = load_err(&dir.path().join("nowhere"));
    assert!(e.contains("nowhere") && e.contains("does not exist"), "{e}");
}

#[test]
fn a_scorer_can_move_to_a_device_thread() {
    // As the diffusion model: libtorch tensors are Send, not Sync; one scorer per device worker.
    fn movable<T: Send>() {}
    movable::<ClipScorer>();
}

#[test]
fn mismatched_pairs_are_an_error() {
    let e = small()
        .score(&[picture()], &[])
        .expect_err("one image, no text")
        .to_string();
    assert!(e.contains("1 images but 0 texts"), "{e}");
}

#[test]
fn a_hub_id_resolves_in_the_local_cache() {
    let cache = tempfile::tempdir().unwrap();
    let repo = cache.path().join("models--texaug-test--clip-small");
    let snap = repo.join("snapshots/0123abcd");
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), "0123abcd").unwrap();
    std::fs::create_dir_all(&snap).unwrap();
    for e in std::fs::read_dir(fixtures().join("model")).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, snap.join(p.file_name().unwrap())).unwrap();
    }
    // Only this test reads the hub variables in this test binary.
    std::env::set_var("HF_HUB_CACHE", cache.path());
    let clip = ClipScorer::load(Path::new("texaug-test/clip-small"), Device::Cpu);
    std::env::remove_var("HF_HUB_CACHE");
    let t = expected();
    check(
        "hub-cache text_embeds",
        &clip
            .expect("loads from the hub cache")
            .text_embeds(get(&t, "input_ids")),
        get(&t, "text_embeds"),
        EMBED_TOLERANCE,
    );
}

fn files_of(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn init_tiny_clip_is_transformers_layout_and_scores_deterministically() {
    let Some(vocab) = std::env::var_os("TEXAUG_CLIP_VOCAB") else {
        eprintln!(
            "SKIPPED init-tiny --kind clip: TEXAUG_CLIP_VOCAB is not set (point it at open_clip's \
             bpe_simple_vocab_16e6.txt.gz; `make test` sets it)"
        );
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    init_tiny_clip(&a, Path::new(&vocab), 0).expect("init-tiny clip");
    init_tiny_clip(&b, Path::new(&vocab), 0).expect("init-tiny clip again");
    let files = files_of(&a);
    assert_eq!(
        files,
        files_of(&b),
        "init-tiny --kind clip is not byte-stable"
    );
    let weights = files
        .iter()
        .find(|(n, _)| n == "model.safetensors")
        .map(|(_, b)| b.len())
        .expect("model.safetensors");
    assert!(weights < 5_000_000, "{weights} bytes of weights");

    let t = expected();
    let clip = ClipScorer::load(&a, Device::Cpu).expect("init-tiny output loads");
    let texts = prompts();
    assert_eq!(
        ids_of(&clip.tokenize(&texts)),
        ids_of(get(&t, "tiny_input_ids"))
    );
    check(
        "init-tiny image_embeds",
        &clip.image_embeds(get(&t, "pixel_values")),
        get(&t, "tiny_image_embeds"),
        EMBED_TOLERANCE,
    );
    check(
        "init-tiny text_embeds",
        &clip.text_embeds(get(&t, "tiny_input_ids")),
        get(&t, "tiny_text_embeds"),
        EMBED_TOLERANCE,
    );
    // Every prompt against the picture, its mirror image and a hashed-noise image.
    let noise = image::RgbImage::from_fn(40, 40, |x, y| {
        let h = (x.wrapping_mul(2654435761) ^ y.wrapping_mul(40503)).wrapping_mul(2246822519);
        image::Rgb([(h >> 24) as u8, (h >> 16) as u8, (h >> 8) as u8])
    });
    let pictures = [
        picture(),
        image::imageops::flip_horizontal(&picture()),
        noise,
    ];
    let (images, texts): (Vec<_>, Vec<_>) = texts
        .iter()
        .flat_map(|p| pictures.iter().map(|i| (i.clone(), p.clone())))
        .unzip();
    let first = clip.score(&images, &texts).expect("scores");
    let again = ClipScorer::load(&b, Device::Cpu)
        .unwrap()
        .score(&images, &texts)
        .unwrap();
    let bits = |v: &[f64]| v.iter().map(|s| s.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&first), bits(&again));
    assert!(first.iter().all(|s| (0.0..=100.0).contains(s)), "{first:?}");
    // init-tiny picks the projection's sign so scores spread above zero rather than all clamping to 0.
    assert!(
        first.iter().filter(|s| **s > 0.0).count() > first.len() / 2,
        "{first:?}"
    );
    eprintln!("init-tiny scores: {first:?}");
}
