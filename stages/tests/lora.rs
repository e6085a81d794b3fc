//! LoRAs give diffusers' images: each fixture LoRA (kohya with alpha and LoCon convolutions, kohya without alpha,
//! PEFT), merged at load, runs the img2img cases diffusers made with `load_lora_weights` + `fuse_lora` at the same
//! scale. A LoRA that does not fit the model is an error naming the layer and both shapes.

mod common;

use std::path::{Path, PathBuf};

use common::fixtures::{fixtures, read_json};
use common::parity::{fixture_request, pipeline_parity_within};
use tch::{Device, Kind, Tensor};
use texaug_stages::diffusion::img2img::StableDiffusion;
use texaug_stages::diffusion::lora::LoraSpec;
use texaug_stages::diffusion::model_dir::ModelSource;
use texaug_stages::diffusion::pipeline_source::ModelRef;

fn with_lora(path: PathBuf, scale: f64) -> ModelRef {
    with_lora_on("sd1-tiny", path, scale)
}

fn with_lora_on(model: &str, path: PathBuf, scale: f64) -> ModelRef {
    ModelRef {
        loras: vec![LoraSpec { path, scale }],
        ..ModelRef::from(ModelSource::Dir(fixtures().join("models").join(model)))
    }
}

fn lora_parity(name: &str) {
    lora_parity_on("sd1-tiny", name, 2, 0.25);
}

