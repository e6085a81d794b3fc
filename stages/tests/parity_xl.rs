//! SDXL against diffusers 0.36 / transformers: the tiny SDXL base, refiner and ControlNet-XL in
//! `tests/fixtures/models` (two text encoders of different widths, odd channel counts, a transformer depth per
//! block, no attention in the first down block) loaded as diffusers saved them. Every component output must match
//! `tests/fixtures/outputs/<model>/components.safetensors` to a relative L2 error of at most 1e-5 (float32, CPU),
//! and every img2img case its decoded PNG to ±1 on uint8 with a mean difference of at most 0.01.

mod common;

use common::fixtures::fixtures;
use common::networks::{
    check_within, get, load, load_clip_with, load_unet_at, load_vae, model_dir, outputs,
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

/// ddim, euler, euler_a, dpmpp2m_karras at guidance 7.5 and 1, a null negative (zeroed embeddings), a batch of
/// two prompts, original/target size and crop in the time ids, `denoising_start = 0.5`.
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
