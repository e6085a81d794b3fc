//! `texaug report` end to end: a run with a style stage, a render stage and a failing source, its contact sheet,
//! every link on the page resolving inside the output folder, and the page loaded in headless Chromium with every
//! thumbnail shown and no script error. Chromium may be missing on a developer's machine (the test then says so
//! and checks the rest); under `make test` (TEXAUG_REQUIRE_CHROMIUM=1) a missing Chromium fails the test.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const DEMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../manifests/demo");

/// Two demo meshes, an image, and a file that is no image (its sample fails, so the page lists a failure).
fn setup(dir: &Path) -> PathBuf {
    std::fs::write(
        dir.join("corrupt.png"),
        b"<script>alert('not an image')</script>",
    )
    .unwrap();
    let manifest = dir.join("sources.csv");
    std::fs::write(
        &manifest,
        format!(
            "id,path,label,kind\nmug,{DEMO}/mug.glb,mug,mesh\ncrate,{DEMO}/crate.glb,wooden crate,mesh\n\
             apple,{DEMO}/apple.png,apple,image\ncorrupt,corrupt.png,apple,image\n"
        ),
    )
    .unwrap();
    let recipe = recipe_head("report", 3, "out", &manifest, tiny_model(), Some(2))
        + r#"[[stage]]
kind = "style"
prompts = ["a {label} made of wood", "a {label} made of glass"]
strength = 0.7
steps = 2
variants = 2
size = 64

[[stage]]
kind = "render"
after = "style"
views = 4
size = 64
elevation = 20
background = "random"
"#;
    let path = dir.join("recipe.toml");
    std::fs::write(&path, recipe).unwrap();
    path
}

/// The values of every `src` and `href` attribute, entities decoded (the template escapes `/` as `&#x2f;`).
fn links(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in [" src=\"", " href=\""] {
        let mut rest = html;
        while let Some(at) = rest.find(attr) {
            rest = &rest[at + attr.len()..];
            let end = rest.find('"').expect("an unterminated attribute");
            out.push(decode(&rest[..end]));
            rest = &rest[end..];
        }
    }
    out
}

fn decode(s: &str) -> String {
    [
        ("&#x2f;", "/"),
        ("&#x27;", "'"),
        ("&quot;", "\""),
        ("&lt;", "<"),
        ("&gt;", ">"),
        ("&amp;", "&"),
    ]
    .iter()
    .fold(s.to_string(), |acc, (from, to)| acc.replace(from, to))
}

/// The Chromium binary: TEXAUG_CHROMIUM, else `chromium` or `chromium-browser` on PATH.
fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("TEXAUG_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|d| [d.join("chromium"), d.join("chromium-browser")])
        .find(|p| p.is_file())
}

/// Runs headless Chromium on `page` with `args`; returns its stdout. A hung browser is killed after a minute.
fn headless(browser: &Path, profile: &Path, page: &Path, args: &[&str]) -> String {
    let log = profile.join("stdout.txt");
    let err = profile.join("stderr.txt");
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--hide-scrollbars",
        ])
        .arg(format!(
            "--user-data-dir={}",
            profile.join("profile").display()
        ))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::from(std::fs::File::create(&log).unwrap()))
        .stderr(Stdio::from(std::fs::File::create(&err).unwrap()))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", browser.display()));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium ran over a minute on {}", page.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = std::fs::read_to_string(&err).unwrap_or_default();
    assert!(
        status.success(),
        "chromium {args:?} failed: {status}\n{stderr}"
    );
    std::fs::read_to_string(&log).unwrap()
}

/// The text inside the page's `<ul id="errors">`, as the browser left it.
fn listed_errors(dom: &str) -> String {
    let start = dom
        .find("id=\"errors\"")
        .expect("the page has its #errors list");
    let open = start + dom[start..].find('>').unwrap() + 1;
    let close = open + dom[open..].find("</ul>").unwrap();
    dom[open..close].to_string()
}