/// `model`'s img2img cases with LoRA `name` (`outputs/<model>-lora/<name>/`), within `max` / `mean` on uint8.
fn lora_parity_on(model: &str, name: &str, max: i32, mean: f64) {
    let cases_dir = format!("{model}-lora");
    let cases = read_json(
        &fixtures()
            .join("outputs")
            .join(&cases_dir)
            .join(name)
            .join("cases.json"),
    );
    let scale = cases["lora_scale"].as_f64().expect("lora_scale");
    let with = with_lora_on(
        model,
        fixtures().join(cases["lora"].as_str().expect("lora")),
        scale,
    );
    let load = |kind| {
        StableDiffusion::load_ref(&with, Device::Cpu, Kind::Float, Some(kind))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    pipeline_parity_within(&cases_dir, name, &load, max, mean);
}

/// An SDXL LoRA as kohya's SDXL trainers write it: the UNet named after SGM's blocks (`input_blocks_4_1_…`),
/// both text towers (`lora_te1_`, `lora_te2_`), alpha.
#[test]
fn sdxl_kohya_lora_with_sgm_names_gives_diffusers_images() {
    lora_parity_on("sdxl-tiny", "kohya_sgm", 1, 0.01);
}

/// An SDXL LoRA in diffusers/PEFT keys, on the UNet and `text_encoder_2`.
#[test]
fn sdxl_peft_lora_on_the_second_tower_gives_diffusers_images() {
    lora_parity_on("sdxl-tiny", "peft", 1, 0.01);
}

/// A stage's SDXL LoRA switched in on the loaded pipeline equals it loaded with the model, on both towers, and
/// switched out gives the plain model back exactly.
#[test]
fn switching_an_sdxl_lora_is_exact() {
    let req = fixture_request("a mug", 4, 0.6, 2);
    let image =
        |sd: &StableDiffusion| sd.img2img(std::slice::from_ref(&req)).expect("img2img")[0].clone();
    let plain_ref = ModelRef::from(ModelSource::Dir(fixtures().join("models/sdxl-tiny")));
    let kohya = LoraSpec {
        path: fixtures().join("loras/sdxl-tiny-kohya_sgm.safetensors"),
        scale: 0.8,
    };
    let mut sd =
        StableDiffusion::load_ref(&plain_ref, Device::Cpu, Kind::Float, None).expect("load");
    let plain = image(&sd);
    sd.use_adapters(std::slice::from_ref(&kohya))
        .expect("kohya");
    let switched = image(&sd);
    let loaded = StableDiffusion::load_ref(
        &with_lora_on("sdxl-tiny", kohya.path.clone(), 0.8),
        Device::Cpu,
        Kind::Float,
        None,
    )
    .expect("load with");
    assert_ne!(
        switched.as_raw(),
        plain.as_raw(),
        "the LoRA changes the image"
    );
    assert_eq!(switched.as_raw(), image(&loaded).as_raw());
    sd.use_adapters(&[]).expect("none");
    assert_eq!(image(&sd).as_raw(), plain.as_raw(), "switched out exactly");
}

#[test]
fn kohya_lora_with_alpha_and_locon_gives_diffusers_images() {
    lora_parity("kohya_alpha");
}

#[test]
fn kohya_lora_without_alpha_gives_diffusers_images() {
    lora_parity("kohya_no_alpha");
}

#[test]
fn peft_lora_gives_diffusers_images() {
    lora_parity("peft");
}

fn write(path: &Path, tensors: &[(&str, Tensor)]) {
    Tensor::write_safetensors(tensors, path).expect("write");
}

fn load_err(path: PathBuf) -> String {
    StableDiffusion::load_ref(&with_lora(path, 1.0), Device::Cpu, Kind::Float, None)
        .err()
        .expect("an error")
        .to_string()
}

#[test]
fn a_lora_that_does_not_fit_says_where_and_why() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let z = |s: &[i64]| Tensor::zeros(s, (Kind::Float, Device::Cpu));
    // A layer this model does not have.
    let p = tmp.path().join("other-model.safetensors");
    write(
        &p,
        &[
            (
                "lora_unet_down_blocks_7_attentions_0_proj_in.lora_down.weight",
                z(&[4, 32]),
            ),
            (
                "lora_unet_down_blocks_7_attentions_0_proj_in.lora_up.weight",
                z(&[32, 4]),
            ),
        ],
    );
    let err = load_err(p);
    assert!(
        err.contains("other-model.safetensors")
            && err.contains("lora_unet_down_blocks_7_attentions_0_proj_in")
            && err.contains("kohya"),
        "{err}"
    );
    // A layer of the right name and the wrong width (SD 2's text on SD 1).
    let p = tmp.path().join("wide.safetensors");
    let layer = "lora_te_text_model_encoder_layers_0_self_attn_q_proj";
    write(
        &p,
        &[
            (&format!("{layer}.lora_down.weight"), z(&[4, 1024])),
            (&format!("{layer}.lora_up.weight"), z(&[1024, 4])),
        ],
    );
    let err = load_err(p);
    assert!(
        err.contains("[4, 1024]") && err.contains("[1024, 4]") && err.contains("[32, 32]"),
        "{err}"
    );
    // LoHa tensors are not a plain LoRA.
    let p = tmp.path().join("loha.safetensors");
    let layer = "lora_unet_mid_block_attentions_0_proj_in";
    write(
        &p,
        &[
            (&format!("{layer}.lora_down.weight"), z(&[4, 32])),
            (&format!("{layer}.lora_up.weight"), z(&[32, 4])),
            (&format!("{layer}.hada_w1_a"), z(&[4, 4])),
        ],
    );
    let err = load_err(p);
    assert!(err.contains("hada_w1_a") && err.contains("LoHa"), "{err}");
    // Not a LoRA at all.
    let p = tmp.path().join("model.safetensors");
    write(&p, &[("conv_in.weight", z(&[2, 2]))]);
    let err = load_err(p);
    assert!(
        err.contains("holds no LoRA layers") && err.contains("conv_in.weight"),
        "{err}"
    );
}

/// The scale is diffusers' `lora_scale`: at 0 the LoRA changes nothing; at its scale it changes the image.
#[test]
fn the_scale_weighs_the_lora() {
    let req = fixture_request("a mug", 4, 0.6, 1);
    let run = |model: &ModelRef| {
        StableDiffusion::load_ref(model, Device::Cpu, Kind::Float, None)
            .expect("load")
            .img2img(std::slice::from_ref(&req))
            .expect("img2img")[0]
            .clone()
    };
    let path = fixtures().join("loras/sd1-tiny-kohya_alpha.safetensors");
    let plain = run(&ModelRef::from(ModelSource::Dir(
        fixtures().join("models/sd1-tiny"),
    )));
    assert_eq!(run(&with_lora(path.clone(), 0.0)).as_raw(), plain.as_raw());
    assert_ne!(run(&with_lora(path, 0.8)).as_raw(), plain.as_raw());
}

