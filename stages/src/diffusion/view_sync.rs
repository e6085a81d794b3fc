//! Views of one surface denoised in step (SyncMVD's idea, on the mesh's own UVs): after every scheduler step the
//! views' latents are splatted into one shared UV-space latent texture, weighted, and every covered latent pixel is
//! replaced by what that texture holds at its texel, so overlapping views agree on the surface before the next
//! step.
//!
//! The map is linear and built once per job from the views' rasters at latent resolution (see `job::view_sync`):
//! each covered latent pixel names up to four texels with bilinear weights and its view weight ((n·v)^k, 0 on
//! grazing surfaces). Splat: `num[t] += view_weight · bilinear · latent[p]`, `den[t] += view_weight · bilinear`.
//! Read back, normalised over the same four texels: `latent[p] = Σ bilinear · num[t] / Σ bilinear · den[t]`. A
//! pixel whose texels hold no weight keeps its latent, as do uncovered (background) pixels.
//!
//! It runs on the CPU in a fixed order on purpose: a few hundred thousand multiply-adds per step, and the same bytes
//! on every device (a CUDA scatter-add sums in whatever order its atomics land).

use std::sync::Arc;

use tch::{Device, Kind, Tensor};

use super::error::DiffusionError;

/// One covered latent pixel's share of one texel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SyncEntry {
    pub view: u32,
    /// `y * width + x` in the view's latent grid.
    pub pixel: u32,
    pub texel: u32,
    pub bilinear: f32,
    /// The view's say on this surface point: (n·v)^k.
    pub view_weight: f32,
}

/// The latent map of one mesh's views (see the module docs).
#[derive(Debug)]
pub struct ViewSync {
    views: usize,
    width: u32,
    height: u32,
    texels: usize,
    entries: Vec<SyncEntry>,
}

/// A request's place in a [`ViewSync`]: the group's map (shared by its views) and which view it is.
#[derive(Debug, Clone)]
pub struct SyncedView {
    pub group: Arc<ViewSync>,
    pub view: usize,
}

/// Below this the texels under a pixel hold no view's weight and the pixel keeps its own latent.
const MIN_WEIGHT: f32 = 1e-8;

impl ViewSync {
    /// `entries` index `views` views of `width × height` latents and `texels` texels; out-of-range entries are
    /// refused here, so [`ViewSync::blend_values`] never indexes out of bounds.
    pub fn new(
        views: usize,
        (width, height): (u32, u32),
        texels: usize,
        entries: Vec<SyncEntry>,
    ) -> Result<Self, String> {
        let pixels = width as usize * height as usize;
        if let Some(e) = entries.iter().find(|e| {
            e.view as usize >= views
                || e.pixel as usize >= pixels
                || e.texel as usize >= texels
                || !e.bilinear.is_finite()
                || !e.view_weight.is_finite()
        }) {
            return Err(format!(
                "view sync entry {e:?} is outside {views} views of {width}×{height} latents and {texels} texels"
            ));
        }
        Ok(Self {
            views,
            width,
            height,
            texels,
            entries,
        })
    }

    pub fn views(&self) -> usize {
        self.views
    }

    /// The latent grid it was built for, `(width, height)`.
    pub fn latent_size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    pub fn texels(&self) -> usize {
        self.texels
    }

    pub fn entries(&self) -> &[SyncEntry] {
        &self.entries
    }

    /// Blends `values`, laid out `[view][channel][y][x]` for all of this map's views, in place.
    pub fn blend_values(&self, values: &mut [f32], channels: usize) {
        let pixels = self.width as usize * self.height as usize;
        if values.len() != self.views * channels * pixels {
            return;
        }
        let at =
            |e: &SyncEntry, c: usize| (e.view as usize * channels + c) * pixels + e.pixel as usize;
        let mut num = vec![0f32; channels * self.texels];
        let mut den = vec![0f32; self.texels];
        for e in &self.entries {
            let w = e.bilinear * e.view_weight;
            den[e.texel as usize] += w;
            for c in 0..channels {
                num[c * self.texels + e.texel as usize] += w * values[at(e, c)];
            }
        }
        let mut read_num = vec![0f32; values.len()];
        let mut read_den = vec![0f32; self.views * pixels];
        for e in &self.entries {
            let t = e.texel as usize;
            read_den[e.view as usize * pixels + e.pixel as usize] += e.bilinear * den[t];
            for c in 0..channels {
                read_num[at(e, c)] += e.bilinear * num[c * self.texels + t];
            }
        }
        for view in 0..self.views {
            for p in 0..pixels {
                let d = read_den[view * pixels + p];
                if d > MIN_WEIGHT {
                    for c in 0..channels {
                        let i = (view * channels + c) * pixels + p;
                        values[i] = read_num[i] / d;
                    }
                }
            }
        }
    }