#[test]
fn the_report_links_only_inside_the_output_and_loads_in_a_browser() {
    let dir = tempfile::tempdir().unwrap();
    let recipe = setup(dir.path());
    let out = dir.path().join("out");
    let o = try_run_recipe(&recipe, &out, &[]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "the corrupt source fails\n{}",
        text(&o)
    );

    let o = run(&["report", out.to_str().unwrap(), "--progress", "none"]);
    assert!(o.status.success(), "{}", text(&o));
    let index = out.join("report/index.html");
    let html = std::fs::read_to_string(&index).unwrap();
    let leftovers: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("report."))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // Every ok sample has an image (a mesh: its texture; a view: its render), so each gets a thumbnail.
    let journal =
        std::fs::read_to_string(out.join("manifest/part-0000-of-0001.journal.jsonl")).unwrap();
    let ok: BTreeSet<String> = journal
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["status"] == "ok")
        .map(|v| v["sample_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        ok.len(),
        3 * 2 + 2 * 2 * 4,
        "styled sources and their views"
    );
    let thumbs = html.matches("<img class=\"thumb\"").count();
    assert_eq!(thumbs, ok.len());
    for id in &ok {
        assert!(
            out.join(format!("report/thumbs/{id}.png")).is_file(),
            "{id}"
        );
        let t = image::open(out.join(format!("report/thumbs/{id}.png"))).unwrap();
        assert!(t.width() <= 160 && t.height() <= 160);
    }
    assert_eq!(
        html.matches("class=\"strip\"").count(),
        4,
        "a turntable per styled mesh"
    );
    for strip in html.split("<div class=\"strip\">").skip(1) {
        let strip = &strip[..strip.find("</div>\n").unwrap_or(strip.len())];
        let azimuths: Vec<f64> = strip
            .split("<figcaption>")
            .skip(1)
            .map(|c| {
                c[..c.find('°').expect("a view's caption is its azimuth")]
                    .parse()
                    .unwrap()
            })
            .collect();
        assert_eq!(azimuths.len(), 4, "{strip}");
        assert!(
            azimuths.windows(2).all(|w| w[0] <= w[1]),
            "by azimuth: {azimuths:?}"
        );
    }
    assert!(html.contains("no CLIP scores in this output"));
    assert!(
        html.contains("kind = &quot;render&quot;"),
        "the recipe is on the page"
    );
    assert!(html.contains("corrupt</td>"), "the failure is listed");
    assert!(!html.contains("<script>alert"), "the error text is escaped");

    // Every link is relative and resolves to a file inside the output folder.
    let root = out.canonicalize().unwrap();
    let report = out.join("report");
    let mut checked = 0;
    for link in links(&html) {
        if link.starts_with('#') {
            continue;
        }
        assert!(
            !link.contains("://") && !link.starts_with('/'),
            "not relative: {link}"
        );
        let target = report
            .join(&link)
            .canonicalize()
            .unwrap_or_else(|e| panic!("{link}: {e}"));
        assert!(
            target.starts_with(&root) && target.is_file(),
            "{link} → {}",
            target.display()
        );
        checked += 1;
    }
    assert!(
        checked >= 2 * ok.len(),
        "thumbnails and full images: {checked}"
    );

    let Some(browser) = chromium() else {
        assert!(
            std::env::var_os("TEXAUG_REQUIRE_CHROMIUM").is_none(),
            "TEXAUG_REQUIRE_CHROMIUM is set but no chromium is on PATH: apt-get install chromium \
             (or set TEXAUG_CHROMIUM to its binary)"
        );
        eprintln!("skipping the browser checks: no chromium on PATH (apt-get install chromium)");
        return;
    };
    let scratch = dir.path().join("chromium");
    std::fs::create_dir_all(&scratch).unwrap();
    let dump = ["--virtual-time-budget=5000", "--dump-dom"];
    let dom = headless(&browser, &scratch, &index, &dump);
    assert!(
        dom.contains("data-state=\"loaded\""),
        "the page did not finish loading:\n{dom}"
    );
    assert_eq!(listed_errors(&dom), "", "the page reported problems");
    assert_eq!(
        dom.matches("data-loaded=\"yes\"").count(),
        thumbs,
        "thumbnails shown"
    );

    // The same checks catch a broken image and a script error: a copy of the page with both must list them.
    let broken = report.join("broken.html");
    let first = html.find("src=\"thumbs&#x2f;").unwrap() + "src=\"".len();
    let bad = format!(
        "{}nothing-here-{}",
        &html[..first],
        html[first..].replacen(
            "</main>",
            "<script>texaugNoSuchFunction();</script></main>",
            1
        )
    );
    std::fs::write(&broken, bad).unwrap();
    let dom = headless(&browser, &scratch, &broken, &dump);
    std::fs::remove_file(&broken).unwrap();
    let errors = listed_errors(&dom);
    assert!(
        errors.contains("image did not load: nothing-here-thumbs/"),
        "{errors}"
    );
    assert!(errors.contains("script error"), "{errors}");
    assert_eq!(dom.matches("data-loaded=\"yes\"").count(), thumbs - 1);

    let shot = scratch.join("report.png");
    let arg = format!("--screenshot={}", shot.display());
    headless(
        &browser,
        &scratch,
        &index,
        &[
            &arg,
            "--window-size=1280,2000",
            "--virtual-time-budget=5000",
        ],
    );
    let png = image::open(&shot).unwrap().to_rgb8();
    assert_eq!((png.width(), png.height()), (1280, 2000));
    let colours: BTreeSet<[u8; 3]> = png.pixels().map(|p| p.0).collect();
    assert!(
        colours.len() > 500,
        "a blank-looking screenshot: {} colours",
        colours.len()
    );
    if let Some(copy) = std::env::var_os("TEXAUG_REPORT_SCREENSHOT") {
        std::fs::copy(&shot, copy).unwrap();
    }
}