/// A stage's LoRA set switched in and out on one loaded pipeline gives, bit for bit, what a pipeline loaded with
/// that LoRA gives, and back to the plain model's image when switched out.
#[test]
fn switching_lora_sets_is_exact() {
    let req = fixture_request("a mug", 4, 0.6, 2);
    let image =
        |sd: &StableDiffusion| sd.img2img(std::slice::from_ref(&req)).expect("img2img")[0].clone();
    let plain_ref = ModelRef::from(ModelSource::Dir(fixtures().join("models/sd1-tiny")));
    let kohya = LoraSpec {
        path: fixtures().join("loras/sd1-tiny-kohya_alpha.safetensors"),
        scale: 0.8,
    };
    let peft = LoraSpec {
        path: fixtures().join("loras/sd1-tiny-peft.safetensors"),
        scale: 0.7,
    };
    let loaded_with = |specs: Vec<LoraSpec>| {
        let model = ModelRef {
            loras: specs,
            ..plain_ref.clone()
        };
        image(&StableDiffusion::load_ref(&model, Device::Cpu, Kind::Float, None).expect("load"))
    };
    let mut sd =
        StableDiffusion::load_ref(&plain_ref, Device::Cpu, Kind::Float, None).expect("load");
    let plain = image(&sd);
    sd.use_adapters(std::slice::from_ref(&kohya))
        .expect("kohya");
    assert_eq!(
        image(&sd).as_raw(),
        loaded_with(vec![kohya.clone()]).as_raw()
    );
    sd.use_adapters(&[kohya.clone(), peft.clone()])
        .expect("both");
    assert_eq!(
        image(&sd).as_raw(),
        loaded_with(vec![kohya, peft.clone()]).as_raw()
    );
    sd.use_adapters(&[]).expect("none");
    assert_eq!(image(&sd).as_raw(), plain.as_raw(), "switched out exactly");
    sd.use_adapters(std::slice::from_ref(&peft)).expect("peft");
    assert_eq!(image(&sd).as_raw(), loaded_with(vec![peft]).as_raw());
}

#[test]
fn a_lora_saved_by_diffusers_with_its_adapter_config_gives_diffusers_images() {
    lora_parity("diffusers_saved");
}

/// A set that fails partway (its second LoRA does not fit) leaves the model as loaded, not half-merged.
#[test]
fn a_set_that_fails_to_merge_leaves_the_model_as_loaded() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let bad = tmp.path().join("wide.safetensors");
    let layer = "lora_te_text_model_encoder_layers_0_self_attn_q_proj";
    write(
        &bad,
        &[
            (
                &format!("{layer}.lora_down.weight"),
                Tensor::zeros([4, 1024], (Kind::Float, Device::Cpu)),
            ),
            (
                &format!("{layer}.lora_up.weight"),
                Tensor::zeros([1024, 4], (Kind::Float, Device::Cpu)),
            ),
        ],
    );
    let mut sd = StableDiffusion::load_ref(
        &ModelRef::from(ModelSource::Dir(fixtures().join("models/sd1-tiny"))),
        Device::Cpu,
        Kind::Float,
        None,
    )
    .expect("load");
    let before = sd.encode_prompts(&["a mug"]);
    let good = LoraSpec {
        path: fixtures().join("loras/sd1-tiny-kohya_alpha.safetensors"),
        scale: 1.0,
    };
    let err = sd
        .use_adapters(&[
            good,
            LoraSpec {
                path: bad,
                scale: 1.0,
            },
        ])
        .expect_err("the wide LoRA does not fit")
        .to_string();
    assert!(err.contains("wide.safetensors"), "{err}");
    assert!(
        sd.encode_prompts(&["a mug"]).equal(&before),
        "restored exactly"
    );
}
