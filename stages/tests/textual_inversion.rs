//! Textual-inversion embeddings give diffusers' images: a diffusers-format multi-vector embedding used in the
//! prompt and an A1111 one in the negative prompt, loaded by diffusers' `load_textual_inversion` for the fixture,
//! tokenize to diffusers' ids and run its img2img cases.

mod common;

use common::fixtures::{fixtures, read_json};
use common::parity::pipeline_parity;
use tch::{Device, Kind, Tensor};
use texaug_stages::diffusion::img2img::StableDiffusion;
use texaug_stages::diffusion::model_dir::ModelSource;
use texaug_stages::diffusion::pipeline_source::ModelRef;
use texaug_stages::diffusion::textual_inversion::EmbeddingSpec;

fn model_with(embeddings: Vec<EmbeddingSpec>) -> ModelRef {
    ModelRef {
        embeddings,
        ..ModelRef::from(ModelSource::Dir(fixtures().join("models/sd1-tiny")))
    }
}

fn fixture_embeddings() -> Vec<EmbeddingSpec> {
    let cases = read_json(&fixtures().join("outputs/sd1-tiny-ti/img2img/cases.json"));
    cases["embeddings"]
        .as_array()
        .expect("embeddings")
        .iter()
        .map(|e| EmbeddingSpec {
            path: fixtures().join(e["path"].as_str().expect("path")),
            token: e["token"].as_str().map(str::to_owned),
        })
        .collect()
}

#[test]
fn embeddings_give_diffusers_images() {
    let model = model_with(fixture_embeddings());
    pipeline_parity("sd1-tiny-ti", "img2img", &|kind| {
        StableDiffusion::load_ref(&model, Device::Cpu, Kind::Float, Some(kind))
            .unwrap_or_else(|e| panic!("{e}"))
    });
}

#[test]
fn the_tokens_get_diffusers_ids() {
    let cases = read_json(&fixtures().join("outputs/sd1-tiny-ti/img2img/cases.json"));
    let want: Vec<i64> = cases["prompt_ids"]
        .as_array()
        .expect("ids")
        .iter()
        .filter_map(|v| v.as_i64())
        .collect();
    let sd = StableDiffusion::load_ref(
        &model_with(fixture_embeddings()),
        Device::Cpu,
        Kind::Float,
        None,
    )
    .expect("load");
    let prompt = cases["cases"][0]["prompt"].as_str().expect("prompt");
    assert_eq!(sd.prompt_ids(prompt)[..want.len()], want[..]);
}

#[test]
fn an_embedding_that_does_not_fit_says_why() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, key: &str, shape: &[i64]| {
        let p = tmp.path().join(name);
        Tensor::write_safetensors(
            &[(key, Tensor::zeros(shape, (Kind::Float, Device::Cpu)))],
            &p,
        )
        .expect("write");
        p
    };
    let err = |spec: EmbeddingSpec| {
        StableDiffusion::load_ref(&model_with(vec![spec]), Device::Cpu, Kind::Float, None)
            .err()
            .expect("an error")
            .to_string()
    };
    let wide = write("sd2-style.safetensors", "<wide>", &[1, 1024]);
    let e = err(EmbeddingSpec {
        path: wide,
        token: None,
    });
    assert!(
        e.contains("1024") && e.contains("takes 32") && e.contains("sd2-style"),
        "{e}"
    );
    let a1111 = write("bad.safetensors", "emb_params", &[2, 32]);
    let e = err(EmbeddingSpec {
        path: a1111,
        token: None,
    });
    assert!(
        e.contains("names no token") && e.contains("token = "),
        "{e}"
    );
    let clash = write("clash.safetensors", "<|endoftext|>", &[32]);
    let e = err(EmbeddingSpec {
        path: clash,
        token: None,
    });
    assert!(e.contains("already in the tokenizer"), "{e}");
}
