//! A pinhole camera: look-at pose and vertical field of view, square pixels.
//!
//! Pixel convention: x to the right, y down, pixel `(i, j)` covers `[i, i+1) × [j, j+1)` and its
//! center is `(i + 0.5, j + 0.5)`. Depth is the distance along the viewing axis (view-space z,
//! positive in front of the camera), not the distance to the eye.

use super::mesh_view::{cross, dot, normalize, sub};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Camera {
    eye: [f32; 3],
    right: [f32; 3],
    up: [f32; 3],
    forward: [f32; 3],
    /// Pixels per unit of `lateral / depth`: `height / 2 / tan(fov_y / 2)`.
    focal_px: f32,
    width: u32,
    height: u32,
    near: f32,
    far: f32,
}

impl Camera {
    /// A camera at `eye` looking at `target`, with `up` the approximate up direction (it need not be
    /// orthogonal to the viewing direction, only not parallel to it; a parallel one is replaced by a
    /// perpendicular axis). `fov_y_deg` is the vertical field of view; `near`/`far` bound the depths
    /// that get rasterized.
    #[allow(clippy::too_many_arguments)]
    pub fn look_at(
        eye: [f32; 3],
        target: [f32; 3],
        up: [f32; 3],
        fov_y_deg: f32,
        width: u32,
        height: u32,
        near: f32,
        far: f32,
    ) -> Self {
        let mut forward = normalize(sub(target, eye));
        if forward == [0.0; 3] {
            forward = [0.0, 0.0, -1.0];
        }
        let mut right = normalize(cross(forward, up));
        if right == [0.0; 3] {
            // `up` is parallel to the view: any perpendicular axis is as good as another.
            let alt = if forward[0].abs() < 0.9 {
                [1.0, 0.0, 0.0]
            } else {
                [0.0, 0.0, 1.0]
            };
            right = normalize(cross(forward, alt));
        }
        let up = cross(right, forward);
        let fov = fov_y_deg.clamp(1.0, 179.0).to_radians();
        let height = height.max(1);
        Self {
            eye,
            right,
            up,
            forward,
            focal_px: height as f32 * 0.5 / (fov * 0.5).tan(),
            width: width.max(1),
            height,
            near: near.max(1e-6),
            far: far.max(near.max(1e-6) * 1.0001),
        }
    }

    /// Pixel x, pixel y and depth of a world point. Depth ≤ 0 means behind the camera, where x and
    /// y carry no meaning.
    #[inline]
    pub fn project(&self, p: [f32; 3]) -> (f32, f32, f32) {
        let d = sub(p, self.eye);
        let z = dot(d, self.forward);
        let s = self.focal_px / z;
        (
            self.width as f32 * 0.5 + dot(d, self.right) * s,
            self.height as f32 * 0.5 - dot(d, self.up) * s,
            z,
        )
    }

    /// The world point at pixel position `(x, y)` and depth `depth` (inverse of [`Camera::project`]).
    pub fn unproject(&self, x: f32, y: f32, depth: f32) -> [f32; 3] {
        let cx = (x - self.width as f32 * 0.5) * depth / self.focal_px;
        let cy = (self.height as f32 * 0.5 - y) * depth / self.focal_px;
        let mut p = self.eye;
        for (k, v) in p.iter_mut().enumerate() {
            *v += self.right[k] * cx + self.up[k] * cy + self.forward[k] * depth;
        }
        p
    }

    /// The same pose and field of view on a grid of another size (a latent grid: a pixel there covers the same
    /// rays as the block of pixels it stands for).
    pub fn resized(&self, width: u32, height: u32) -> Camera {
        let height = height.max(1);
        Camera {
            focal_px: self.focal_px * height as f32 / self.height as f32,
            width: width.max(1),
            height,
            ..*self
        }
    }

    pub fn eye(&self) -> [f32; 3] {
        self.eye
    }
    /// Unit viewing direction (from the eye toward the target).
    pub fn forward(&self) -> [f32; 3] {
        self.forward
    }
    pub fn right(&self) -> [f32; 3] {
        self.right
    }
    pub fn up(&self) -> [f32; 3] {
        self.up
    }
    pub fn width(&self) -> u32 {
        self.width
    }
    pub fn height(&self) -> u32 {
        self.height
    }
    pub fn near(&self) -> f32 {
        self.near
    }
    pub fn far(&self) -> f32 {
        self.far
    }
    pub fn focal_px(&self) -> f32 {
        self.focal_px
    }
    /// Vertical field of view in degrees.
    pub fn fov_y_deg(&self) -> f32 {
        (2.0 * (self.height as f32 * 0.5 / self.focal_px).atan()).to_degrees()
    }
}
