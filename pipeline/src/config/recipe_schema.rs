//! The recipe's key schema, checked on the spanned TOML tree so that EVERY unknown key is reported with its line and
//! column (serde stops at the first), and so later checks can point at the value they complain about.

use super::diagnostic::Diagnostic;
use std::ops::Range;
use std::path::Path;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

pub const TOP_KEYS: &[&str] = &[
    "name", "seed", "output", "sources", "model", "devices", "depth", "score", "stage",
];
pub const SCORE_KEYS: &[&str] = &["path", "id", "prompt"];
pub const DEPTH_KEYS: &[&str] = &["estimator", "size", "mean", "std"];
pub const SOURCES_KEYS: &[&str] = &["manifest", "dir", "label"];
pub const MODEL_KEYS: &[&str] = &[
    "path",
    "id",
    "variant",
    "config",
    "kind",
    "vae",
    "ema",
    "lora",
    "embedding",
    "dtype",
    "scheduler",
];
pub const LORA_KEYS: &[&str] = &["path", "scale"];
pub const EMBEDDING_KEYS: &[&str] = &["path", "token", "label"];
pub const DEVICES_KEYS: &[&str] = &["use", "batch", "queue_mib", "threads"];
pub const STAGE_KEYS: &[&str] = &[
    "kind",
    "name",
    "prompts",
    "negative_prompt",
    "strength",
    "steps",
    "scheduler",
    "guidance",
    "variants",
    "size",
    "fit",
    "views",
    "sharpness",
    "gutter",
    "sync",
    "controlnet",
    "conditioning_scale",
    "loras",
    "after",
    "azimuth",
    "elevation",
    "fov",
    "jitter",
    "fill",
    "supersample",
    "ambient",
    "background",
    "background_color",
    "backgrounds",
    "format",
    "quality",
    "min_clip_score",
    "keep_filtered",
];

/// One step of a key path: a table key or an array index.
#[derive(Debug, Clone, Copy)]
pub enum Key<'a> {
    Name(&'a str),
    Index(usize),
}

/// The parsed, spanned document, for locating values.
pub struct Spans<'i> {
    root: Spanned<DeTable<'i>>,
}

impl<'i> Spans<'i> {
    /// Parses `text`; syntax errors come back as diagnostics (all of them, with recovery).
    pub fn parse(file: &Path, text: &'i str) -> (Spans<'i>, Vec<Diagnostic>) {
        let (root, errors) = DeTable::parse_recoverable(text);
        let diags = errors
            .into_iter()
            .map(|e| {
                let offset = e.span().map_or(0, |s| s.start);
                Diagnostic::at_offset(
                    file,
                    text,
                    offset,
                    format!("TOML syntax: {}", e.message().trim()),
                    "fix the TOML syntax at this place (strings need quotes, arrays use [ ], tables [name])",
                )
            })
            .collect();
        (Spans { root }, diags)
    }

