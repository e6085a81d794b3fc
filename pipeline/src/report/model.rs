//! The contact sheet's content, made from an output folder's records alone (no file is read here): counts per
//! stage and label, the failures, a grid of tiles per label × stage variant, a turntable strip per rendered mesh,
//! and CLIP-score histograms. Every path a row names is checked ([`super::tile`]) before anything may open it.

use std::collections::BTreeMap;

use serde::Serialize;

use super::histogram::{histograms, Histogram};
use super::tile::{failure, shorten, tile, Failure, Tile};
use crate::output::record::SampleRecord;

/// A recipe stage as `run.toml` records it: its name (the rows' `stage`) and kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageInfo {
    pub name: String,
    pub kind: String,
}

/// How much of a large output the page shows; the counts always cover every row.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub per_cell: usize,
    pub strips: usize,
    pub failures: usize,
}

/// The text of the recipe that made the output, and where it was read from.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RecipeText {
    pub origin: String,
    pub text: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Tally {
    pub name: String,
    pub ok: u64,
    pub failed: u64,
    /// Neither ok nor failed, e.g. filtered out by a stage's `min_clip_score`.
    pub other: u64,
}

impl Tally {
    fn add(&mut self, status: &str) {
        match status {
            "ok" => self.ok += 1,
            "failed" => self.failed += 1,
            _ => self.other += 1,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct GridCell {
    pub tiles: Vec<Tile>,
    /// Samples of the cell beyond [`Limits::per_cell`].
    pub more: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct GridRow {
    pub label: String,
    pub cells: Vec<GridCell>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Grid {
    pub columns: Vec<String>,
    pub rows: Vec<GridRow>,
}

/// The rendered views of one mesh (a re-textured sample, or a source mesh as it is), in azimuth order.
#[derive(Debug, Clone, Serialize)]
pub struct Strip {
    pub title: String,
    pub tiles: Vec<Tile>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Page {
    pub title: String,
    pub texaug_version: &'static str,
    pub total: Tally,
    pub stages: Vec<Tally>,
    pub labels: Vec<Tally>,
    pub failures: Vec<Failure>,
    pub failures_left_out: usize,
    pub recipe: RecipeText,
    pub grid: Grid,
    pub strips: Vec<Strip>,
    pub strips_left_out: usize,
    pub histograms: Vec<Histogram>,
}

/// Whether the row is a rendered view: its stage's kind in `run.toml`, else (an output without one) its fields.
fn is_view(r: &SampleRecord, stages: &[StageInfo]) -> bool {
    match stages.iter().find(|s| s.name == r.stage) {
        Some(s) => s.kind == "render",
        None => r.camera.is_some() || r.mask_path.is_some(),
    }
}

/// Builds the page and lists the problems found on the way (bad ids or paths), already among its failures.
pub fn build_page(
    title: &str,
    records: &[SampleRecord],
    stages: &[StageInfo],
    recipe: RecipeText,
    limits: Limits,
) -> Page {
    let mut total = Tally {
        name: "all".into(),
        ..Tally::default()
    };
    let (mut by_stage, mut by_label) = (BTreeMap::new(), BTreeMap::new());
    for r in records {
        total.add(&r.status);
        for (map, key) in [(&mut by_stage, &r.stage), (&mut by_label, &r.label)] {
            let t: &mut Tally = map.entry(key.clone()).or_insert_with(|| Tally {
                name: key.clone(),
                ..Tally::default()
            });
            t.add(&r.status);
        }
    }
    let mut failures: Vec<Failure> = records
        .iter()
        .filter(|r| r.status == "failed")
        .map(|r| failure(r, r.error.as_deref().unwrap_or("no error recorded"), "run"))
        .collect();
    let mut problems = Vec::new();
    let mut tile_of = |r: &SampleRecord| tile(r, &mut problems);
    let (views, others): (Vec<&SampleRecord>, Vec<&SampleRecord>) =
        records.iter().partition(|r| is_view(r, stages));
    let grid = grid(&others, stages, limits, &mut tile_of);
    let (strips, strips_left_out) = strips(&views, limits, &mut tile_of);
    failures.extend(problems);
    sort_failures(&mut failures);
    let failures_left_out = failures.len().saturating_sub(limits.failures);
    failures.truncate(limits.failures);
    Page {
        title: title.to_string(),
        texaug_version: env!("CARGO_PKG_VERSION"),
        total,
        stages: in_stage_order(by_stage.into_values().collect(), stages),
        labels: by_label.into_values().collect(),
        failures,
        failures_left_out,
        recipe,
        grid,
        strips,
        strips_left_out,
        histograms: histograms(records, &stage_names(records, stages)),
    }
}

impl Page {
    /// Every tile of the page, for the thumbnails to be made and their outcome recorded.
    pub fn tiles_mut(&mut self) -> impl Iterator<Item = &mut Tile> {
        let grid = self
            .grid
            .rows
            .iter_mut()
            .flat_map(|row| row.cells.iter_mut().flat_map(|cell| cell.tiles.iter_mut()));
        grid.chain(self.strips.iter_mut().flat_map(|s| s.tiles.iter_mut()))
    }

    /// A thumbnail of `width × height` pixels was made: its tile shows it scaled to fit `tile_px`.
    pub fn thumb_made(&mut self, sample_id: &str, [width, height]: [u32; 2], tile_px: u32) {
        let scale = f64::from(tile_px) / f64::from(width.max(height).max(1));
        let fit = |v: u32| ((f64::from(v) * scale).round() as u32).max(1);
        for t in self.tiles_mut().filter(|t| t.sample_id == sample_id) {
            t.size = Some([fit(width), fit(height)]);
        }
    }

    /// A thumbnail that could not be made: the tile shows no image and the failure is listed.
    pub fn thumb_failed(&mut self, sample_id: &str, error: &str, row: &SampleRecord) {
        for t in self.tiles_mut().filter(|t| t.sample_id == sample_id) {
            t.thumb = None;
            t.tooltip = error.to_string();
            t.short = shorten(error, 90);
        }
        self.failures.push(failure(row, error, "report"));
        sort_failures(&mut self.failures);
    }
}

fn sort_failures(failures: &mut [Failure]) {
    failures.sort_by(|a, b| {
        (&a.stage, &a.label, &a.sample_id).cmp(&(&b.stage, &b.label, &b.sample_id))
    });
}

/// The stages in recipe order, then any the recipe does not name (an output resumed under another recipe).
fn stage_names(records: &[SampleRecord], stages: &[StageInfo]) -> Vec<String> {
    let mut names: Vec<String> = stages.iter().map(|s| s.name.clone()).collect();
    let mut rest: Vec<String> = records
        .iter()
        .map(|r| r.stage.clone())
        .filter(|s| !names.contains(s))
        .collect();
    rest.sort();
    rest.dedup();
    names.extend(rest);
    names
}

fn in_stage_order(mut tallies: Vec<Tally>, stages: &[StageInfo]) -> Vec<Tally> {
    let rank = |name: &str| {
        stages
            .iter()
            .position(|s| s.name == name)
            .unwrap_or(usize::MAX)
    };
    tallies.sort_by(|a, b| (rank(&a.name), &a.name).cmp(&(rank(&b.name), &b.name)));
    tallies
}

fn grid(
    rows: &[&SampleRecord],
    stages: &[StageInfo],
    limits: Limits,
    tile_of: &mut impl FnMut(&SampleRecord) -> Tile,
) -> Grid {
    let rank = |name: &str| {
        stages
            .iter()
            .position(|s| s.name == name)
            .unwrap_or(usize::MAX)
    };
    let mut columns: Vec<(usize, String, i64)> = rows
        .iter()
        .map(|r| (rank(&r.stage), r.stage.clone(), r.variant))
        .collect();
    columns.sort();
    columns.dedup();
    let mut cells: BTreeMap<&str, BTreeMap<(String, i64), Vec<&SampleRecord>>> = BTreeMap::new();
    for r in rows {
        let by_column = cells.entry(&r.label).or_default();
        by_column
            .entry((r.stage.clone(), r.variant))
            .or_default()
            .push(r);
    }
    let rows = cells
        .into_iter()
        .map(|(label, mut by_column)| GridRow {
            label: label.to_string(),
            cells: columns
                .iter()
                .map(|(_, stage, variant)| {
                    let mut samples = by_column
                        .remove(&(stage.clone(), *variant))
                        .unwrap_or_default();
                    samples.sort_by(|a, b| {
                        (&a.source_id, &a.sample_id).cmp(&(&b.source_id, &b.sample_id))
                    });
                    let more = samples.len().saturating_sub(limits.per_cell);
                    let tiles = samples
                        .into_iter()
                        .take(limits.per_cell)
                        .map(&mut *tile_of)
                        .collect();
                    GridCell { tiles, more }
                })
                .collect(),
        })
        .collect();
    Grid {
        columns: columns
            .into_iter()
            .map(|(_, s, v)| format!("{s} · v{v}"))
            .collect(),
        rows,
    }
}

/// One strip per mesh and render stage: the views of a re-textured sample, or of a source mesh rendered as it is.
fn strips(
    views: &[&SampleRecord],
    limits: Limits,
    tile_of: &mut impl FnMut(&SampleRecord) -> Tile,
) -> (Vec<Strip>, usize) {
    let mut groups: BTreeMap<(String, String, String), Vec<&SampleRecord>> = BTreeMap::new();
    for r in views {
        let mesh = match &r.parent_sample_id {
            Some(parent) => format!("{} (sample {parent})", r.source_id),
            None => format!("{} (source mesh)", r.source_id),
        };
        groups
            .entry((r.label.clone(), r.stage.clone(), mesh))
            .or_default()
            .push(r);
    }
    let left_out = groups.len().saturating_sub(limits.strips);
    let strips = groups
        .into_iter()
        .take(limits.strips)
        .map(|((label, stage, mesh), mut rows)| {
            rows.sort_by_key(|r| r.variant);
            let mut tiles: Vec<Tile> = rows
                .into_iter()
                .map(|r| {
                    let mut t = tile_of(r);
                    t.caption = match t.azimuth_deg {
                        Some(a) => format!("{a:.0}°"),
                        None => format!("view {}", r.variant),
                    };
                    t
                })
                .collect();
            // Views without a camera (failed renders) go last, in the order they were planned (the sort is stable).
            tiles.sort_by(|a, b| match (a.azimuth_deg, b.azimuth_deg) {
                (Some(x), Some(y)) => x.total_cmp(&y),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            });
            Strip {
                title: format!("{label} · {stage} · {mesh}"),
                tiles,
            }
        })
        .collect();
    (strips, left_out)
}

#[cfg(test)]
#[path = "model_tests.rs"]
mod tests;
