//! Running diffusers' img2img / depth2img / ControlNet / inpainting fixture cases on a loaded pipeline and comparing the images.

use serde_json::Value;
use texaug_stages::diffusion::img2img::{DepthMap, Img2ImgRequest, StableDiffusion};
use texaug_stages::diffusion::request::XlConds;
use texaug_stages::diffusion::schedulers::SchedulerKind;

use super::fixtures::{fixtures, read_json, read_tensors};

/// A short img2img request on the fixtures' input picture (for tests comparing two loads of a model).
pub fn fixture_request(prompt: &str, steps: usize, strength: f64, seed: u64) -> Img2ImgRequest {
    let input = image::open(fixtures().join("outputs/sd1-tiny/img2img/input.png"))
        .expect("input")
        .to_rgb8();
    Img2ImgRequest {
        steps,
        strength,
        seed,
        ..Img2ImgRequest::new(input, prompt)
    }
}

pub fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// SDXL's micro-conditioning as a case passed it to diffusers (absent keys: diffusers' defaults).
fn xl_conds(case: &Value) -> XlConds {
    let pair = |k: &str| {
        case[k].as_array().and_then(|a| match a.as_slice() {
            [x, y] => Some((x.as_u64()? as u32, y.as_u64()? as u32)),
            _ => None,
        })
    };
    let d = XlConds::default();
    XlConds {
        original_size: pair("original_size"),
        crops_coords_top_left: pair("crops_coords_top_left").unwrap_or(d.crops_coords_top_left),
        target_size: pair("target_size"),
        aesthetic_score: case["aesthetic_score"]
            .as_f64()
            .unwrap_or(d.aesthetic_score),
        negative_aesthetic_score: case["negative_aesthetic_score"]
            .as_f64()
            .unwrap_or(d.negative_aesthetic_score),
    }
}

/// Every case of `model`'s `pipeline` fixtures (`tests/fixtures/outputs/<model>/<pipeline>/cases.json`) run on the
/// pipeline `load` gives for the case's scheduler: decoded uint8 within ±2 of diffusers' PNG, mean difference
/// ≤ 0.25.
pub fn pipeline_parity(
    model: &str,
    pipeline: &str,
    load: &dyn Fn(SchedulerKind) -> StableDiffusion,
) {
    pipeline_parity_within(model, pipeline, load, 2, 0.25);
}

/// As [`pipeline_parity`] with the tolerance given: the largest uint8 difference and the mean one.
pub fn pipeline_parity_within(
    model: &str,
    pipeline: &str,
    load: &dyn Fn(SchedulerKind) -> StableDiffusion,
    max_diff: i32,
    max_mean: f64,
) {
    let out_dir = fixtures().join("outputs").join(model).join(pipeline);
    let depth = (pipeline == "depth2img").then(|| {
        let t = &read_tensors(&out_dir.join("depth2img.safetensors"))["depth_map"];
        let (h, w) = (t.size()[1], t.size()[2]);
        DepthMap {
            width: w as u32,
            height: h as u32,
            values: Vec::try_from(t.flatten(0, -1)).expect("floats"),
        }
    });
    let spec = read_json(&out_dir.join("cases.json"));
    let input = image::open(out_dir.join("input.png"))
        .expect("input.png")
        .to_rgb8();
    let control = out_dir.join("control.png").is_file().then(|| {
        let scale = spec["cases"][0]["controlnet_conditioning_scale"]
            .as_f64()
            .expect("scale");
        (
            image::open(out_dir.join("control.png"))
                .expect("control.png")
                .to_rgb8(),
            scale,
        )
    });
    let mut report = Vec::new();
    let mut failures = Vec::new();
    for case in spec["cases"].as_array().expect("cases") {
        let name = case["name"].as_str().expect("name");
        let kind: SchedulerKind = case["scheduler"]
            .as_str()
            .expect("scheduler")
            .parse()
            .expect("kind");
        let sd = load(kind);
        let prompts = strings(&case["prompt"]);
        // `null` is diffusers' `negative_prompt=None`: texaug's empty negative prompt.
        let mut negatives = strings(&case["negative_prompt"]);
        if negatives.is_empty() {
            negatives.push(String::new());
        }
        let xl = xl_conds(case);
        let seeds: Vec<u64> = case["seeds"]
            .as_array()
            .expect("seeds")
            .iter()
            .filter_map(Value::as_u64)
            .collect();
        let requests: Vec<Img2ImgRequest> = seeds
            .iter()
            .enumerate()
            .map(|(i, &seed)| Img2ImgRequest {
                prompt: prompts[i.min(prompts.len() - 1)].clone(),
                negative_prompt: negatives[i.min(negatives.len() - 1)].clone(),
                strength: case["strength"].as_f64().expect("strength"),
                guidance: case["guidance_scale"].as_f64().expect("guidance"),
                steps: case["num_inference_steps"].as_u64().expect("steps") as usize,
                seed,
                xl,
                denoising_start: case["denoising_start"].as_f64(),
                ..Img2ImgRequest::new(input.clone(), "")
            })
            .collect();
        let masks: Vec<image::GrayImage> = strings(&case["mask_png"])
            .iter()
            .map(|m| image::open(out_dir.join(m)).expect("mask png").to_luma8())
            .collect();
        let images = match (&depth, &control) {
            _ if pipeline == "inpaint" => sd.inpaint(&requests, &masks),
            (Some(d), _) => sd.depth2img(&requests, &vec![d.clone(); requests.len()]),
            (_, Some((c, scale))) => {
                sd.controlnet_img2img(&requests, &vec![c.clone(); requests.len()], *scale)
            }
            _ => sd.img2img(&requests),
        }
        .unwrap_or_else(|e| panic!("{model} {name}: {e}"));
        for (i, png) in strings(&case["output_png"]).iter().enumerate() {
            let want = image::open(out_dir.join(png)).expect("png").to_rgb8();
            let (mut max, mut sum) = (0i32, 0f64);
            for (a, b) in images[i].as_raw().iter().zip(want.as_raw()) {
                let d = (i32::from(*a) - i32::from(*b)).abs();
                max = max.max(d);
                sum += f64::from(d);
            }
            let mean = sum / want.as_raw().len() as f64;
            report.push(format!("{model:9} {png:28} max {max}  mean {mean:.4}"));
            if max > max_diff || mean > max_mean {
                failures.push(format!("{model} {png}: max {max}, mean {mean:.4}"));
            }
        }
    }
    eprintln!(
        "{pipeline} parity (uint8 abs diff vs diffusers):\n{}",
        report.join("\n")
    );
    assert!(
        failures.is_empty(),
        "over tolerance:\n{}",
        failures.join("\n")
    );
}
