//! CLIP-score histograms, one per stage, as the bars of an inline SVG (coordinates in its 0..WIDTH × 0..HEIGHT
//! view box), so the page needs no plotting script.

use serde::Serialize;

use crate::output::record::SampleRecord;

pub const WIDTH: f64 = 320.0;
pub const HEIGHT: f64 = 100.0;
const BINS: usize = 12;

/// A sample's CLIP score (`[score]` in the recipe; none in outputs made without it).
pub fn clip_score(record: &SampleRecord) -> Option<f64> {
    record.clip_score
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bar {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
    pub count: usize,
    pub from: f64,
    pub to: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Histogram {
    pub stage: String,
    pub scored: usize,
    pub min: f64,
    pub max: f64,
    pub width: f64,
    pub height: f64,
    pub bars: Vec<Bar>,
}

/// A histogram per stage (in `stages` order) whose rows hold any score; none when no row does.
pub fn histograms(records: &[SampleRecord], stages: &[String]) -> Vec<Histogram> {
    histograms_of(records, stages, clip_score)
}

fn histograms_of(
    records: &[SampleRecord],
    stages: &[String],
    score: impl Fn(&SampleRecord) -> Option<f64>,
) -> Vec<Histogram> {
    stages
        .iter()
        .filter_map(|stage| {
            let values: Vec<f64> = records
                .iter()
                .filter(|r| &r.stage == stage)
                .filter_map(&score)
                .filter(|v| v.is_finite())
                .collect();
            histogram(stage, &values)
        })
        .collect()
}

fn histogram(stage: &str, values: &[f64]) -> Option<Histogram> {
    let min = values.iter().copied().reduce(f64::min)?;
    let max = values.iter().copied().reduce(f64::max)?;
    // One value (or all equal) still gets a visible bar in the middle of a one-point range.
    let (lo, hi) = if max - min < 1e-9 {
        (min - 0.5, max + 0.5)
    } else {
        (min, max)
    };
    let step = (hi - lo) / BINS as f64;
    let mut counts = [0usize; BINS];
    for v in values {
        let bin = (((v - lo) / step) as usize).min(BINS - 1);
        counts[bin] += 1;
    }
    let tallest = counts.iter().copied().max().unwrap_or(1).max(1) as f64;
    let w = WIDTH / BINS as f64;
    let bars = counts
        .iter()
        .enumerate()
        .map(|(i, &count)| {
            let h = HEIGHT * count as f64 / tallest;
            Bar {
                x: round1(i as f64 * w),
                y: round1(HEIGHT - h),
                w: round1(w - 1.0),
                h: round1(h),
                count,
                from: round1(lo + i as f64 * step),
                to: round1(lo + (i + 1) as f64 * step),
            }
        })
        .collect();
    Some(Histogram {
        stage: stage.to_string(),
        scored: values.len(),
        min: round1(min),
        max: round1(max),
        width: WIDTH,
        height: HEIGHT,
        bars,
    })
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::record::tests::record;

    #[test]
    fn no_scores_make_no_histogram() {
        let rows = vec![record("a", "ok")];
        assert!(histograms(&rows, &["style".to_string()]).is_empty());
    }

    #[test]
    fn scores_fall_into_bars_scaled_to_the_tallest() {
        let mut rows = Vec::new();
        for (i, v) in [20.0, 20.4, 20.9, 32.0].into_iter().enumerate() {
            let mut r = record(&format!("{i}"), "ok");
            r.strength = v;
            rows.push(r);
        }
        let h = histograms_of(&rows, &["style".to_string(), "none".into()], |r| {
            Some(r.strength)
        });
        assert_eq!(h.len(), 1, "a stage without rows has no histogram");
        let h = &h[0];
        assert_eq!((h.scored, h.min, h.max), (4, 20.0, 32.0));
        assert_eq!(h.bars.len(), BINS);
        assert_eq!(h.bars[0].count, 3, "{:?}", h.bars);
        assert_eq!(h.bars[0].h, HEIGHT);
        assert_eq!(
            h.bars[BINS - 1].count,
            1,
            "the maximum lands in the last bar"
        );
        assert_eq!(h.bars.iter().map(|b| b.count).sum::<usize>(), 4);
        let one = histogram("s", &[25.0]).unwrap();
        assert_eq!(one.bars.iter().map(|b| b.count).sum::<usize>(), 1);
    }
}