    /// The span of the value at `path` (or of the closest existing parent), and whether the whole path exists.
    fn lookup(&self, path: &[Key<'_>]) -> (Range<usize>, bool) {
        let mut best = self.root.span();
        let mut table: Option<&DeTable<'_>> = Some(self.root.get_ref());
        let mut value: Option<&Spanned<DeValue<'_>>> = None;
        for key in path {
            let next = match (key, table, value) {
                (Key::Name(name), Some(t), _) => t.get(*name),
                (Key::Index(i), _, Some(v)) => v.get_ref().as_array().and_then(|a| a.get(*i)),
                _ => None,
            };
            let Some(next) = next else {
                return (best, false);
            };
            best = next.span();
            table = next.get_ref().as_table();
            value = Some(next);
        }
        (best, true)
    }

    /// The span of the value at `path`, or of the closest existing parent.
    pub fn span(&self, path: &[Key<'_>]) -> Range<usize> {
        self.lookup(path).0
    }

    /// Whether the document writes a value at `path` (not a default serde filled in).
    pub fn has(&self, path: &[Key<'_>]) -> bool {
        self.lookup(path).1
    }

    /// The span of the key itself at `path` (for "unknown key" and "missing" messages), falling back to the value.
    fn key_span(table: &DeTable<'_>, name: &str) -> Option<Range<usize>> {
        table
            .iter()
            .find(|(k, _)| k.get_ref().as_ref() == name)
            .map(|(k, _)| k.span())
    }

    /// Every key not in the schema, at every level.
    pub fn unknown_keys(&self, file: &Path, text: &str) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        let root = self.root.get_ref();
        check_table(file, text, root, "the top level", TOP_KEYS, &mut out);
        for (name, keys) in [
            ("sources", SOURCES_KEYS),
            ("model", MODEL_KEYS),
            ("devices", DEVICES_KEYS),
            ("depth", DEPTH_KEYS),
            ("score", SCORE_KEYS),
        ] {
            if let Some(t) = root.get(name).and_then(|v| v.get_ref().as_table()) {
                check_table(file, text, t, &format!("[{name}]"), keys, &mut out);
            }
        }
        for (table, keys) in [("lora", LORA_KEYS), ("embedding", EMBEDDING_KEYS)] {
            let entries = root
                .get("model")
                .and_then(|v| v.get_ref().as_table())
                .and_then(|m| m.get(table))
                .and_then(|v| v.get_ref().as_array());
            for (i, l) in entries.into_iter().flatten().enumerate() {
                if let Some(t) = l.get_ref().as_table() {
                    let what = format!("[[model.{table}]] #{}", i + 1);
                    check_table(file, text, t, &what, keys, &mut out);
                }
            }
        }
        if let Some(stages) = root.get("stage").and_then(|v| v.get_ref().as_array()) {
            for (i, s) in stages.iter().enumerate() {
                if let Some(t) = s.get_ref().as_table() {
                    let what = format!("[[stage]] #{}", i + 1);
                    check_table(file, text, t, &what, STAGE_KEYS, &mut out);
                    let loras = t.get("loras").and_then(|v| v.get_ref().as_array());
                    for (j, l) in loras.into_iter().flatten().enumerate() {
                        if let Some(lt) = l.get_ref().as_table() {
                            let what = format!("[[stage]] #{} loras #{}", i + 1, j + 1);
                            check_table(file, text, lt, &what, LORA_KEYS, &mut out);
                        }
                    }
                }
            }
        }
        out
    }

    /// Whether the document has a key at the top level (for "missing key" checks without serde's first-error stop).
    pub fn has_top(&self, name: &str) -> bool {
        Self::key_span(self.root.get_ref(), name).is_some()
    }
}

fn check_table(
    file: &Path,
    text: &str,
    table: &DeTable<'_>,
    what: &str,
    valid: &[&str],
    out: &mut Vec<Diagnostic>,
) {
    for (key, _) in table.iter() {
        let name = key.get_ref().as_ref();
        if !valid.contains(&name) {
            let hint = closest(name, valid)
                .map(|c| format!("did you mean `{c}`? "))
                .unwrap_or_default();
            out.push(Diagnostic::at_offset(
                file,
                text,
                key.span().start,
                format!("unknown key `{name}` in {what}"),
                format!("{hint}valid keys are: {}", valid.join(", ")),
            ));
        }
    }
}

/// The valid key nearest to a misspelt one, when it is close enough to be a likely typo.
fn closest<'a>(name: &str, valid: &[&'a str]) -> Option<&'a str> {
    valid
        .iter()
        .map(|v| (levenshtein(name, v), *v))
        .filter(|(d, v)| *d <= 2.max(v.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, v)| v)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(row[j]).min(cur)
            };
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unknown_key_is_reported_with_its_location() {
        let text = "name = \"x\"\nsed = 1\n[model]\npath = \"m\"\nscheduler_x = 1\n[[stage]]\nkind = \"style\"\npromts = []\n";
        let (spans, syntax) = Spans::parse(Path::new("r.toml"), text);
        assert!(syntax.is_empty());
        let diags = spans.unknown_keys(Path::new("r.toml"), text);
        let located: Vec<(usize, usize)> = diags.iter().map(|d| (d.line, d.col)).collect();
        assert_eq!(located, vec![(2, 1), (5, 1), (8, 1)]);
        assert!(diags[0].fix.contains("did you mean `seed`"));
        assert!(diags[2].fix.contains("prompts"));
    }

    #[test]
    fn span_finds_nested_values() {
        let text = "[[stage]]\nkind = \"style\"\n[[stage]]\nkind = \"depth\"\nsteps = 0\n";
        let (spans, _) = Spans::parse(Path::new("r.toml"), text);
        let span = spans.span(&[Key::Name("stage"), Key::Index(1), Key::Name("steps")]);
        assert_eq!(
            crate::config::diagnostic::line_col(text, span.start),
            (5, 9)
        );
    }

    #[test]
    fn syntax_errors_are_located() {
        let text = "name = \"x\"\nseed = = 3\n";
        let (_, diags) = Spans::parse(Path::new("r.toml"), text);
        assert!(!diags.is_empty());
        assert_eq!(diags[0].line, 2);
    }
}
