//! The cameras of a render: azimuths spread evenly over the stage's range and jittered, elevation and field of
//! view drawn from theirs, every camera aimed at the bounding box's center from the distance at which the
//! bounding sphere spans `fill` of the frame (so the object has one scale in every view, whatever its pose).
//! Every draw comes from the view's own seed: a view is the same whichever other views are made.

use serde::Serialize;

use crate::depth::Camera;
use crate::random::SplitMix64;

use super::settings::RenderSettings;

/// One rendered view's camera, and the pose a manifest row records.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RenderCamera {
    #[serde(skip)]
    pub camera: Camera,
    pub azimuth_deg: f32,
    pub elevation_deg: f32,
    pub fov_y_deg: f32,
    /// From the eye to the target.
    pub distance: f32,
    pub eye: [f32; 3],
    pub target: [f32; 3],
    pub up: [f32; 3],
}

impl RenderCamera {
    /// The pose as the manifest records it: JSON with the world-to-camera matrix (row-major, OpenCV axes: x right,
    /// y down, z forward) and the pinhole intrinsics in pixels of the output image.
    pub fn pose_json(&self) -> String {
        let c = &self.camera;
        let (r, u, f, e) = (c.right(), c.up(), c.forward(), c.eye());
        let down = [-u[0], -u[1], -u[2]];
        let row = |a: [f32; 3]| [a[0], a[1], a[2], -(a[0] * e[0] + a[1] * e[1] + a[2] * e[2])];
        let m = [row(r), row(down), row(f), [0.0, 0.0, 0.0, 1.0]];
        let (w, h) = (c.width() as f32, c.height() as f32);
        let value = serde_json::json!({
            "azimuth_deg": self.azimuth_deg,
            "elevation_deg": self.elevation_deg,
            "fov_y_deg": self.fov_y_deg,
            "distance": self.distance,
            "eye": self.eye,
            "target": self.target,
            "up": self.up,
            "world_to_camera": m,
            "intrinsics": {"fx": c.focal_px(), "fy": c.focal_px(), "cx": w * 0.5, "cy": h * 0.5,
                           "width": c.width(), "height": c.height()},
        });
        value.to_string()
    }
}

/// The seed of view `index` of a render whose seed is `seed`.
pub fn view_seed(seed: u64, index: u32) -> u64 {
    SplitMix64::new(seed ^ (u64::from(index) + 1).wrapping_mul(0xA24B_AED4_963E_E407)).next_u64()
}

/// The render's cameras at `width × height` pixels (the supersampled size), framed to `[lo, hi]`.
pub fn render_cameras(
    lo: [f32; 3],
    hi: [f32; 3],
    settings: &RenderSettings,
    seed: u64,
    width: u32,
    height: u32,
) -> Vec<RenderCamera> {
    let finite = |v: f32| if v.is_finite() { v } else { 0.0 };
    let center: [f32; 3] = std::array::from_fn(|k| finite(0.5 * (lo[k] + hi[k])));
    let radius = (0..3)
        .map(|k| finite(0.5 * (hi[k] - lo[k])).powi(2))
        .sum::<f32>()
        .sqrt()
        .max(1e-6);
    let n = settings.views.max(1);
    let [a0, a1] = settings.azimuth_deg;
    let full_turn = (a1 - a0 - 360.0).abs() < 1e-3;
    (0..n)
        .map(|i| {
            let mut rng = SplitMix64::new(view_seed(seed, i));
            // A full turn spaces n views 360/n apart from its start; a partial range centres them in n equal parts.
            let step = (a1 - a0) / n as f32;
            let base = if full_turn {
                a0 + i as f32 * step
            } else {
                a0 + (i as f32 + 0.5) * step
            };
            let jitter = settings.jitter_deg.max(0.0);
            let azimuth = base + rng.uniform([-jitter, jitter]);
            let elevation = rng.uniform(settings.elevation_deg).clamp(-89.9, 89.9);
            let fov = rng.uniform(settings.fov_deg).clamp(1.0, 170.0);
            let tan_half = (fov.to_radians() * 0.5).tan() * settings.fill.clamp(0.05, 1.0);
            // The sphere's silhouette has half-angle asin(r / d); it spans the fill when tan of it equals tan_half.
            let distance = radius * (1.0 + 1.0 / (tan_half * tan_half)).sqrt();
            let (sa, ca) = azimuth.to_radians().sin_cos();
            let (se, ce) = elevation.to_radians().sin_cos();
            let dir = [sa * ce, se, ca * ce];
            let eye: [f32; 3] = std::array::from_fn(|k| center[k] + dir[k] * distance);
            let up = [0.0, 1.0, 0.0];
            let near = ((distance - radius) * 0.5).max(distance * 1e-3);
            let far = (distance + radius) * 2.0;
            RenderCamera {
                camera: Camera::look_at(eye, center, up, fov, width, height, near, far),
                azimuth_deg: azimuth,
                elevation_deg: elevation,
                fov_y_deg: fov,
                distance,
                eye,
                target: center,
                up,
            }
        })
        .collect()
}
