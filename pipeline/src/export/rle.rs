//! A mask as COCO's uncompressed run-length encoding: runs of alternating background and object pixels in
//! column-major (Fortran) order, the first run always background (0 long when the top-left pixel is object), and
//! `size` as [height, width]. pycocotools' `frPyObjects` reads this form directly.

use serde::Serialize;

use super::mask::Mask;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rle {
    pub counts: Vec<u64>,
    pub size: [u32; 2],
}

impl Rle {
    pub fn encode(mask: &Mask) -> Rle {
        let mut counts = Vec::new();
        let (mut current, mut run) = (false, 0u64);
        for x in 0..mask.width {
            for y in 0..mask.height {
                let p = mask.get(x, y);
                if p != current {
                    counts.push(run);
                    (current, run) = (p, 0);
                }
                run += 1;
            }
        }
        counts.push(run);
        Rle {
            counts,
            size: [mask.height, mask.width],
        }
    }

    /// The mask back, for checking an encoding.
    #[cfg(test)]
    pub fn decode(&self) -> Mask {
        let [height, width] = self.size;
        let mut pixels = vec![false; (width * height) as usize];
        let (mut i, mut value) = (0usize, false);
        for &n in &self.counts {
            for _ in 0..n {
                let (x, y) = (i as u32 / height, i as u32 % height);
                pixels[(y * width + x) as usize] = value;
                i += 1;
            }
            value = !value;
        }
        Mask {
            width,
            height,
            pixels,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(rows: &[&str]) -> Mask {
        Mask {
            width: rows[0].len() as u32,
            height: rows.len() as u32,
            pixels: rows
                .iter()
                .flat_map(|r| r.chars().map(|c| c == '#'))
                .collect(),
        }
    }

    #[test]
    fn runs_go_down_the_columns_and_start_with_background() {
        // Column 0 is ".#", column 1 "##", column 2 "..": 1 background, 3 object, 2 background.
        let m = mask(&[".#.", "##."]);
        assert_eq!(
            Rle::encode(&m),
            Rle {
                counts: vec![1, 3, 2],
                size: [2, 3]
            }
        );
        // An object pixel in the corner opens with an empty background run.
        assert_eq!(Rle::encode(&mask(&["#.", ".."])).counts, vec![0, 1, 3]);
        assert_eq!(Rle::encode(&mask(&["..", ".."])).counts, vec![4]);
        assert_eq!(Rle::encode(&mask(&["##", "##"])).counts, vec![0, 4]);
    }

    #[test]
    fn encoding_round_trips() {
        let m = Mask {
            width: 13,
            height: 7,
            pixels: (0..91u32).map(|i| (i * 7919) % 5 < 2).collect(),
        };
        let rle = Rle::encode(&m);
        assert_eq!(rle.counts.iter().sum::<u64>(), 91);
        assert_eq!(rle.decode(), m);
        let object: u64 = rle.counts.iter().skip(1).step_by(2).sum();
        assert_eq!(object, m.area());
    }
}
