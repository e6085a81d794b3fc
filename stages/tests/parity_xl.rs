//! SDXL against diffusers 0.36 / transformers: the tiny SDXL base, refiner and ControlNet-XL in
//! `tests/fixtures/models` (two text encoders of different widths, odd channel counts, a transformer depth per
//! block, no attention in the first down block) loaded as diffusers saved them. Every component output must match
//! `tests/fixtures/outputs/<model>/components.safetensors` to a relative L2 error of at most 1e-5 (float32, CPU),
//! and every img2img case its decoded PNG to ±1 on uint8 with a mean difference of at most 0.01.

mod common;

use common::fixtures::fixtures;
use common::networks::{
    check_within, get, load, load_clip_with, load_unet_at, load_vae, model_dir, outputs, rel_l2,
    with_rng_lock,
};
use common::parity;
use tch::{nn::Module, Device, Kind, Tensor};
use texaug_stages::diffusion::controlnet::{ControlNetConfig, ControlNetModel};
use texaug_stages::diffusion::img2img::StableDiffusion;
use texaug_stages::diffusion::model_dir::ModelSource;
use texaug_stages::diffusion::text_time::AddedCond;
use texaug_stages::diffusion::unet::ControlResiduals;

const TOLERANCE: f64 = 1e-5;

fn check(what: &str, got: &Tensor, want: &Tensor) {
    check_within(what, got, want, TOLERANCE);
}

type Outputs = std::collections::HashMap<String, Tensor>;

fn added(t: &Outputs) -> AddedCond {
    AddedCond {
        text_embeds: get(t, "unet.text_embeds").shallow_clone(),
        time_ids: get(t, "unet.time_ids").shallow_clone(),
    }
}

/// The penultimate hidden states of the CLIP ViT-L tower (`text_encoder`), SDXL base only.
fn text_encoder_1(t: &Outputs, model: &str) -> Tensor {
    let (_vs, clip, _) = load_clip_with(&model_dir(model, "text_encoder"), false);
    let (penultimate, _) =
        tch::no_grad(|| clip.forward_penultimate(get(t, "text_encoder.input_ids")));
    check(
        &format!("{model} text_encoder.hidden_states_penultimate"),
        &penultimate,
        get(t, "text_encoder.hidden_states_penultimate"),
    );
    penultimate
}

/// The OpenCLIP bigG tower (`text_encoder_2`): penultimate states and the projected pooled output.
fn text_encoder_2(t: &Outputs, model: &str) -> (Tensor, Tensor) {
    let (_vs, clip, proj) = load_clip_with(&model_dir(model, "text_encoder_2"), true);
    let ids = get(t, "text_encoder_2.input_ids");
    let (penultimate, pooled) = tch::no_grad(|| clip.forward_penultimate(ids));
    check(
        &format!("{model} text_encoder_2.hidden_states_penultimate"),
        &penultimate,
        get(t, "text_encoder_2.hidden_states_penultimate"),
    );
    let text_embeds = tch::no_grad(|| proj.expect("projection").forward(&pooled));
    check(
        &format!("{model} text_encoder_2.text_embeds"),
        &text_embeds,
        get(t, "text_encoder_2.text_embeds"),
    );
    if let Some(want) = t.get("text_encoder_2.last_hidden_state") {
        check(
            &format!("{model} text_encoder_2.last_hidden_state"),
            &tch::no_grad(|| clip.forward(ids)),
            want,
        );
    }
    (penultimate, text_embeds)
}

