//! `texaug inspect`: what an output folder holds, per label, stage and status, and every failure with its error.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use crate::output::reader::read_output;
use crate::output::record::SampleRecord;

#[derive(Default)]
struct Counts {
    ok: u64,
    failed: u64,
}

fn table(title: &str, rows: &BTreeMap<String, Counts>) {
    let w = rows
        .keys()
        .map(String::len)
        .max()
        .unwrap_or(0)
        .max(title.len());
    println!("{title:<w$}  {:>8}  {:>8}", "ok", "failed");
    for (k, c) in rows {
        println!("{k:<w$}  {:>8}  {:>8}", c.ok, c.failed);
    }
    println!();
}

/// min, 10th percentile, median, 90th percentile, max and mean of `values` (nearest-rank percentiles); `None`
/// when there are none.
fn distribution(mut values: Vec<f64>) -> Option<[f64; 6]> {
    values.retain(|v| v.is_finite());
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let at =
        |q: f64| values[((q * values.len() as f64).ceil() as usize).clamp(1, values.len()) - 1];
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    Some([
        values[0],
        at(0.1),
        at(0.5),
        at(0.9),
        values[values.len() - 1],
        mean,
    ])
}

/// The per-stage distribution of each score the ok rows carry (the views' consistency, coverage, CLIP score).
fn scores(records: &[SampleRecord]) {
    type Score = fn(&SampleRecord) -> Option<f64>;
    let columns: [(&str, Score); 3] = [
        ("view_consistency_db", |r| r.view_consistency_db),
        ("coverage", |r| r.coverage),
        ("clip_score", |r| r.clip_score),
    ];
    let mut lines = Vec::new();
    for (name, get) in columns {
        let mut per_stage: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
        for r in records.iter().filter(|r| r.is_ok()) {
            if let Some(v) = get(r) {
                per_stage.entry(&r.stage).or_default().push(v);
            }
        }
        for (stage, values) in per_stage {
            let n = values.len();
            if let Some(d) = distribution(values) {
                lines.push(format!(
                    "{name:<20} {stage:<12} {n:>6} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3}",
                    d[0], d[1], d[2], d[3], d[4], d[5]
                ));
            }
        }
    }
    if lines.is_empty() {
        return;
    }
    println!(
        "{:<20} {:<12} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "score", "stage", "n", "min", "p10", "median", "p90", "max", "mean"
    );
    lines.iter().for_each(|l| println!("{l}"));
    println!();
}

pub fn inspect(output: &Path, max_failures: usize) -> Result<ExitCode> {
    let records = read_output(output)?;
    let mut by_label: BTreeMap<String, Counts> = BTreeMap::new();
    let mut by_stage: BTreeMap<String, Counts> = BTreeMap::new();
    let mut by_kind: BTreeMap<String, Counts> = BTreeMap::new();
    for r in &records {
        for (map, key) in [
            (&mut by_label, &r.label),
            (&mut by_stage, &r.stage),
            (&mut by_kind, &r.source_kind),
        ] {
            let c = map.entry(key.clone()).or_default();
            if r.is_done() {
                c.ok += 1;
            } else {
                c.failed += 1;
            }
        }
    }
    let failed: Vec<&SampleRecord> = records.iter().filter(|r| !r.is_done()).collect();
    let filtered = records.iter().filter(|r| r.is_filtered()).count();
    let filtered = if filtered > 0 {
        format!(" ({filtered} of them filtered by min_clip_score)")
    } else {
        String::new()
    };
    println!(
        "{}: {} samples, {} ok{filtered}, {} failed\n",
        output.display(),
        records.len(),
        records.len() - failed.len(),
        failed.len()
    );
    table("label", &by_label);
    table("stage", &by_stage);
    table("kind", &by_kind);
    scores(&records);
    if !failed.is_empty() {
        println!("failures:");
        for r in failed.iter().take(max_failures) {
            println!(
                "  {} {} ({}): {}",
                r.sample_id,
                r.source_id,
                r.source_path,
                r.error.as_deref().unwrap_or("no error recorded")
            );
        }
        if failed.len() > max_failures {
            println!(
                "  … and {} more (--max-failures)",
                failed.len() - max_failures
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::distribution;

    #[test]
    fn a_distribution_is_min_percentiles_max_and_mean_ignoring_non_finite_values() {
        let d = distribution((1..=10).map(f64::from).chain([f64::NAN]).collect()).unwrap();
        assert_eq!(d, [1.0, 1.0, 5.0, 9.0, 10.0, 5.5]);
        assert_eq!(distribution(vec![f64::INFINITY]), None);
        assert_eq!(distribution(vec![2.0]).unwrap(), [2.0; 6]);
    }
}
