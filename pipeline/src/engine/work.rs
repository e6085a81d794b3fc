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

/// What a device worker has done since its model was ready, reported after each unit.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DeviceTally {
    /// Samples (jobs) whose device work is done.
    pub samples: u64,
    /// Images the model made (a mesh job makes one per view).
    pub images: u64,
    /// Seconds inside the model's calls.
    pub model_s: f64,
    /// Seconds since the model was ready.
    pub wall_s: f64,
}

impl DeviceTally {
    /// Images per second of model time.
    pub fn images_per_s(&self) -> f64 {
        if self.model_s > 0.0 {
            self.images as f64 / self.model_s
        } else {
            0.0
        }
    }

    /// The share of its wall time the device spent in the model (the rest it waited for work).
    pub fn busy(&self) -> f64 {
        if self.wall_s > 0.0 {
            (self.model_s / self.wall_s).min(1.0)
        } else {
            0.0
        }
    }
}

/// What the device workers report as they go (progress bars, JSON events).
pub trait PoolEvents: Sync {
    fn device_ready(&self, device: &str, load_seconds: f64);
    /// `added` samples are through the device `device_index`; `tally` is its total so far.
    fn device_progress(&self, device_index: usize, added: u64, tally: &DeviceTally);
}

#[cfg(test)]
mod tests {
    use super::DeviceTally;

    #[test]
    fn a_device_tally_gives_throughput_and_busy_share() {
        let t = DeviceTally {
            samples: 4,
            images: 10,
            model_s: 2.0,
            wall_s: 8.0,
        };
        assert_eq!(t.images_per_s(), 5.0);
        assert_eq!(t.busy(), 0.25);
        assert_eq!(DeviceTally::default().images_per_s(), 0.0);
        assert_eq!(DeviceTally::default().busy(), 0.0);
    }
}
