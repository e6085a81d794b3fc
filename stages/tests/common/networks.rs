//! Loading the tiny fixture networks exactly as diffusers saved them, and comparing their outputs with
//! `tests/fixtures/outputs/*/components.safetensors`.

use super::fixtures::{fixtures, read_tensors};
use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use tch::{nn, Device, Kind, Tensor};
use texaug_stages::diffusion::clip::{checkpoint_has_prefix, ClipTextTransformer};
use texaug_stages::diffusion::config::{AutoencoderKLConfig, ClipTextConfig};
pub use texaug_stages::diffusion::noise::with_rng_lock;
use texaug_stages::diffusion::unet::UNet2DConditionModel;
use texaug_stages::diffusion::unet_config::UNet2DConditionConfig;
use texaug_stages::diffusion::vae::AutoencoderKL;

pub fn outputs(model: &str) -> HashMap<String, Tensor> {
    read_tensors(
        &fixtures()
            .join("outputs")
            .join(model)
            .join("components.safetensors"),
    )
}

pub fn get<'a>(t: &'a HashMap<String, Tensor>, key: &str) -> &'a Tensor {
    t.get(key)
        .unwrap_or_else(|| panic!("fixture has no `{key}`"))
}

/// Tensor names of a safetensors file, from its header alone (the full-size files are gigabytes).
pub fn tensor_names(file: &Path) -> BTreeSet<String> {
    let fail = |e: String| -> ! { panic!("cannot read the header of {}: {e}", file.display()) };
    let mut f = std::fs::File::open(file).unwrap_or_else(|e| fail(e.to_string()));
    let mut len = [0u8; 8];
    f.read_exact(&mut len)
        .unwrap_or_else(|e| fail(e.to_string()));
    let mut header = vec![0u8; u64::from_le_bytes(len) as usize];
    f.read_exact(&mut header)
        .unwrap_or_else(|e| fail(e.to_string()));
    let map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&header).unwrap_or_else(|e| fail(e.to_string()));
    map.into_iter()
        .map(|(k, _)| k)
        .filter(|k| k != "__metadata__")
        .collect()
}

/// Loads `file` into `vs` and checks that the file and the network hold exactly the same tensor names.
pub fn load(vs: &mut nn::VarStore, file: PathBuf) {
    let in_file = tensor_names(&file);
    let in_net: BTreeSet<String> = vs.variables().into_keys().collect();
    let missing: Vec<_> = in_net.difference(&in_file).collect();
    let unused: Vec<_> = in_file.difference(&in_net).collect();
    assert!(
        missing.is_empty() && unused.is_empty(),
        "{}: missing in file {missing:?}, not in network {unused:?}",
        file.display()
    );
    vs.load(&file)
        .unwrap_or_else(|e| panic!("cannot load {}: {e}", file.display()));
}

pub fn rel_l2(got: &Tensor, want: &Tensor) -> f64 {
    assert_eq!(got.size(), want.size(), "shape");
    let got = got.to_kind(Kind::Double);
    let want = want.to_kind(Kind::Double);
    (&got - &want).norm().double_value(&[]) / want.norm().double_value(&[]).max(1e-30)
}

/// Asserts `got` is within relative L2 error `tolerance` of `want`, printing the figure.
pub fn check_within(what: &str, got: &Tensor, want: &Tensor, tolerance: f64) {
    let e = rel_l2(got, want);
    eprintln!("{what}: relative L2 error {e:.3e}");
    assert!(
        e <= tolerance,
        "{what}: relative L2 error {e:.3e} > {tolerance:e}"
    );
}

pub fn model_dir(model: &str, part: &str) -> PathBuf {
    fixtures().join("models").join(model).join(part)
}

pub fn load_clip(dir: &Path) -> (nn::VarStore, ClipTextTransformer) {
    let (vs, clip, _) = load_clip_with(dir, false);
    (vs, clip)
}

/// As [`load_clip`], with `CLIPTextModelWithProjection`'s bias-free `text_projection` when `projection`.
pub fn load_clip_with(
    dir: &Path,
    projection: bool,
) -> (nn::VarStore, ClipTextTransformer, Option<nn::Linear>) {
    let cfg = ClipTextConfig::from_file(&dir.join("config.json")).unwrap();
    let file = dir.join("model.safetensors");
    let names = tensor_names(&file);
    let mut vs = nn::VarStore::new(Device::Cpu);
    // transformers 5 saves without the `text_model.` prefix the Hub's checkpoints have
    // Built under the generator lock: a pipeline test in the same binary may be drawing seeded noise.
    let (clip, proj) = with_rng_lock(|| {
        let clip = if checkpoint_has_prefix(names.iter().map(String::as_str)) {
            ClipTextTransformer::new(vs.root(), &cfg)
        } else {
            ClipTextTransformer::new_at(vs.root(), &cfg)
        };
        let proj = projection.then(|| {
            let out = cfg.projection_dim.expect("projection_dim in the config");
            let no_bias = nn::LinearConfig {
                bias: false,
                ..Default::default()
            };
            nn::linear(vs.root() / "text_projection", cfg.hidden_size, out, no_bias)
        });
        (clip, proj)
    });
    load(&mut vs, file);
    (vs, clip, proj)
}

pub fn load_unet_at(dir: &Path) -> (nn::VarStore, UNet2DConditionModel) {
    let cfg = UNet2DConditionConfig::from_file(&dir.join("config.json")).unwrap();
    let mut vs = nn::VarStore::new(Device::Cpu);
    let unet = with_rng_lock(|| UNet2DConditionModel::new(vs.root(), &cfg)).unwrap();
    load(&mut vs, dir.join("diffusion_pytorch_model.safetensors"));
    (vs, unet)
}

pub fn load_vae(dir: &Path) -> (nn::VarStore, AutoencoderKL) {
    let cfg = AutoencoderKLConfig::from_file(&dir.join("config.json")).unwrap();
    let mut vs = nn::VarStore::new(Device::Cpu);
    let vae = with_rng_lock(|| AutoencoderKL::new(vs.root(), &cfg)).unwrap();
    load(&mut vs, dir.join("diffusion_pytorch_model.safetensors"));
    (vs, vae)
}
