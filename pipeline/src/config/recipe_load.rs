//! Reading a recipe from disk: TOML parsed with spans, unknown keys and bad values reported as `file:line:col`,
//! relative paths resolved against the recipe's folder.

use std::path::{Path, PathBuf};

use texaug_stages::file_read::read_input_file;
use texaug_stages::files::sha256_hex;

use super::diagnostic::{Diagnostic, Diagnostics};
use super::recipe::{looks_like_hub_id, LoadedRecipe, Recipe};
use super::recipe_checks::semantic_checks;
use super::recipe_schema::Spans;

/// The largest recipe read: recipes are hand-written TOML of a few kilobytes, so anything this big is a wrong path.
pub const MAX_RECIPE_BYTES: u64 = 16 << 20;

/// Reads, checks and resolves a recipe; any problem is an error listing all of them.
pub fn load(path: &Path) -> Result<LoadedRecipe, Diagnostics> {
    let (loaded, diags) = check(path);
    match loaded {
        Some(l) if diags.is_empty() => Ok(l),
        _ => Err(Diagnostics(diags)),
    }
}

/// Reads and checks a recipe, returning it (when it parses) and every problem found.
pub fn check(path: &Path) -> (Option<LoadedRecipe>, Vec<Diagnostic>) {
    let read = read_input_file(path, MAX_RECIPE_BYTES).and_then(|bytes| {
        String::from_utf8(bytes).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("it is not UTF-8 text ({e}); recipes are UTF-8 TOML"),
            )
        })
    });
    let text = match read {
        Ok(t) => t,
        Err(e) => {
            let d = Diagnostic::new(
                path,
                0,
                0,
                format!("cannot read the recipe: {e}"),
                "check the path; recipes are TOML files such as recipes/demo.toml",
            );
            return (None, vec![d]);
        }
    };
    let (spans, mut diags) = Spans::parse(path, &text);
    if !diags.is_empty() {
        return (None, diags);
    }
    diags.extend(spans.unknown_keys(path, &text));
    for (key, example) in [
        ("name", "name = \"mugs-wood\""),
        ("sources", "[sources]\nmanifest = \"manifests/x.csv\""),
        ("model", "[model]\npath = \"models/sd\""),
        (
            "stage",
            "[[stage]]\nkind = \"style\"\nprompts = [\"a {label} carved from oak\"]",
        ),
    ] {
        if !spans.has_top(key) {
            diags.push(Diagnostic::new(
                path,
                1,
                1,
                format!("missing required key `{key}`"),
                format!("add:\n{example}"),
            ));
        }
    }
    if !diags.is_empty() {
        return (None, diags);
    }
    let mut recipe: Recipe = match toml::from_str(&text) {
        Ok(r) => r,
        Err(e) => {
            let offset = e.span().map_or(0, |s| s.start);
            diags.push(Diagnostic::at_offset(
                path,
                &text,
                offset,
                e.message().trim().to_string(),
                "see recipes/demo.toml for the expected keys and types",
            ));
            return (None, diags);
        }
    };
    diags.extend(semantic_checks(path, &text, &spans, &recipe));
    // In file order, as a reader fixes them.
    diags.sort_by_key(|d| (d.line, d.col));
    let base = path.parent().unwrap_or(Path::new("."));
    resolve_paths(&mut recipe, base);
    let hash = sha256_hex(text.as_bytes());
    let loaded = LoadedRecipe {
        path: path.to_path_buf(),
        text,
        hash,
        recipe,
    };
    (Some(loaded), diags)
}

fn resolve(base: &Path, p: &mut PathBuf) {
    if p.is_relative() {
        *p = base.join(&*p);
    }
}

fn resolve_paths(r: &mut Recipe, base: &Path) {
    if let Some(d) = r.depth.as_mut() {
        d.estimator_written = d
            .estimator
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned());
    }
    for p in [
        r.output.as_mut(),
        r.sources.manifest.as_mut(),
        r.sources.dir.as_mut(),
        r.model.path.as_mut(),
        r.model.vae.as_mut(),
        r.depth.as_mut().and_then(|d| d.estimator.as_mut()),
    ]
    .into_iter()
    .flatten()
    {
        resolve(base, p);
    }
    // A `config` is a folder (relative to the recipe) unless it reads as a hub id and no such folder exists.
    if let Some(c) = r.model.config.as_mut() {
        let local = base.join(&*c);
        if Path::new(c.as_str()).is_relative() && (local.exists() || !looks_like_hub_id(c)) {
            *c = local.to_string_lossy().into_owned();
        }
    }
    for l in &mut r.model.loras {
        resolve(base, &mut l.path);
    }
    for e in &mut r.model.embeddings {
        resolve(base, &mut e.path);
    }
    for s in &mut r.stages {
        for l in &mut s.loras {
            resolve(base, &mut l.path);
        }
        if let Some(c) = s.controlnet.as_mut() {
            resolve(base, c);
        }
        if let Some(b) = s.backgrounds.as_mut() {
            resolve(base, b);
        }
    }
    if let Some(p) = r.score.as_mut().and_then(|s| s.path.as_mut()) {
        resolve(base, p);
    }
}

#[cfg(test)]
#[path = "recipe_tests.rs"]
mod tests;
