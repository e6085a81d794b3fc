//! What `run.toml` says about the run behind an output: its name, its stages (name and kind), and the recipe's
//! text. An output without a readable `run.toml` still gets a page, from its rows alone.

use std::path::Path;

use texaug_stages::files::sha256_hex;

use super::model::{RecipeText, StageInfo};
use crate::output::layout::RUN_TOML;

#[derive(Debug, Default)]
pub struct RunInfo {
    pub name: Option<String>,
    pub stages: Vec<StageInfo>,
    pub recipe: RecipeText,
}

pub fn read_run_info(output: &Path) -> RunInfo {
    let path = output.join(RUN_TOML);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) => {
            return RunInfo {
                recipe: RecipeText {
                    origin: format!("nowhere: {RUN_TOML} cannot be read ({e})"),
                    text: String::new(),
                },
                ..RunInfo::default()
            }
        }
    };
    let doc: toml::Table = match text.parse() {
        Ok(doc) => doc,
        Err(e) => {
            return RunInfo {
                recipe: RecipeText {
                    origin: format!("{RUN_TOML}, which does not parse ({})", e.message()),
                    text,
                },
                ..RunInfo::default()
            }
        }
    };
    let recipe = doc.get("recipe").and_then(toml::Value::as_table);
    let str_of = |table: Option<&toml::Table>, key: &str| {
        table
            .and_then(|t| t.get(key))
            .and_then(toml::Value::as_str)
            .map(String::from)
    };
    let stages = recipe
        .and_then(|r| r.get("stage"))
        .and_then(toml::Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(toml::Value::as_table)
                .filter_map(|s| {
                    let kind = str_of(Some(s), "kind")?;
                    let name = str_of(Some(s), "name").unwrap_or_else(|| kind.clone());
                    Some(StageInfo { name, kind })
                })
                .collect()
        })
        .unwrap_or_default();
    RunInfo {
        name: str_of(recipe, "name"),
        stages,
        recipe: recipe_text(&doc, recipe),
    }
}

/// The recipe file `run.toml` names, comments and all, while its hash still proves it the one that ran; else the
/// recipe as `run.toml` records it (resolved, without comments).
fn recipe_text(doc: &toml::Table, recipe: Option<&toml::Table>) -> RecipeText {
    let file = doc.get("recipe_file").and_then(toml::Value::as_str);
    let hash = doc.get("recipe_hash").and_then(toml::Value::as_str);
    if let (Some(file), Some(hash)) = (file, hash) {
        if let Ok(text) = std::fs::read_to_string(file) {
            if sha256_hex(text.as_bytes()) == hash {
                return RecipeText {
                    origin: format!("{file} (its sha256 matches the run's recipe_hash)"),
                    text,
                };
            }
        }
    }
    let why = match file {
        Some(f) => format!("{f} is gone or has changed since the run"),
        None => "it names no recipe file".to_string(),
    };
    RecipeText {
        origin: format!("{RUN_TOML}'s [recipe], as the run resolved it ({why})"),
        text: recipe
            .and_then(|r| toml::to_string_pretty(r).ok())
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_and_recipe_come_from_run_toml() {
        let dir = tempfile::tempdir().unwrap();
        let recipe = dir.path().join("r.toml");
        let text = "# a comment\nname = \"demo\"\n";
        std::fs::write(&recipe, text).unwrap();
        let run = format!(
            "recipe_file = {:?}\nrecipe_hash = \"{}\"\n[recipe]\nname = \"demo\"\n\
             [[recipe.stage]]\nkind = \"style\"\n[[recipe.stage]]\nkind = \"render\"\nname = \"views\"\n",
            recipe.display().to_string(),
            sha256_hex(text.as_bytes())
        );
        std::fs::write(dir.path().join(RUN_TOML), &run).unwrap();
        let info = read_run_info(dir.path());
        assert_eq!(info.name.as_deref(), Some("demo"));
        let kinds: Vec<(&str, &str)> = info
            .stages
            .iter()
            .map(|s| (s.name.as_str(), s.kind.as_str()))
            .collect();
        assert_eq!(kinds, [("style", "style"), ("views", "render")]);
        assert_eq!(info.recipe.text, text);
        std::fs::write(&recipe, "name = \"edited\"\n").unwrap();
        let info = read_run_info(dir.path());
        assert!(
            info.recipe.origin.contains("has changed"),
            "{}",
            info.recipe.origin
        );
        assert!(
            info.recipe.text.contains("name = \"demo\""),
            "{}",
            info.recipe.text
        );
        assert!(read_run_info(&dir.path().join("none"))
            .recipe
            .origin
            .starts_with("nowhere"));
    }
}