/// The text_time UNet: the summed time embedding, and the output at two timesteps and with the real text
/// (`text_states` into cross-attention, the second tower's `text_embeds` into the added embedding).
fn unet(t: &Outputs, model: &str, text_states: &Tensor, text_embeds: &Tensor) {
    let (_vs, unet) = load_unet_at(&model_dir(model, "unet"));
    let sample = get(t, "unet.sample");
    let states = get(t, "unet.encoder_hidden_states");
    let added = added(t);
    tch::no_grad(|| {
        let tt = unet
            .text_time_dims()
            .expect("an SDXL UNet has a text_time embedding");
        assert_eq!(
            tt.1,
            get(t, "unet.add_embeds").size()[1],
            "add_embedding width"
        );
        check(
            &format!("{model} unet.time_emb_t500"),
            &unet.time_embedding(sample, get(t, "unet.timestep_500"), None),
            get(t, "unet.time_emb_t500"),
        );
        for (ts, emb, out) in [
            ("unet.timestep_500", "unet.emb_t500", "unet.out_t500"),
            ("unet.timestep_37", "unet.emb_t37", "unet.out_t37"),
        ] {
            check(
                &format!("{model} {emb}"),
                &unet.time_embedding(sample, get(t, ts), Some(&added)),
                get(t, emb),
            );
            let got = unet.forward_t(sample, get(t, ts), states, Some(&added), None);
            check(&format!("{model} {out}"), &got, get(t, out));
        }
        let real = AddedCond {
            text_embeds: text_embeds.shallow_clone(),
            time_ids: get(t, "unet.time_ids").shallow_clone(),
        };
        let got = unet.forward_t(
            sample,
            get(t, "unet.timestep_500"),
            text_states,
            Some(&real),
            None,
        );
        check(
            &format!("{model} unet.out_t500_text"),
            &got,
            get(t, "unet.out_t500_text"),
        );
        // an SDXL UNet without its added conditioning is a shape error, not a wrong image
        assert!(
            unet.check_inputs(sample, get(t, "unet.timestep_500"), states, None, None)
                .is_err(),
            "{model}: a text_time UNet must refuse to run without text_embeds/time_ids"
        );
    });
}

#[test]
fn sdxl_base_components_match_diffusers() {
    let model = "sdxl-tiny";
    let t = outputs(model);
    let one = text_encoder_1(&t, model);
    let (two, text_embeds) = text_encoder_2(&t, model);
    unet(&t, model, &Tensor::cat(&[one, two], -1), &text_embeds);
    let (_vs, vae) = load_vae(&model_dir(model, "vae"));
    tch::no_grad(|| {
        let post = vae.encode(get(&t, "vae.encode.image"));
        check(
            "sdxl-tiny vae.encode.mean",
            &post.mean,
            get(&t, "vae.encode.mean"),
        );
        check(
            "sdxl-tiny vae.encode.logvar",
            &post.logvar,
            get(&t, "vae.encode.logvar"),
        );
        check(
            "sdxl-tiny vae.decode.image",
            &vae.decode(get(&t, "vae.decode.latent")),
            get(&t, "vae.decode.image"),
        );
    });
}

#[test]
fn sdxl_refiner_components_match_diffusers() {
    let model = "sdxl-refiner-tiny";
    let t = outputs(model);
    assert!(
        !model_dir(model, "text_encoder").exists(),
        "the refiner has text_encoder_2 alone"
    );
    let (two, text_embeds) = text_encoder_2(&t, model);
    assert_eq!(get(&t, "unet.time_ids").size()[1], 5, "aesthetic-score ids");
    unet(&t, model, &two, &text_embeds);
}

#[test]
fn sdxl_controlnet_residuals_match_diffusers() {
    let t = outputs("sdxl-tiny");
    let dir = fixtures().join("models/controlnet-xl-tiny");
    let cfg = ControlNetConfig::from_file(&dir.join("config.json")).unwrap();
    let mut vs = tch::nn::VarStore::new(Device::Cpu);
    let cn = with_rng_lock(|| ControlNetModel::new(vs.root(), &cfg)).unwrap();
    load(&mut vs, dir.join("diffusion_pytorch_model.safetensors"));
    let (_uvs, unet) = load_unet_at(&model_dir("sdxl-tiny", "unet"));
    cn.check_compatible(&unet).unwrap();
    let sample = get(&t, "unet.sample");
    let states = get(&t, "unet.encoder_hidden_states");
    let ts = get(&t, "controlnet.timestep");
    let scale = get(&t, "controlnet.conditioning_scale").double_value(&[]);
    let added = added(&t);
    tch::no_grad(|| {
        let r = cn.forward(
            sample,
            ts,
            states,
            get(&t, "controlnet.cond"),
            Some(&added),
            scale,
        );
        assert_eq!(r.down.len(), 6);
        for (i, d) in r.down.iter().enumerate() {
            let key = format!("controlnet.down_{i}");
            check(&key, d, get(&t, &key));
        }
        check("controlnet.mid", &r.mid, get(&t, "controlnet.mid"));
        let recorded = ControlResiduals {
            down: (0..6)
                .map(|i| get(&t, &format!("controlnet.down_{i}")).shallow_clone())
                .collect(),
            mid: get(&t, "controlnet.mid").shallow_clone(),
        };
        for (what, residuals) in [("ours", &r), ("recorded", &recorded)] {
            check(
                &format!("unet.out_with_control ({what} residuals)"),
                &unet.forward_t(sample, ts, states, Some(&added), Some(residuals)),
                get(&t, "unet.out_with_control"),
            );
        }
    });
}

