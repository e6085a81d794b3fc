//! `texaug model fetch ID…`: a pipeline into the Hugging Face cache once, so that the tasks of a cluster run read
//! it instead of each downloading it (they run with `HF_HUB_OFFLINE=1`; `validate` never downloads).

use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use texaug_stages::diffusion::hub;
use texaug_stages::diffusion::model_dir::ModelSource;

use crate::cli::FetchArgs;

pub fn fetch(args: &FetchArgs) -> Result<ExitCode> {
    if hub::offline() {
        bail!(
            "HF_HUB_OFFLINE is set, so nothing can be fetched; unset it for this command (the tasks that read the \
             cache keep it)"
        );
    }
    let cache = hub::cache_dir();
    for id in &args.ids {
        let source = ModelSource::from_id(id);
        let ModelSource::Hub { repo, .. } = &source else {
            unreachable!("from_id gives a hub source");
        };
        if !hub::is_repo_id(repo) {
            bail!(hub::HubError::BadRepoId { repo: repo.clone() });
        }
        if let Ok(dir) = source.resolve_cached_in(&cache) {
            eprintln!(
                "texaug: {id} is already complete in {} ({})",
                cache.display(),
                dir.root.display()
            );
            continue;
        }
        let t0 = Instant::now();
        eprintln!(
            "texaug: fetching {id} (model_index.json and the pipeline components it names) into {}",
            cache.display()
        );
        let dir = source
            .resolve_in(&cache)
            .with_context(|| format!("fetching {id}"))?;
        let bytes: u64 = walkdir::WalkDir::new(&dir.root)
            .follow_links(true)
            .into_iter()
            .flatten()
            .filter(|e| e.file_type().is_file())
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum();
        eprintln!(
            "texaug: {id}: {:.1} MB in {:.1} s at {}",
            bytes as f64 / 1e6,
            t0.elapsed().as_secs_f64(),
            dir.root.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
