//! `texaug dev demo-data DIR`: the demo's sources and a manifest for them.

use anyhow::{Context, Result};
use std::path::Path;
use std::process::ExitCode;
use texaug_stages::files;
use texaug_stages::source::write_demo_sources;

pub fn demo_data(dir: &Path) -> Result<ExitCode> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let sources = write_demo_sources(dir)?;
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["id", "path", "label", "kind"])?;
    for s in &sources {
        let path = s.path.to_string_lossy();
        w.write_record([s.id.as_str(), path.as_ref(), s.label.as_str(), s.kind])?;
    }
    let bytes = w.into_inner().context("encoding manifest.csv")?;
    let manifest = dir.join("manifest.csv");
    files::write_atomic(&manifest, &bytes)
        .with_context(|| format!("writing {}", manifest.display()))?;
    eprintln!(
        "texaug: wrote {} demo sources and {}",
        sources.len(),
        manifest.display()
    );
    Ok(ExitCode::SUCCESS)
}
