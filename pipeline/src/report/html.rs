//! The page as HTML: [`Page`] rendered through `index.html.j2` with every value HTML-escaped (error texts and
//! prompts come from the manifest and may hold markup).

use anyhow::{Context, Result};
use minijinja::value::{Serde, Value};
use minijinja::{AutoEscape, Environment, UndefinedBehavior};

use super::model::Page;

const TEMPLATE: &str = include_str!("index.html.j2");

pub fn render_page(page: &Page) -> Result<String> {
    let mut env = Environment::new();
    // Escaping is decided here, not by the template's file name.
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    // A misspelt field in the template is an error, not a silently empty spot on the page.
    env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
    env.add_template("index.html", TEMPLATE)
        .context("the report template does not parse")?;
    let template = env.get_template("index.html")?;
    template
        .render(Value::from(Serde(page)))
        .map_err(|e| anyhow::anyhow!("rendering the report: {e:#}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::record::tests::record;
    use crate::report::model::{build_page, Limits, RecipeText, StageInfo};

    #[test]
    fn error_text_and_recipe_are_escaped() {
        let mut bad = record("00000000000000aa", "failed");
        bad.error = Some("<script>alert('x')</script> & more".into());
        let page = build_page(
            "demo <b>",
            &[record("00000000000000ab", "ok"), bad],
            &[StageInfo {
                name: "style".into(),
                kind: "style".into(),
            }],
            RecipeText {
                origin: "run.toml".into(),
                text: "name = \"</pre><script>\"".into(),
            },
            Limits {
                per_cell: 4,
                strips: 4,
                failures: 10,
            },
        );
        let html = render_page(&page).unwrap();
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(!html.contains("</pre><script>"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(&#x27;x&#x27;)&lt;&#x2f;script&gt; &amp; more"));
        assert!(html.contains("demo &lt;b&gt;"));
        assert!(html.contains("no CLIP scores in this output"));
        assert!(html.contains("thumbs&#x2f;00000000000000ab.png"));
    }
}
