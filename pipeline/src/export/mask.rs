//! An instance mask as the render stage writes it (8-bit PNG, 255 = object), read back as a set of pixels.

use std::path::Path;

use anyhow::{bail, Context, Result};

/// Row-major, `true` where the object is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mask {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<bool>,
}

impl Mask {
    /// Reads a mask; grey values count as object from 128 up, as the inpainting masks do.
    pub fn read(path: &Path) -> Result<Mask> {
        let img = image::open(path)
            .with_context(|| format!("reading the mask {}", path.display()))?
            .to_luma8();
        let (width, height) = img.dimensions();
        let pixels = img.pixels().map(|p| p.0[0] >= 128).collect();
        Ok(Mask {
            width,
            height,
            pixels,
        })
    }

    /// Reads a mask and checks it has its image's size.
    pub fn read_for(path: &Path, width: u32, height: u32) -> Result<Mask> {
        let mask = Mask::read(path)?;
        if (mask.width, mask.height) != (width, height) {
            bail!(
                "the mask {} is {}×{} but its image is {width}×{height}",
                path.display(),
                mask.width,
                mask.height
            );
        }
        Ok(mask)
    }

    pub fn get(&self, x: u32, y: u32) -> bool {
        self.pixels[(y * self.width + x) as usize]
    }

    /// The number of object pixels (COCO's `area` of a mask).
    pub fn area(&self) -> u64 {
        self.pixels.iter().filter(|&&p| p).count() as u64
    }

    /// The tight box of the object pixels, `[x, y, w, h]`; `None` when the mask is empty.
    pub fn extent(&self) -> Option<[i64; 4]> {
        let (mut x0, mut y0, mut x1, mut y1) = (u32::MAX, u32::MAX, 0, 0);
        for y in 0..self.height {
            for x in 0..self.width {
                if self.get(x, y) {
                    (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
                }
            }
        }
        (x0 != u32::MAX).then(|| [x0, y0, x1 - x0 + 1, y1 - y0 + 1].map(i64::from))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_extent_is_the_tight_box_and_grey_splits_at_128() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mask.png");
        let img = image::GrayImage::from_fn(6, 5, |x, y| {
            image::Luma([match (x, y) {
                (1, 2) => 255,
                (4, 3) => 128,
                (5, 0) => 127,
                _ => 0,
            }])
        });
        img.save(&path).unwrap();
        let mask = Mask::read_for(&path, 6, 5).unwrap();
        assert_eq!(mask.area(), 2);
        assert_eq!(mask.extent(), Some([1, 2, 4, 2]));
        assert!(Mask::read_for(&path, 5, 5).is_err());
        let empty = Mask {
            width: 2,
            height: 2,
            pixels: vec![false; 4],
        };
        assert_eq!(empty.extent(), None);
    }
}
