//! What the engine drives: a stage's CPU work before and after the device, and a model loaded on each device.
//! The engine knows these traits only; `stage_work` and `model::loading` implement them for real jobs, the tests
//! with fakes.

use image::RgbImage;
use texaug_stages::diffusion::request::Img2ImgRequest;
use texaug_stages::job::WrittenSample;

use crate::config::devices::DeviceSpec;
use crate::plan::Job;

/// A job made ready for the device: its requests, and what `finish` needs to turn the outputs into files.
pub struct Prepared<S> {
    pub requests: Vec<Img2ImgRequest>,
    pub state: S,
    /// The requests run apart from other jobs' (the views of a mesh), `batch` at a time.
    pub one_batch: bool,
    /// The memory the job holds until its finish (pixels, rasters, mesh buffers): the run bounds its queues by it.
    pub bytes: u64,
}

/// The CPU work of a stage, before and after the device.
pub trait StageWork: Sync {
    /// What a prepared job carries to its finish.
    type State: Send;
    fn prepare(&self, job: &Job) -> Result<Prepared<Self::State>, String>;
    /// Writes the sample's files from the model's outputs (one per request, in order).
    fn finish(
        &self,
        job: &Job,
        state: Self::State,
        outputs: Vec<RgbImage>,
    ) -> Result<WrittenSample, String>;
}

/// A model loaded on one device.
pub trait DeviceModel {
    /// Runs one batch; its requests share a [`batch_key`](texaug_stages::diffusion::request::batch_key).
    fn run(&mut self, requests: &[Img2ImgRequest]) -> Result<Vec<RgbImage>, String>;
}

/// Loads the model once per device, on that device's worker thread.
pub trait ModelLoader: Sync {
    fn load(&self, device: DeviceSpec) -> anyhow::Result<Box<dyn DeviceModel>>;
}

/// What the device workers report as they go (progress bars, JSON events).
pub trait PoolEvents: Sync {
    fn device_ready(&self, device: &str, load_seconds: f64);
    fn device_progress(&self, device_index: usize, samples: u64);
}
