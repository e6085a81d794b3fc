//! Single-file checkpoints (original LDM layout) give diffusers' images: each tiny model's single file, assembled
//! from the recipe diffusers verified (see `common::single_file`), loads through texaug's key mapping and runs
//! every img2img / depth2img case of that model's fixtures. Detection and its errors are checked on headers with
//! real SD 1.5 / 2.x shapes.

mod common;

use std::path::{Path, PathBuf};

use common::fixtures::fixtures;
use common::parity::{fixture_request, pipeline_parity_within};
use common::single_file;
use tch::{Device, Kind, Tensor};
use texaug_stages::diffusion::img2img::StableDiffusion;
use texaug_stages::diffusion::model_dir::ModelSource;
use texaug_stages::diffusion::pipeline_source::ModelRef;
use texaug_stages::diffusion::single_file::{CheckpointKind, SingleFile};

fn single_file_ref(file: &Path, config: &Path) -> ModelRef {
    ModelRef {
        config: Some(ModelSource::Dir(config.to_path_buf())),
        ..ModelRef::from(ModelSource::File(file.to_path_buf()))
    }
}

fn parity_from_single_file(model: &str, pipeline: &str) {
    parity_from_single_file_within(model, pipeline, 2, 0.25);
}

fn parity_from_single_file_within(model: &str, pipeline: &str, max: i32, mean: f64) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = single_file::write(model, tmp.path(), Kind::Float);
    // Configs only: the weights can come from nowhere but the single file.
    let config = single_file::config_only(model, tmp.path());
    let model_ref = single_file_ref(&file, &config);
    pipeline_parity_within(
        model,
        pipeline,
        &|kind| {
            StableDiffusion::load_ref(&model_ref, Device::Cpu, Kind::Float, Some(kind))
                .unwrap_or_else(|e| panic!("{model} single file: {e}"))
        },
        max,
        mean,
    );
}

#[test]
fn sd1_single_file_gives_diffusers_images() {
    parity_from_single_file("sd1-tiny", "img2img");
}

#[test]
fn sd2_v_prediction_single_file_gives_diffusers_images() {
    parity_from_single_file("sd2-tiny", "img2img");
}

#[test]
fn sd2_depth_single_file_gives_diffusers_images() {
    parity_from_single_file("sd2-depth-tiny", "depth2img");
}

#[test]
fn inpainting_single_file_gives_diffusers_images() {
    parity_from_single_file("sd1-inpaint-tiny", "inpaint");
}

/// SDXL base in SGM's layout: CLIP ViT-L under `conditioner.embedders.0.transformer.`, OpenCLIP bigG (with its
/// transposed `text_projection`) under `conditioner.embedders.1.model.`, `label_emb` for the text_time embedding.
#[test]
fn sdxl_single_file_gives_diffusers_images() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = single_file::write("sdxl-tiny", tmp.path(), Kind::Float);
    let d = SingleFile::open(&file, None).expect("open").detected;
    assert_eq!(d.kind, Some(CheckpointKind::Sdxl));
    parity_from_single_file_within("sdxl-tiny", "img2img", 1, 0.01);
}

/// The SDXL refiner: bigG alone under `conditioner.embedders.0.model.`, five time ids.
#[test]
fn sdxl_refiner_single_file_gives_diffusers_images() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = single_file::write("sdxl-refiner-tiny", tmp.path(), Kind::Float);
    let d = SingleFile::open(&file, None).expect("open").detected;
    assert_eq!(d.kind, Some(CheckpointKind::SdxlRefiner));
    parity_from_single_file_within("sdxl-refiner-tiny", "img2img", 1, 0.01);
}

/// A single file saved in float16 (as most shared checkpoints are) loads into a float32 pipeline: the weights
/// round, nothing else changes.
#[test]
fn a_float16_single_file_loads_with_rounded_weights() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = single_file::write("sd1-tiny", tmp.path(), Kind::Half);
    let config = single_file::config_only("sd1-tiny", tmp.path());
    let half = StableDiffusion::load_ref(
        &single_file_ref(&file, &config),
        Device::Cpu,
        Kind::Float,
        None,
    )
    .expect("fp16 single file");
    let plain = StableDiffusion::load(
        &ModelSource::Dir(fixtures().join("models/sd1-tiny")),
        Device::Cpu,
        Kind::Float,
        None,
    )
    .expect("folder");
    let (a, b) = (
        half.encode_prompts(&["a red mug"]),
        plain.encode_prompts(&["a red mug"]),
    );
    let err = (&a - &b).abs().max().double_value(&[]);
    assert!(err > 0.0 && err < 0.05, "fp16 rounding only: {err}");
}

