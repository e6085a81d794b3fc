use super::*;
use crate::output::record::tests::record;
use crate::report::tile::{azimuth_deg, checked_rel};

const LIMITS: Limits = Limits {
    per_cell: 8,
    strips: 8,
    failures: 100,
};

fn id(n: u32) -> String {
    format!("{n:016x}")
}

fn row(n: u32, stage: &str, label: &str, status: &str) -> SampleRecord {
    let sample_id = id(n);
    SampleRecord {
        stage: stage.into(),
        label: label.into(),
        source_id: format!("src-{label}"),
        image_path: Some(format!("samples/{}/{sample_id}/image.png", &sample_id[..2])),
        ..record(&sample_id, status)
    }
}

fn view(n: u32, parent: &str, variant: i64, azimuth: Option<f64>) -> SampleRecord {
    SampleRecord {
        variant,
        parent_sample_id: Some(parent.into()),
        camera: azimuth.map(|a| format!(r#"{{"azimuth_deg": {a}, "elevation_deg": 20}}"#)),
        bbox_x: Some(16),
        bbox_y: Some(8),
        bbox_w: Some(32),
        bbox_h: Some(24),
        ..row(
            n,
            "views",
            "mug",
            if azimuth.is_some() { "ok" } else { "failed" },
        )
    }
}

fn stages() -> Vec<StageInfo> {
    ["style", "views"]
        .iter()
        .zip(["style", "render"])
        .map(|(name, kind)| StageInfo {
            name: name.to_string(),
            kind: kind.into(),
        })
        .collect()
}

fn page(rows: &[SampleRecord]) -> Page {
    build_page("t", rows, &stages(), RecipeText::default(), LIMITS)
}

#[test]
fn counts_per_stage_and_label_split_ok_failed_and_other() {
    let rows = vec![
        row(1, "style", "mug", "ok"),
        row(2, "style", "mug", "failed"),
        row(3, "style", "cup", "filtered"),
        view(4, &id(1), 0, Some(0.0)),
        view(5, &id(1), 1, None),
    ];
    let p = page(&rows);
    let t = |name: &str, ok, failed, other| Tally {
        name: name.into(),
        ok,
        failed,
        other,
    };
    assert_eq!(p.total, t("all", 2, 2, 1));
    assert_eq!(p.stages, [t("style", 1, 1, 1), t("views", 1, 1, 0)]);
    assert_eq!(p.labels, [t("cup", 0, 0, 1), t("mug", 2, 2, 0)]);
    let failed: Vec<(&str, &str)> = p
        .failures
        .iter()
        .map(|f| (f.sample_id.as_str(), f.found_by))
        .collect();
    assert_eq!(failed, [(id(2).as_str(), "run"), (id(5).as_str(), "run")]);
    assert_eq!(p.failures[0].error, "bad");
}

#[test]
fn a_strip_shows_a_parents_views_by_azimuth_with_failed_views_last() {
    let parent = id(1);
    let rows = vec![
        row(1, "style", "mug", "ok"),
        view(9, &parent, 0, Some(270.0)),
        view(8, &parent, 1, None),
        view(7, &parent, 2, Some(0.0)),
        view(6, &parent, 3, Some(90.0)),
    ];
    let p = page(&rows);
    assert_eq!(p.strips.len(), 1);
    let strip = &p.strips[0];
    assert!(strip.title.contains(&parent), "{}", strip.title);
    let order: Vec<(&str, &str)> = strip
        .tiles
        .iter()
        .map(|t| (t.sample_id.as_str(), t.caption.as_str()))
        .collect();
    assert_eq!(
        order,
        [
            (id(7).as_str(), "0°"),
            (id(6).as_str(), "90°"),
            (id(9).as_str(), "270°"),
            (id(8).as_str(), "view 1"),
        ]
    );
    // 64 × 48 pixels (the record's size): the box in percent of each side.
    assert_eq!(strip.tiles[0].bbox, Some([25.0, 16.7, 50.0, 50.0]));
    assert_eq!(strip.tiles[3].thumb, None, "a failed view has no image");
    assert_eq!(
        strip.tiles[0].full.as_deref(),
        Some(format!("../samples/00/{}/image.png", id(7)).as_str())
    );
    // Rendered views stay out of the grid.
    assert_eq!(p.grid.columns, ["style · v0"]);
    let mut p = p;
    p.thumb_made(&id(7), [64, 48], 160);
    assert_eq!(p.strips[0].tiles[0].size, Some([160, 120]));
}

#[test]
fn the_grid_has_a_row_per_label_and_a_column_per_stage_variant() {
    let mut mesh = row(3, "style", "crate", "ok");
    mesh.image_path = None;
    mesh.texture_path = Some(format!(
        "samples/00/{0}/tex0.png;samples/00/{0}/tex1.png",
        id(3)
    ));
    mesh.asset_path = Some(format!("samples/00/{}/mesh.glb", id(3)));
    let mut second = row(2, "style", "mug", "ok");
    second.variant = 1;
    let p = page(&[row(1, "style", "mug", "ok"), second, mesh]);
    assert_eq!(p.grid.columns, ["style · v0", "style · v1"]);
    let labels: Vec<&str> = p.grid.rows.iter().map(|r| r.label.as_str()).collect();
    assert_eq!(labels, ["crate", "mug"]);
    let crate_tile = &p.grid.rows[0].cells[0].tiles[0];
    assert_eq!(
        crate_tile.source.as_deref(),
        Some(format!("samples/00/{}/tex0.png", id(3)).as_str())
    );
    assert_eq!(
        crate_tile.thumb.as_deref(),
        Some(format!("thumbs/{}.png", id(3)).as_str())
    );
    assert_eq!(
        crate_tile.asset.as_deref(),
        Some(format!("../samples/00/{}/mesh.glb", id(3)).as_str())
    );
    assert!(p.grid.rows[0].cells[1].tiles.is_empty());
    assert_eq!(p.grid.rows[1].cells[1].tiles[0].sample_id, id(2));
    assert!(p.failures.is_empty());
}

#[test]
fn paths_leading_out_of_the_output_are_failures_not_thumbnails() {
    let mut up = row(1, "style", "mug", "ok");
    up.image_path = Some("samples/../../../etc/passwd".into());
    let mut absolute = row(2, "style", "mug", "ok");
    absolute.image_path = Some("/etc/passwd".into());
    let mut windows = row(3, "style", "mug", "ok");
    windows.texture_path = Some("samples\\..\\..\\x.png".into());
    windows.image_path = None;
    let not_an_id = SampleRecord {
        image_path: Some("samples/x.png".into()),
        ..record("../../x", "ok")
    };
    let p = page(&[up, absolute, windows, not_an_id]);
    assert!(p
        .grid
        .rows
        .iter()
        .flat_map(|r| &r.cells)
        .flat_map(|c| &c.tiles)
        .all(|t| t.thumb.is_none() && t.source.is_none()));
    let errors: Vec<&str> = p.failures.iter().map(|f| f.error.as_str()).collect();
    assert_eq!(
        p.failures.iter().filter(|f| f.found_by == "report").count(),
        4,
        "{errors:?}"
    );
    assert!(
        errors.iter().filter(|e| e.contains("climbs out")).count() == 2,
        "{errors:?}"
    );
    assert!(
        errors.iter().any(|e| e.contains("is absolute")),
        "{errors:?}"
    );
    assert!(
        errors.iter().any(|e| e.contains("not a texaug sample id")),
        "{errors:?}"
    );
    assert_eq!(
        checked_rel("samples/ab/x/image.png"),
        Ok("samples/ab/x/image.png")
    );
    assert!(checked_rel("C:/x").is_err() && checked_rel("").is_err());
}

#[test]
fn error_text_stays_raw_in_the_model_for_the_template_to_escape() {
    let mut bad = row(1, "style", "mug", "failed");
    bad.error = Some("<script>alert(1)</script>".into());
    let mut p = page(&[bad.clone()]);
    assert_eq!(p.failures[0].error, "<script>alert(1)</script>");
    assert_eq!(
        p.grid.rows[0].cells[0].tiles[0].tooltip,
        "<script>alert(1)</script>"
    );
    p.thumb_failed(&id(1), "cannot decode <img>", &bad);
    assert_eq!(p.failures.len(), 2);
    assert!(p
        .failures
        .iter()
        .any(|f| f.found_by == "report" && f.error == "cannot decode <img>"));
}

#[test]
fn limits_cap_cells_strips_and_failures_but_not_counts() {
    let rows: Vec<SampleRecord> = (1..=5).map(|n| row(n, "style", "mug", "failed")).collect();
    let small = Limits {
        per_cell: 2,
        strips: 0,
        failures: 3,
    };
    let p = build_page("t", &rows, &stages(), RecipeText::default(), small);
    assert_eq!(p.total.failed, 5);
    assert_eq!((p.failures.len(), p.failures_left_out), (3, 2));
    let cell = &p.grid.rows[0].cells[0];
    assert_eq!((cell.tiles.len(), cell.more), (2, 3));
    assert_eq!(azimuth_deg(Some(r#"{"azimuth_deg": 42.5}"#)), Some(42.5));
    assert_eq!(azimuth_deg(Some("not json")), None);
}
