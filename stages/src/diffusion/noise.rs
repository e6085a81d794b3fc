//! Job noise drawn exactly as diffusers draws it with `torch.Generator("cpu").manual_seed(seed)`: the VAE
//! posterior sample's eps, then the img2img noise, then one tensor per ancestral step, in that order (inpainting
//! draws one more, see [`draw_inpaint_noise`]).
//!
//! tch exposes only libtorch's global generator. Seeding it and drawing everything a job needs happens in
//! one locked section, on the CPU in float32, so concurrent workers cannot interleave their draws; the
//! tensors then move to the job's device. The global CPU generator with `manual_seed(s)` produces the same
//! stream as a fresh `torch.Generator("cpu").manual_seed(s)`.
//!
//! The lock only helps if every user of the global generator takes it: anything that draws random numbers
//! while jobs may run (building modules with random init, e.g. `VarStore` + `nn::linear` before loading
//! weights) must do so inside [`with_rng_lock`] or [`seeded`].

use std::sync::Mutex;

use tch::{Device, Kind, Tensor};

static GLOBAL_RNG: Mutex<()> = Mutex::new(());

/// Everything random one img2img job uses, each `[1, c, h, w]` on the CPU in float32.
#[derive(Debug)]
pub struct JobNoise {
    /// eps of `latent_dist.sample(generator)`.
    pub vae_eps: Tensor,
    /// The noise `add_noise` mixes into the encoded image.
    pub latent_noise: Tensor,
    /// One draw per denoising step, for ancestral schedulers (empty otherwise).
    pub step_noise: Vec<Tensor>,
}

/// Draws `shapes` in order from the generator seeded with `seed` (a `u64`, as torch takes it).
pub fn draw(seed: u64, shapes: &[&[i64]]) -> Vec<Tensor> {
    // A poisoned lock only means another thread panicked mid-draw; the generator is reseeded anyway.
    let _guard = GLOBAL_RNG.lock().unwrap_or_else(|p| p.into_inner());
    // libtorch takes the seed as uint64; the cast keeps all 64 bits.
    tch::manual_seed(seed as i64);
    shapes
        .iter()
        .map(|s| Tensor::randn(*s, (Kind::Float, Device::Cpu)))
        .collect()
}

/// Runs `f` holding the generator lock without reseeding (for code that consumes random numbers whose
/// values do not matter, such as initializing modules whose weights are loaded right after).
pub fn with_rng_lock<T>(f: impl FnOnce() -> T) -> T {
    let _guard = GLOBAL_RNG.lock().unwrap_or_else(|p| p.into_inner());
    f()
}

/// Runs `f` with the global generator seeded to `seed`, holding the lock (e.g. to initialize a model's
/// random weights reproducibly without racing a job's noise draws).
pub fn seeded<T>(seed: u64, f: impl FnOnce() -> T) -> T {
    let _guard = GLOBAL_RNG.lock().unwrap_or_else(|p| p.into_inner());
    tch::manual_seed(seed as i64);
    f()
}

/// A job's noise for latents of `[c, h, w]` with `step_draws` ancestral steps.
pub fn draw_job_noise(seed: u64, latent: [i64; 3], step_draws: usize) -> JobNoise {
    draw_noise(seed, latent, step_draws, true)
}

/// A job's noise when it starts from the image's latents un-noised (SDXL's `denoising_start`): diffusers then
/// draws no img2img noise, so the step draws follow the posterior eps directly (`latent_noise` is zeros, unused).
pub fn draw_refine_noise(seed: u64, latent: [i64; 3], step_draws: usize) -> JobNoise {
    draw_noise(seed, latent, step_draws, false)
}

/// The posterior eps, the img2img latent noise when `with_latent_noise` (else zeros, not drawn), then the step
/// draws, in that order from `seed`.
fn draw_noise(seed: u64, latent: [i64; 3], step_draws: usize, with_latent_noise: bool) -> JobNoise {
    let shape = [1, latent[0], latent[1], latent[2]];
    let count = 1 + usize::from(with_latent_noise) + step_draws;
    let shapes: Vec<&[i64]> = std::iter::repeat_n(&shape[..], count).collect();
    let mut all = draw(seed, &shapes).into_iter();
    let zeros = || Tensor::zeros(shape, (Kind::Float, Device::Cpu));
    let vae_eps = all.next().unwrap_or_else(zeros);
    let latent_noise = if with_latent_noise {
        all.next().unwrap_or_else(zeros)
    } else {
        zeros()
    };
    JobNoise {
        vae_eps,
        latent_noise,
        step_noise: all.collect(),
    }
}

/// An inpainting job's noise, in diffusers' `StableDiffusionInpaintPipeline` order: the image's posterior eps (drawn
/// only when the image is encoded: a 4-channel model, or strength below 1; zeros otherwise), the latent noise, the
/// masked image's posterior eps, then one tensor per ancestral step. Returns the job's noise and the masked eps.
pub fn draw_inpaint_noise(
    seed: u64,
    latent: [i64; 3],
    encode_image: bool,
    step_draws: usize,
) -> (JobNoise, Tensor) {
    let shape = [1, latent[0], latent[1], latent[2]];
    let count = usize::from(encode_image) + 2 + step_draws;
    let shapes: Vec<&[i64]> = std::iter::repeat_n(&shape[..], count).collect();
    let mut all = draw(seed, &shapes).into_iter();
    let zeros = || Tensor::zeros(shape, (Kind::Float, Device::Cpu));
    let vae_eps = if encode_image {
        all.next().unwrap_or_else(zeros)
    } else {
        zeros()
    };
    let latent_noise = all.next().unwrap_or_else(zeros);
    let masked_eps = all.next().unwrap_or_else(zeros);
    let job = JobNoise {
        vae_eps,
        latent_noise,
        step_noise: all.collect(),
    };
    (job, masked_eps)
}

/// Stacks the jobs' noise of one batch: `(vae_eps, latent_noise, per-step noise)`, each `[b, c, h, w]` on
/// `device`. `step_noise[i]` is the batch's noise for step i.
pub fn stack_batch(jobs: &[JobNoise], device: Device) -> (Tensor, Tensor, Vec<Tensor>) {
    let cat = |ts: Vec<&Tensor>| Tensor::cat(&ts, 0).to_device(device);
    let vae = cat(jobs.iter().map(|j| &j.vae_eps).collect());
    let lat = cat(jobs.iter().map(|j| &j.latent_noise).collect());
    let steps = jobs.iter().map(|j| j.step_noise.len()).min().unwrap_or(0);
    let per_step = (0..steps)
        .map(|i| cat(jobs.iter().map(|j| &j.step_noise[i]).collect()))
        .collect();
    (vae, lat, per_step)
}
