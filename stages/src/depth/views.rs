//! The view schedule for multi-view re-texturing: a ring of azimuths around the object, plus top
//! and bottom, as TEXTure / Text2Tex / SyncMVD do.
//!
//! Conventions (glTF): +Y up, the asset's front faces +Z. Azimuth 0 is the "front" camera on +Z
//! looking toward -Z; azimuths grow toward +X, which is the right-hand side as seen by the front
//! camera ("front-right" sits between +Z and +X). All views share one camera distance, chosen so the
//! bounding box fits every view with a margin, so the object has the same scale in every image.

use super::camera::Camera;
use super::mesh_view::{cross, dot, normalize};

/// One camera of the schedule and its name ("front", "front-right", …, "top", "bottom").
#[derive(Debug, Clone, PartialEq)]
pub struct View {
    pub name: String,
    pub camera: Camera,
    /// Azimuth and elevation in degrees (top: elevation 90, bottom: -90).
    pub azimuth_deg: f32,
    pub elevation_deg: f32,
}

/// Knobs of [`view_schedule_with`]; the defaults are those of [`view_schedule`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ViewOptions {
    /// Elevation of the azimuth ring above the object's center, degrees.
    pub elevation_deg: f32,
    /// Vertical (= horizontal, images are square) field of view, degrees.
    pub fov_y_deg: f32,
    /// Share of the half-image the bounding box may fill in the tightest view (0..1].
    pub fill: f32,
}

impl Default for ViewOptions {
    fn default() -> Self {
        // A slightly raised ring reads as a product shot (the diffusion models saw many of those)
        // and still leaves the underside to the bottom view.
        Self {
            elevation_deg: 15.0,
            fov_y_deg: 45.0,
            fill: 0.9,
        }
    }
}

/// `azimuths` cameras evenly spaced around the object (starting at the front), plus a top and a
/// bottom camera when `top_bottom`, all `size × size` pixels, framed to the bounding box.
pub fn view_schedule(
    bounds_min: [f32; 3],
    bounds_max: [f32; 3],
    azimuths: usize,
    top_bottom: bool,
    size: u32,
) -> Vec<View> {
    view_schedule_with(
        bounds_min,
        bounds_max,
        azimuths,
        top_bottom,
        size,
        &ViewOptions::default(),
    )
}

/// [`view_schedule`] with explicit elevation, field of view and fill.
pub fn view_schedule_with(
    bounds_min: [f32; 3],
    bounds_max: [f32; 3],
    azimuths: usize,
    top_bottom: bool,
    size: u32,
    options: &ViewOptions,
) -> Vec<View> {
    let (lo, hi) = sane_bounds(bounds_min, bounds_max);
    let center = [
        0.5 * (lo[0] + hi[0]),
        0.5 * (lo[1] + hi[1]),
        0.5 * (lo[2] + hi[2]),
    ];
    let half = [
        0.5 * (hi[0] - lo[0]),
        0.5 * (hi[1] - lo[1]),
        0.5 * (hi[2] - lo[2]),
    ];
    let radius = dot(half, half).sqrt().max(1e-6);

    let mut poses: Vec<Pose> = Vec::new();
    let el = options.elevation_deg.clamp(-89.0, 89.0);
    for i in 0..azimuths {
        let az = i as f32 * 360.0 / azimuths as f32;
        let (sa, ca) = az.to_radians().sin_cos();
        let (se, ce) = el.to_radians().sin_cos();
        poses.push((
            azimuth_name(az),
            az,
            el,
            [sa * ce, se, ca * ce],
            [0.0, 1.0, 0.0],
        ));
    }
    if top_bottom {
        // Tilting the front camera up or down over the object gives these up vectors: the front
        // of the object is at the bottom of the top view and at the top of the bottom view.
        poses.push(("top".into(), 0.0, 90.0, [0.0, 1.0, 0.0], [0.0, 0.0, -1.0]));
        poses.push((
            "bottom".into(),
            0.0,
            -90.0,
            [0.0, -1.0, 0.0],
            [0.0, 0.0, 1.0],
        ));
    }

    let tan_half = (options.fov_y_deg.clamp(1.0, 179.0).to_radians() * 0.5).tan()
        * options.fill.clamp(0.05, 1.0);
    let corners: Vec<[f32; 3]> = (0..8)
        .map(|c| {
            [
                if c & 1 == 0 { -half[0] } else { half[0] },
                if c & 2 == 0 { -half[1] } else { half[1] },
                if c & 4 == 0 { -half[2] } else { half[2] },
            ]
        })
        .collect();
    // A corner at lateral offset x and offset a toward the eye fits when |x| ≤ tan·(d − a).
    let mut distance = radius * 1e-3;
    for (_, _, _, dir, up_hint) in &poses {
        let (right, up) = basis(*dir, *up_hint);
        for c in &corners {
            let a = dot(*c, *dir);
            let need = dot(*c, right).abs().max(dot(*c, up).abs()) / tan_half + a;
            distance = distance.max(need);
        }
    }
    let near = ((distance - radius) * 0.5).max(distance * 1e-3);
    let far = (distance + radius) * 2.0;

    poses
        .into_iter()
        .map(|(name, az, el, dir, up)| {
            let eye = [
                center[0] + dir[0] * distance,
                center[1] + dir[1] * distance,
                center[2] + dir[2] * distance,
            ];
            View {
                name,
                camera: Camera::look_at(eye, center, up, options.fov_y_deg, size, size, near, far),
                azimuth_deg: az,
                elevation_deg: el,
            }
        })
        .collect()
}

/// (name, azimuth, elevation, direction from the center to the eye, up hint)
type Pose = (String, f32, f32, [f32; 3], [f32; 3]);

/// Right and up axes of a camera whose eye lies in direction `dir` from the target.
fn basis(dir: [f32; 3], up_hint: [f32; 3]) -> ([f32; 3], [f32; 3]) {
    let forward = [-dir[0], -dir[1], -dir[2]];
    let right = normalize(cross(forward, up_hint));
    (right, cross(right, forward))
}

fn azimuth_name(az: f32) -> String {
    const NAMES: [&str; 8] = [
        "front",
        "front-right",
        "right",
        "back-right",
        "back",
        "back-left",
        "left",
        "front-left",
    ];
    let eighth = az / 45.0;
    if (eighth - eighth.round()).abs() < 1e-3 {
        NAMES[(eighth.round() as usize) % 8].to_string()
    } else {
        format!("azimuth-{:03}", az.round() as u32)
    }
}

/// Bounds with NaN/inf replaced and min/max ordered, so a broken bounding box still yields cameras.
fn sane_bounds(lo: [f32; 3], hi: [f32; 3]) -> ([f32; 3], [f32; 3]) {
    let ok = lo.iter().chain(hi.iter()).all(|v| v.is_finite());
    if !ok {
        return ([-1.0; 3], [1.0; 3]);
    }
    let mut a = lo;
    let mut b = hi;
    for k in 0..3 {
        if a[k] > b[k] {
            std::mem::swap(&mut a[k], &mut b[k]);
        }
    }
    (a, b)
}
