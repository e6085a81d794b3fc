//! The keys of a `kind = "render"` stage checked against their ranges and each other, each problem located at
//! its key: what it renders (`after`), where the cameras stand, the light, the background and the file format.

use super::recipe::{Recipe, Span, StageKind};
use super::recipe_schema::{Key, Spans};

/// A problem at a key path: the path, the message, the fix.
pub type Located = (Vec<Key<'static>>, String, String);

/// The keys of style and depth stages, which a render stage does not take.
const NOT_FOR_RENDER: &[&str] = &[
    "prompts",
    "negative_prompt",
    "strength",
    "steps",
    "scheduler",
    "guidance",
    "loras",
    "sharpness",
    "gutter",
    "sync",
    "controlnet",
    "conditioning_scale",
];

fn span_ok(span: Span, lo: f64, hi: f64) -> bool {
    let [a, b] = span.bounds();
    a.is_finite() && b.is_finite() && a <= b && a >= lo && b <= hi
}

/// The problems of stage `i`, a render stage of `r`.
pub fn render_checks(r: &Recipe, i: usize, spans: &Spans<'_>) -> Vec<Located> {
    use Key::{Index, Name};
    let s = &r.stages[i];
    let mut out: Vec<Located> = Vec::new();
    let p = |k: &'static str| vec![Name("stage"), Index(i), Name(k)];
    let mut at =
        |k: &'static str, message: String, fix: &str| out.push((p(k), message, fix.into()));
    for key in NOT_FOR_RENDER {
        if spans.has(&p(key)) {
            at(
                key,
                format!("`{key}` does not apply to a render stage (it renders, it runs no model)"),
                &format!("remove `{key}`; set it on the stage the render comes after"),
            );
        }
    }
    if let Some(after) = &s.after {
        match r.stages.iter().find(|t| &t.stage_name() == after) {
            None => {
                let names: Vec<String> = r
                    .stages
                    .iter()
                    .filter(|t| t.kind != StageKind::Render)
                    .map(|t| t.stage_name())
                    .collect();
                at(
                    "after",
                    format!("after = \"{after}\" names no stage of this recipe"),
                    &format!(
                        "name one of: {} (or remove `after` to render the source meshes)",
                        names.join(", ")
                    ),
                );
            }
            Some(t) if t.kind == StageKind::Render => at(
                "after",
                format!("after = \"{after}\" names a render stage; a render renders re-textured or source meshes"),
                "name a style or depth stage",
            ),
            Some(_) => {
                let earlier = r.stages[..i]
                    .iter()
                    .any(|t| t.kind == StageKind::Render && t.after.as_deref() == Some(after));
                if earlier {
                    at(
                        "after",
                        format!("two render stages come after `{after}`"),
                        "render one stage once: give one render stage more views, or render another stage",
                    );
                }
            }
        }
    }
    if s.views.is_some_and(|v| v == 0 || v > 1024) {
        at(
            "views",
            "a render stage's views (per mesh) must be in 1..=1024".into(),
            "write views = 8",
        );
    }
    if s.size < 16 || s.size > 4096 {
        at(
            "size",
            format!(
                "a render's size must be in 16..=4096 pixels, found {}",
                s.size
            ),
            "write size = 512",
        );
    }
    if s.azimuth.is_some_and(|a| !span_ok(a, -3600.0, 3600.0)) {
        at(
            "azimuth",
            "azimuth must be degrees, a number or [lo, hi] with lo <= hi".into(),
            "write azimuth = [0, 360] (the full turn) or [-45, 45] (the front)",
        );
    }
    if s.elevation.is_some_and(|e| !span_ok(e, -90.0, 90.0)) {
        at(
            "elevation",
            "elevation must lie in [-90, 90] degrees, lo <= hi".into(),
            "write elevation = [10, 40]",
        );
    }
    if s.fov.is_some_and(|f| !span_ok(f, 1.0, 170.0)) {
        at(
            "fov",
            "fov (vertical field of view) must lie in [1, 170] degrees, lo <= hi".into(),
            "write fov = 40 or fov = [30, 60]",
        );
    }
    if s.jitter
        .is_some_and(|j| !(j.is_finite() && (0.0..=180.0).contains(&j)))
    {
        at(
            "jitter",
            "jitter must be degrees in [0, 180]".into(),
            "write jitter = 10",
        );
    }
    if s.fill
        .is_some_and(|f| !(f.is_finite() && f > 0.0 && f <= 1.0))
    {
        at(
            "fill",
            "fill (the share of the frame the object spans) must lie in (0, 1]".into(),
            "write fill = 0.8",
        );
    }
    if s.supersample.is_some_and(|n| n == 0 || n > 8) {
        at(
            "supersample",
            "supersample must be in 1..=8".into(),
            "write supersample = 2 (1 turns anti-aliasing off)",
        );
    }
    if s.ambient
        .is_some_and(|a| !(a.is_finite() && (0.0..=1.0).contains(&a)))
    {
        at(
            "ambient",
            "ambient must lie in [0, 1]".into(),
            "write ambient = 0.35",
        );
    }
    let background = s.background.as_deref().unwrap_or("solid");
    match background {
        "solid" | "random" | "images" => {}
        other => at(
            "background",
            format!("unknown background `{other}`"),
            "use \"solid\" (with background_color), \"random\" or \"images\" (with backgrounds = \"folder\")",
        ),
    }
    if background == "images" && s.backgrounds.is_none() {
        at(
            "background",
            "background = \"images\" needs a folder of images".into(),
            "add backgrounds = \"backgrounds/\" (PNG, JPEG or WebP files)",
        );
    }
    if s.backgrounds.is_some() && background != "images" {
        at(
            "backgrounds",
            "`backgrounds` applies to background = \"images\"".into(),
            "add background = \"images\", or remove backgrounds",
        );
    }
    if s.background_color.is_some() && background != "solid" {
        at(
            "background_color",
            "`background_color` applies to background = \"solid\"".into(),
            "remove background_color, or set background = \"solid\"",
        );
    }
    let format = s.format.as_deref().unwrap_or("png");
    if !matches!(format, "png" | "jpeg") {
        at(
            "format",
            format!("unknown format `{format}`"),
            "use \"png\" (lossless) or \"jpeg\" (with quality = 90)",
        );
    }
    if let Some(q) = s.quality {
        if format != "jpeg" {
            at(
                "quality",
                "`quality` applies to format = \"jpeg\"".into(),
                "add format = \"jpeg\", or remove quality",
            );
        } else if q == 0 || q > 100 {
            at(
                "quality",
                "quality must be in 1..=100".into(),
                "write quality = 90",
            );
        }
    }
    out
}