/// The tiny models' shapes are no published model's: without `config` the file cannot be told, and the error
/// says what was found and how to say what it is.
#[test]
fn an_unrecognised_checkpoint_asks_for_its_kind_or_config() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = single_file::write("sd1-tiny", tmp.path(), Kind::Float);
    let plain = ModelRef::from(ModelSource::File(file.clone()));
    let err = StableDiffusion::load_ref(&plain, Device::Cpu, Kind::Float, None)
        .err()
        .expect("no kind")
        .to_string();
    assert!(
        err.contains("cannot tell")
            && err.contains("cross-attention width 32")
            && err.contains("[model] kind")
            && err.contains("\"sd2-v\"")
            && err.contains("[model] config"),
        "{err}"
    );
    // Said to be SD 1.5, its tensors do not have SD 1.5's shapes: the error names the key and both shapes.
    let as_sd1 = ModelRef {
        kind: Some(CheckpointKind::Sd1),
        ..plain.clone()
    };
    let err = StableDiffusion::load_ref(&as_sd1, Device::Cpu, Kind::Float, None)
        .err()
        .expect("wrong shapes");
    let err = err.to_string();
    assert!(
        err.contains("has shape") && err.contains("sd1-tiny.safetensors"),
        "{err}"
    );
    // A kind whose input channels disagree with the UNet is refused before anything loads.
    let as_depth = ModelRef {
        kind: Some(CheckpointKind::Sd2Depth),
        ..plain
    };
    let err = StableDiffusion::load_ref(&as_depth, Device::Cpu, Kind::Float, None)
        .err()
        .expect("mismatch")
        .to_string();
    assert!(
        err.contains("5 input channels") && err.contains("takes 4"),
        "{err}"
    );
}

/// A tensor's name and shape.
type Named<'a> = (&'a str, &'a [i64]);

/// A header with the sentinel tensors of a published model (real shapes, half precision, nothing else).
fn header_only(dir: &Path, name: &str, tensors: &[Named]) -> PathBuf {
    let path = dir.join(name);
    let named: Vec<(String, Tensor)> = tensors
        .iter()
        .map(|(k, s)| {
            (
                (*k).to_owned(),
                Tensor::zeros(*s, (Kind::Half, Device::Cpu)),
            )
        })
        .collect();
    Tensor::write_safetensors(&named, &path).expect("write");
    path
}

const IN_CONV: &str = "model.diffusion_model.input_blocks.0.0.weight";
const TO_K: &str = "model.diffusion_model.input_blocks.2.1.transformer_blocks.0.attn2.to_k.weight";
const CLIP: &str = "cond_stage_model.transformer.text_model.embeddings.position_embedding.weight";
const OPEN_CLIP: &str = "cond_stage_model.model.token_embedding.weight";