fn xl_pipeline_parity(model: &str) {
    let base = if model == "controlnet-xl-tiny" {
        "sdxl-tiny"
    } else {
        model
    };
    let source = ModelSource::Dir(fixtures().join("models").join(base));
    parity::pipeline_parity_within(
        model,
        "img2img",
        &|kind| {
            let mut sd = StableDiffusion::load(&source, Device::Cpu, Kind::Float, Some(kind))
                .unwrap_or_else(|e| panic!("{model}: {e}"));
            assert!(sd.xl().is_some(), "{base} must load as SDXL");
            if model == "controlnet-xl-tiny" {
                sd.attach_controlnet(&fixtures().join("models/controlnet-xl-tiny"))
                    .expect("controlnet");
            }
            sd
        },
        1,
        0.01,
    );
}

/// Every scheduler (ddim, euler, euler_a, dpmpp2m, dpmpp2m_karras, pndm) at guidance 7.5, two at 1, a null
/// negative (zeroed embeddings), a batch of two prompts, original/target size and crop in the time ids,
/// `denoising_start = 0.5`.
#[test]
fn sdxl_img2img_matches_diffusers() {
    xl_pipeline_parity("sdxl-tiny");
}

/// Five time ids with the aesthetic scores, text_encoder_2 alone.
#[test]
fn sdxl_refiner_img2img_matches_diffusers() {
    xl_pipeline_parity("sdxl-refiner-tiny");
}

/// `StableDiffusionXLControlNetImg2ImgPipeline` with a depth control image, for ddim, euler_a, dpmpp2m_karras.
#[test]
fn sdxl_controlnet_img2img_matches_diffusers() {
    xl_pipeline_parity("controlnet-xl-tiny");
}