    /// Blends the rows `rows[v]` (view `v`'s row) of `latents` `[b, c, h, w]`; the other rows are left as they are.
    pub fn blend(&self, latents: &Tensor, rows: &[i64]) -> Result<Tensor, DiffusionError> {
        let size = latents.size();
        let (lh, lw) = (size[2], size[3]);
        if (lw, lh) != (i64::from(self.width), i64::from(self.height)) || rows.len() != self.views {
            return Err(DiffusionError::ViewSync {
                detail: format!(
                    "the map is for {} views of {}×{} latents, the batch has {} of them at {lw}×{lh}",
                    self.views,
                    self.width,
                    self.height,
                    rows.len()
                ),
            });
        }
        let device = latents.device();
        let index = Tensor::from_slice(rows).to_device(device);
        let picked = latents
            .index_select(0, &index)
            .to_kind(Kind::Float)
            .to_device(Device::Cpu)
            .contiguous();
        let channels = size[1] as usize;
        let mut values =
            Vec::<f32>::try_from(picked.flatten(0, -1)).map_err(|e| DiffusionError::ViewSync {
                detail: format!("latents could not be read: {e}"),
            })?;
        self.blend_values(&mut values, channels);
        let blended = Tensor::from_slice(&values)
            .reshape([rows.len() as i64, size[1], lh, lw])
            .to_device(device)
            .to_kind(latents.kind());
        Ok(latents.index_copy(0, &index, &blended))
    }
}

/// A group's map and the batch row of each of its views, in view order.
pub type SyncGroup = (Arc<ViewSync>, Vec<i64>);

/// The view-sync groups of a batch, each with the batch row of its every view in view order. A group with a view
/// missing from the batch is an error: its views must be denoised together.
pub fn sync_groups(syncs: &[Option<&SyncedView>]) -> Result<Vec<SyncGroup>, DiffusionError> {
    let mut groups: Vec<(Arc<ViewSync>, Vec<Option<i64>>)> = Vec::new();
    for (row, s) in syncs.iter().enumerate() {
        let Some(s) = s else { continue };
        let slot = match groups.iter().position(|(g, _)| Arc::ptr_eq(g, &s.group)) {
            Some(i) => i,
            None => {
                groups.push((s.group.clone(), vec![None; s.group.views]));
                groups.len() - 1
            }
        };
        match groups[slot].1.get_mut(s.view) {
            Some(r @ None) => *r = Some(row as i64),
            _ => {
                return Err(DiffusionError::ViewSync {
                    detail: format!(
                        "view {} of a group of {} is out of range or twice in the batch",
                        s.view, s.group.views
                    ),
                })
            }
        }
    }
    groups
        .into_iter()
        .map(|(g, rows)| {
            let found = rows.iter().flatten().count();
            match rows.into_iter().collect::<Option<Vec<i64>>>() {
                Some(rows) => Ok((g, rows)),
                None => Err(DiffusionError::ViewSync {
                    detail: format!(
                        "only {found} of a mesh's {} synchronised views are in the batch; they must run as one",
                        g.views
                    ),
                }),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(view: u32, pixel: u32, texel: u32, view_weight: f32) -> SyncEntry {
        SyncEntry {
            view,
            pixel,
            texel,
            bilinear: 1.0,
            view_weight,
        }
    }

    #[test]
    fn views_seeing_one_texel_agree_on_their_weighted_mean_and_the_rest_is_kept() {
        // Two views of 2×1 latents, one channel: pixel 0 of each sees texel 0; pixel 1 is background.
        let sync =
            ViewSync::new(2, (2, 1), 1, vec![entry(0, 0, 0, 3.0), entry(1, 0, 0, 1.0)]).unwrap();
        let mut v = vec![4.0, 7.0, 8.0, 9.0];
        sync.blend_values(&mut v, 1);
        assert_eq!(v, vec![5.0, 7.0, 5.0, 9.0]);
    }

    #[test]
    fn a_pixel_whose_texels_hold_no_weight_keeps_its_latent() {
        let sync = ViewSync::new(1, (1, 1), 1, vec![entry(0, 0, 0, 0.0)]).unwrap();
        let mut v = vec![2.5];
        sync.blend_values(&mut v, 1);
        assert_eq!(v, vec![2.5]);
    }

    #[test]
    fn entries_outside_the_grid_are_refused() {
        assert!(ViewSync::new(1, (1, 1), 1, vec![entry(0, 1, 0, 1.0)]).is_err());
        assert!(ViewSync::new(1, (1, 1), 1, vec![entry(1, 0, 0, 1.0)]).is_err());
        assert!(ViewSync::new(1, (1, 1), 1, vec![entry(0, 0, 1, 1.0)]).is_err());
    }

    #[test]
    fn tensor_blend_touches_only_the_groups_rows() {
        let sync =
            ViewSync::new(2, (1, 1), 1, vec![entry(0, 0, 0, 1.0), entry(1, 0, 0, 1.0)]).unwrap();
        let latents = Tensor::from_slice(&[1.0f32, 10.0, 3.0]).reshape([3, 1, 1, 1]);
        let out = sync.blend(&latents, &[0, 2]).unwrap();
        let got = Vec::<f32>::try_from(out.flatten(0, -1)).unwrap();
        assert_eq!(got, vec![2.0, 10.0, 2.0]);
    }

    #[test]
    fn a_group_missing_a_view_is_an_error() {
        let group = Arc::new(ViewSync::new(2, (1, 1), 1, vec![]).unwrap());
        let a = SyncedView {
            group: group.clone(),
            view: 1,
        };
        let err = sync_groups(&[None, Some(&a)]).unwrap_err().to_string();
        assert!(err.contains("only 1 of a mesh's 2"), "{err}");
        let b = SyncedView { group, view: 0 };
        let groups = sync_groups(&[Some(&a), None, Some(&b)]).unwrap();
        assert_eq!(groups[0].1, vec![2, 0]);
    }
}