#[test]
fn published_kinds_are_told_from_shapes_as_diffusers_tells_them() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let kind_of = |name: &str, channels: i64, context: i64, text: &str| {
        let p = header_only(
            tmp.path(),
            name,
            &[
                (IN_CONV, &[320, channels, 3, 3]),
                (TO_K, &[320, context]),
                (text, &[2, 2]),
            ],
        );
        SingleFile::open(&p, None).expect("open").detected
    };
    let d = kind_of("sd15.safetensors", 4, 768, CLIP);
    assert_eq!(d.kind, Some(CheckpointKind::Sd1));
    assert!(!d.guessed);
    assert_eq!(
        kind_of("sd15-inpaint.safetensors", 9, 768, CLIP).kind,
        Some(CheckpointKind::Sd1Inpaint)
    );
    assert_eq!(
        kind_of("sd2-depth.safetensors", 5, 1024, OPEN_CLIP).kind,
        Some(CheckpointKind::Sd2Depth)
    );
    assert_eq!(
        kind_of("sd2-inpaint.safetensors", 9, 1024, OPEN_CLIP).kind,
        Some(CheckpointKind::Sd2Inpaint)
    );
    // SD 2's weights cannot tell epsilon-512 from v-768: diffusers takes v, and so does texaug, saying it guessed.
    let d = kind_of("sd21.safetensors", 4, 1024, OPEN_CLIP);
    assert_eq!(d.kind, Some(CheckpointKind::Sd2V));
    assert!(d.guessed);
    // A kind the file contradicts is refused before anything loads.
    let sd21 = tmp.path().join("sd21.safetensors");
    let err = SingleFile::open(&sd21, Some(CheckpointKind::Sd1))
        .err()
        .expect("sd1 on an SD 2 file")
        .to_string();
    assert!(
        err.contains("OpenCLIP") && err.contains("1024") && err.contains("kind = \"sd1\""),
        "{err}"
    );
    let d = SingleFile::open(&sd21, Some(CheckpointKind::Sd2))
        .expect("sd2 base")
        .detected;
    assert_eq!((d.kind, d.guessed), (Some(CheckpointKind::Sd2), false));
    // SDXL (SGM): the prefixes tell base from refiner, the widths agree with them.
    const XL_TO_K: &str =
        "model.diffusion_model.input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight";
    const XL_CLIP: &str =
        "conditioner.embedders.0.transformer.text_model.embeddings.position_embedding.weight";
    const XL_BIGG: &str = "conditioner.embedders.1.model.transformer.resblocks.9.mlp.c_proj.bias";
    const REFINER_BIGG: &str =
        "conditioner.embedders.0.model.transformer.resblocks.9.mlp.c_proj.bias";
    let xl = |name: &str, channels: i64, context: i64, text: &[&str]| {
        let (conv, to_k) = ([320, channels, 3, 3], [640, context]);
        let mut tensors: Vec<Named> = vec![(IN_CONV, &conv), (XL_TO_K, &to_k)];
        tensors.extend(text.iter().map(|k| (*k, &[2i64, 2][..])));
        header_only(tmp.path(), name, &tensors)
    };
    let base = xl("sdxl.safetensors", 4, 2048, &[XL_CLIP, XL_BIGG]);
    let d = SingleFile::open(&base, None).expect("sdxl").detected;
    assert_eq!(
        (d.kind, d.context_dim),
        (Some(CheckpointKind::Sdxl), Some(2048))
    );
    let refiner = xl("refiner.safetensors", 4, 1280, &[REFINER_BIGG]);
    let d = SingleFile::open(&refiner, None).expect("refiner").detected;
    assert_eq!(d.kind, Some(CheckpointKind::SdxlRefiner));
    let err = SingleFile::open(&base, Some(CheckpointKind::Sd1))
        .err()
        .expect("sd1 on an SDXL file")
        .to_string();
    assert!(
        err.contains("CLIP ViT-L + OpenCLIP bigG (SDXL)") && err.contains("kind = \"sd1\""),
        "{err}"
    );
    let inpaint = xl("sdxl-inpaint.safetensors", 9, 2048, &[XL_CLIP, XL_BIGG]);
    let err = SingleFile::open(&inpaint, None)
        .err()
        .expect("SDXL inpainting")
        .to_string();
    assert!(
        err.contains("9 input channels") && err.contains("SDXL"),
        "{err}"
    );
}

#[test]
fn files_that_are_not_checkpoints_say_what_they_are() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cases: [(&str, &[Named], &str); 5] = [
        (
            "lora.safetensors",
            &[
                (
                    "lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight",
                    &[4, 320],
                ),
                ("lora_unet_down_blocks_0_attentions_0_proj_in.alpha", &[1]),
                (
                    "lora_te_text_model_encoder_layers_0_mlp_fc1.lora_up.weight",
                    &[3072, 4],
                ),
            ],
            "a LoRA",
        ),
        (
            "controlnet.safetensors",
            &[
                ("control_model.time_embed.0.weight", &[1280, 320]),
                ("control_model.x", &[1]),
                ("control_model.y", &[1]),
            ],
            "a ControlNet",
        ),
        (
            "vae.safetensors",
            &[
                ("encoder.down.0.block.0.conv1.weight", &[2, 2]),
                ("decoder.up.0.block.0.conv1.weight", &[2, 2]),
                ("encoder.conv_in.weight", &[2, 2]),
            ],
            "[model] vae",
        ),
        (
            "unet.safetensors",
            &[
                ("down_blocks.0.resnets.0.conv1.weight", &[2, 2]),
                ("conv_in.weight", &[2, 2]),
                ("conv_out.weight", &[2, 2]),
            ],
            "model_index.json",
        ),
        (
            "sdxl.safetensors",
            &[
                (IN_CONV, &[320, 4, 3, 3]),
                (
                    "conditioner.embedders.1.model.transformer.resblocks.9.mlp.c_proj.bias",
                    &[1280],
                ),
            ],
            "SDXL",
        ),
    ];
    for (name, tensors, want) in cases {
        let p = header_only(tmp.path(), name, tensors);
        let err = SingleFile::open(&p, None).err().expect(name).to_string();
        assert!(err.contains(want) && err.contains(name), "{name}: {err}");
    }
    let ckpt = tmp.path().join("model.ckpt");
    std::fs::write(&ckpt, b"pickle").expect("write");
    let err = SingleFile::open(&ckpt, None)
        .err()
        .expect("pickle")
        .to_string();
    assert!(err.contains("arbitrary code"), "{err}");
}