/// Full size (`make fullsize-check`): SDXL base's UNet (2.6 B parameters, published config) and OpenCLIP bigG with
/// its projection, seeded random weights, against diffusers/transformers; then the same UNet weights under
/// texaug's built-in SDXL config (what a single file loads with), which must give the same output.
#[test]
#[ignore = "needs TEXAUG_FULLSIZE_DIR with the full-size reference models (ci/reference/fullsize.py --only sdxl)"]
fn fullsize_sdxl_unet_and_bigg() {
    use texaug_stages::diffusion::pipeline_source::ConfigSet;
    use texaug_stages::diffusion::single_file::CheckpointKind;
    use texaug_stages::diffusion::unet::UNet2DConditionModel;
    use texaug_stages::diffusion::unet_config::UNet2DConditionConfig;
    use texaug_stages::diffusion::weights::{find_weights, load_into};
    let root = std::path::PathBuf::from(
        std::env::var_os("TEXAUG_FULLSIZE_DIR")
            .expect("set TEXAUG_FULLSIZE_DIR to the output folder of ci/reference/fullsize.py"),
    );
    let dir = root.join("sdxl");
    let t = common::fixtures::read_tensors(&dir.join("reference.safetensors"));
    let full = |what: &str, got: &Tensor, want: &Tensor| check_within(what, got, want, 1e-4);
    tch::no_grad(|| {
        {
            let (_vs, clip, proj) = load_clip_with(&dir.join("text_encoder_2"), true);
            let (penultimate, pooled) =
                clip.forward_penultimate(get(&t, "text_encoder_2.input_ids"));
            let text_embeds = proj.expect("projection").forward(&pooled);
            // Against the float64 run: texaug's float32 error must be of the size of transformers' own float32
            // error (the random 32-layer tower amplifies rounding to ~1e-3; a wrong weight would be O(1)).
            for (what, got) in [
                ("hidden_states_penultimate", &penultimate),
                ("text_embeds", &text_embeds),
            ] {
                let exact = get(&t, &format!("text_encoder_2.{what}.f64"));
                let theirs = rel_l2(get(&t, &format!("text_encoder_2.{what}")), exact);
                let ours = rel_l2(got, exact);
                eprintln!(
                    "sdxl bigG {what}: relative L2 vs float64 {ours:.3e} (transformers' float32: {theirs:.3e})"
                );
                assert!(
                    ours <= 2.0 * theirs + 1e-6,
                    "bigG {what}: {ours:.3e} vs {theirs:.3e}"
                );
            }
        }
        let added = AddedCond {
            text_embeds: get(&t, "unet.text_embeds").shallow_clone(),
            time_ids: get(&t, "unet.time_ids").shallow_clone(),
        };
        // The UNet is 10 GB: diffusers saves it in two shards, which the loader reads through their index.
        let files =
            find_weights(&dir.join("unet"), "diffusion_pytorch_model", None).expect("unet weights");
        let run = |what: &str, cfg: &UNet2DConditionConfig| {
            let t0 = std::time::Instant::now();
            let vs = tch::nn::VarStore::new(Device::Cpu);
            let unet = with_rng_lock(|| UNet2DConditionModel::new(vs.root(), cfg)).unwrap();
            load_into(&vs, &files).expect("load the UNet");
            let out = unet.forward_t(
                get(&t, "unet.sample"),
                get(&t, "unet.timestep"),
                get(&t, "unet.encoder_hidden_states"),
                Some(&added),
                None,
            );
            eprintln!(
                "sdxl unet ({what}): loaded and run in {:.1} s",
                t0.elapsed().as_secs_f64()
            );
            full(&format!("sdxl unet ({what})"), &out, get(&t, "unet.out"));
        };
        let published = UNet2DConditionConfig::from_file(&dir.join("unet/config.json"))
            .expect("the published SDXL config parses");
        run("published config", &published);
        let builtin = ConfigSet::Builtin {
            kind: CheckpointKind::Sdxl,
            checkpoint: "sdxl.safetensors".into(),
        }
        .unet()
        .expect("built-in SDXL config");
        run("texaug's built-in config", &builtin);
    });
}

/// The SDXL pipeline in float16 and bfloat16 (the UNet and text towers cast, the `force_upcast` VAE kept in
/// float32 as diffusers keeps it) stays near diffusers' float32 image.
#[test]
fn sdxl_in_half_precision_stays_near_float32() {
    let dir = fixtures().join("outputs/sdxl-tiny/img2img");
    let want = image::open(dir.join("euler_a_g7p5.png"))
        .expect("png")
        .to_rgb8();
    let cases = common::fixtures::read_json(&dir.join("cases.json"));
    let case = &cases["cases"][2];
    assert_eq!(case["name"], "euler_a_g7p5");
    let input = image::open(dir.join("input.png")).expect("input").to_rgb8();
    let req = texaug_stages::diffusion::img2img::Img2ImgRequest {
        negative_prompt: case["negative_prompt"].as_str().expect("negative").into(),
        strength: case["strength"].as_f64().expect("strength"),
        guidance: case["guidance_scale"].as_f64().expect("guidance"),
        steps: case["num_inference_steps"].as_u64().expect("steps") as usize,
        seed: case["seeds"][0].as_u64().expect("seed"),
        ..texaug_stages::diffusion::img2img::Img2ImgRequest::new(
            input,
            case["prompt"].as_str().expect("prompt"),
        )
    };
    let source = ModelSource::Dir(fixtures().join("models/sdxl-tiny"));
    for kind in [Kind::Half, Kind::BFloat16] {
        let sd = StableDiffusion::load(
            &source,
            Device::Cpu,
            kind,
            Some("euler_a".parse().expect("kind")),
        )
        .expect("load");
        let got = sd.img2img(std::slice::from_ref(&req)).expect("img2img");
        let diffs: Vec<f64> = got[0]
            .as_raw()
            .iter()
            .zip(want.as_raw())
            .map(|(a, b)| (f64::from(*a) - f64::from(*b)).abs())
            .collect();
        let mean = diffs.iter().sum::<f64>() / diffs.len() as f64;
        eprintln!("sdxl-tiny euler_a {kind:?}: mean |diff| {mean:.3} vs diffusers float32");
        assert!(mean < 3.0, "{kind:?}: mean difference {mean}");
    }
}