/// A replacement VAE, as users swap in `sd-vae-ft-mse`: in its original layout as one file (keys without
/// `first_stage_model.`), it takes the place of the model's own. The same weights give the same image; other
/// weights another.
#[test]
fn a_vae_file_in_the_original_layout_replaces_the_model_vae() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let vae_file = |name: &str, scale: f64| {
        let tensors: Vec<(String, Tensor)> = single_file::assemble("sd1-tiny", Kind::Float)
            .into_iter()
            .filter_map(|(k, t)| {
                k.strip_prefix("first_stage_model.")
                    .map(|k| (k.to_owned(), (t * scale).contiguous()))
            })
            .collect();
        let path = tmp.path().join(name);
        Tensor::write_safetensors(&tensors, &path).expect("write");
        path
    };
    let folder = ModelSource::Dir(fixtures().join("models/sd1-tiny"));
    let req = fixture_request("a mug", 4, 0.5, 3);
    let run = |vae: Option<PathBuf>| {
        let model = ModelRef {
            vae,
            ..ModelRef::from(folder.clone())
        };
        let sd = StableDiffusion::load_ref(&model, Device::Cpu, Kind::Float, None).expect("load");
        sd.img2img(std::slice::from_ref(&req)).expect("img2img")[0].clone()
    };
    let own = run(None);
    assert_eq!(
        run(Some(vae_file("same.safetensors", 1.0))).as_raw(),
        own.as_raw()
    );
    assert_ne!(
        run(Some(vae_file("other.safetensors", 0.5))).as_raw(),
        own.as_raw()
    );
}

/// `export_folder` writes what diffusers reads: for each tiny model every tensor of the verified recipe, bit for
/// bit, under the same key (less the two extras real SD 2 files carry, which nothing reads).
#[test]
fn the_exported_single_file_is_the_one_diffusers_verified() {
    use texaug_stages::diffusion::single_file::export::export_folder;
    let tmp = tempfile::tempdir().expect("tempdir");
    for model in [
        "sd1-tiny",
        "sd2-tiny",
        "sd2-depth-tiny",
        "sd1-inpaint-tiny",
        "sdxl-tiny",
        "sdxl-refiner-tiny",
    ] {
        let out = tmp.path().join(format!("{model}.safetensors"));
        let n = export_folder(&fixtures().join("models").join(model), &out, None, None)
            .unwrap_or_else(|e| panic!("{model}: {e}"));
        let written: std::collections::HashMap<String, Tensor> = Tensor::read_safetensors(&out)
            .expect("read")
            .into_iter()
            .collect();
        // SD 2's recipe has the block and projection diffusers drops; SDXL's nothing unread.
        let layers = model.starts_with("sd2").then_some(3);
        let want: Vec<(String, Tensor)> = single_file::assemble(model, Kind::Float)
            .into_iter()
            .filter(|(k, _)| {
                layers.is_none_or(|l| {
                    !k.ends_with("text_projection") && !k.contains(&format!(".resblocks.{l}."))
                })
            })
            .collect();
        assert_eq!(n, want.len(), "{model}: tensor count");
        for (k, t) in &want {
            let got = written
                .get(k)
                .unwrap_or_else(|| panic!("{model}: {k} not written"));
            assert!(got.equal(t), "{model}: {k} differs");
        }
    }
}

/// Full size (`make fullsize-check`): SD 1.5 and SD 2.1 as single files, loaded with texaug's built-in published
/// configs (no `config` folder; SD 1.5 detected, SD 2.1 taken as v-prediction as diffusers takes it), give the
/// same embeddings and images as their diffusers folders, which the full-size network test checks against
/// diffusers.
#[test]
#[ignore = "needs TEXAUG_FULLSIZE_DIR with the full-size reference models"]
fn fullsize_single_files_load_with_builtin_configs() {
    let root = PathBuf::from(
        std::env::var_os("TEXAUG_FULLSIZE_DIR")
            .expect("set TEXAUG_FULLSIZE_DIR to the output folder of ci/reference/fullsize.py"),
    );
    let mut ran = 0;
    for (variant, kind) in [
        ("sd15", CheckpointKind::Sd1),
        ("sd21", CheckpointKind::Sd2V),
    ] {
        let dir = root.join(variant);
        let file = dir.join("single_file.safetensors");
        if !file.exists() {
            eprintln!("{variant}: no single file, skipped");
            continue;
        }
        ran += 1;
        let detected = SingleFile::open(&file, None).expect("open").detected;
        assert_eq!(detected.kind, Some(kind), "{variant}");
        let t0 = std::time::Instant::now();
        let from_file = StableDiffusion::load_ref(
            &ModelRef::from(ModelSource::File(file.clone())),
            Device::Cpu,
            Kind::Float,
            None,
        )
        .unwrap_or_else(|e| panic!("{variant} single file: {e}"));
        let t1 = std::time::Instant::now();
        let from_folder = StableDiffusion::load(
            &ModelSource::Dir(dir.clone()),
            Device::Cpu,
            Kind::Float,
            None,
        )
        .unwrap_or_else(|e| panic!("{variant} folder: {e}"));
        eprintln!(
            "{variant}: load {:.1} s from the single file, {:.1} s from the folder",
            (t1 - t0).as_secs_f64(),
            t1.elapsed().as_secs_f64()
        );
        let prompts = ["a photograph of an astronaut riding a horse", ""];
        let (a, b) = (
            from_file.encode_prompts(&prompts),
            from_folder.encode_prompts(&prompts),
        );
        assert!(a.equal(&b), "{variant}: text embeddings differ");
        let req = fixture_request(prompts[0], 2, 0.5, 5);
        let (x, y) = (
            from_file.img2img(std::slice::from_ref(&req)).expect("file"),
            from_folder
                .img2img(std::slice::from_ref(&req))
                .expect("folder"),
        );
        assert_eq!(x[0].as_raw(), y[0].as_raw(), "{variant}: images differ");
        eprintln!("{variant}: single file with built-in {kind} configs = diffusers folder");
    }
    assert!(ran > 0, "no single file under {}", root.display());
}

/// `[model] variant = "fp16"` reads `<name>.fp16.safetensors` where a folder has both, as diffusers' `variant`.
#[test]
fn a_variant_reads_its_own_files() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("sd1-tiny");
    let src = fixtures().join("models/sd1-tiny");
    for sub in ["", "unet", "vae", "text_encoder", "tokenizer", "scheduler"] {
        std::fs::create_dir_all(dir.join(sub)).expect("mkdir");
        for e in std::fs::read_dir(src.join(sub)).expect("read").flatten() {
            if e.path().is_file() {
                std::fs::copy(e.path(), dir.join(sub).join(e.file_name())).expect("copy");
            }
        }
    }
    // The fp16 variant of the text encoder: other (halved) weights, so which file loaded shows.
    let halved: Vec<(String, Tensor)> =
        Tensor::read_safetensors(src.join("text_encoder/model.safetensors"))
            .expect("read")
            .into_iter()
            .map(|(k, t)| (k, (t * 0.5).to_kind(Kind::Half)))
            .collect();
    Tensor::write_safetensors(&halved, dir.join("text_encoder/model.fp16.safetensors"))
        .expect("write");
    let embed = |variant: Option<&str>| {
        let model = ModelRef {
            variant: variant.map(str::to_owned),
            ..ModelRef::from(ModelSource::Dir(dir.clone()))
        };
        StableDiffusion::load_ref(&model, Device::Cpu, Kind::Float, None)
            .expect("load")
            .encode_prompts(&["a mug"])
    };
    let plain = StableDiffusion::load(&ModelSource::Dir(src), Device::Cpu, Kind::Float, None)
        .expect("load")
        .encode_prompts(&["a mug"]);
    assert!(
        embed(None).equal(&plain),
        "without a variant the plain files load"
    );
    assert!(
        !embed(Some("fp16")).allclose(&plain, 1e-3, 1e-3, false),
        "the fp16 files load"
    );
}
