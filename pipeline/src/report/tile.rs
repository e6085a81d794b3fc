//! One sample as the page shows it (a [`Tile`]), and the checks that stand between a row's paths and any file
//! being opened: a path leading out of the output folder, or an id that is no texaug sample id, becomes a
//! [`Failure`] instead.

use serde::Serialize;

use crate::output::layout::is_sample_id;
use crate::output::record::SampleRecord;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failure {
    pub sample_id: String,
    pub stage: String,
    pub label: String,
    pub source_id: String,
    pub error: String,
    /// "run" for a failed row, "report" for a problem found while making the page (a bad path, an unreadable image).
    pub found_by: &'static str,
}

/// One sample on the page. Paths are relative to the report folder, so the output folder can be moved whole.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tile {
    pub sample_id: String,
    pub status: String,
    /// `thumbs/<sample_id>.png`, while the sample has an image to show.
    pub thumb: Option<String>,
    /// The full image under `../samples/`.
    pub full: Option<String>,
    /// A mesh sample's GLB under `../samples/`.
    pub asset: Option<String>,
    pub caption: String,
    pub tooltip: String,
    /// The start of the tooltip, for a tile without an image.
    pub short: String,
    /// The size the thumbnail is shown at: its own, scaled to fill the tile (a 64 px image is shown at 160 px).
    pub size: Option<[u32; 2]>,
    /// The object's box in percent of the image (left, top, width, height), drawn over a rendered view.
    pub bbox: Option<[f64; 4]>,
    #[serde(skip)]
    pub azimuth_deg: Option<f64>,
    /// The image to downscale, relative to the output folder; checked by [`checked_rel`].
    #[serde(skip)]
    pub source: Option<String>,
}

/// A row's path relative to the output folder, refused when it could lead outside it: absolute, or with a `..`
/// segment (either separator, so a path written on another system cannot slip through).
pub fn checked_rel(path: &str) -> Result<&str, String> {
    let refuse = |why: &str| Err(format!("the path {path:?} {why}; it was not followed"));
    if path.is_empty() {
        return refuse("is empty");
    }
    if path.starts_with(['/', '\\']) || path.get(1..2) == Some(":") {
        return refuse("is absolute");
    }
    if path.split(['/', '\\']).any(|segment| segment == "..") {
        return refuse("climbs out of the output folder (`..`)");
    }
    Ok(path)
}

/// The azimuth of a rendered view, from the camera JSON its row records.
pub fn azimuth_deg(camera: Option<&str>) -> Option<f64> {
    let value: serde_json::Value = serde_json::from_str(camera?).ok()?;
    value.get("azimuth_deg")?.as_f64()
}

pub fn shorten(text: &str, chars: usize) -> String {
    match text.char_indices().nth(chars) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

pub fn failure(r: &SampleRecord, error: &str, found_by: &'static str) -> Failure {
    Failure {
        sample_id: r.sample_id.clone(),
        stage: r.stage.clone(),
        label: r.label.clone(),
        source_id: r.source_id.clone(),
        error: error.to_string(),
        found_by,
    }
}

pub fn tile(r: &SampleRecord, problems: &mut Vec<Failure>) -> Tile {
    let mut problem = |e: String| problems.push(failure(r, &e, "report"));
    let image = r.image_path.clone().or_else(|| {
        let textures = r.texture_path.as_deref().unwrap_or("");
        textures
            .split(';')
            .map(str::trim)
            .find(|t| !t.is_empty())
            .map(String::from)
    });
    let image = image.filter(|p| match checked_rel(p) {
        Ok(_) => true,
        Err(e) => {
            problem(e);
            false
        }
    });
    let asset = r.asset_path.as_deref().filter(|p| match checked_rel(p) {
        Ok(_) => true,
        Err(e) => {
            problem(e);
            false
        }
    });
    // The id names the thumbnail file, so it must be one texaug made.
    let named = is_sample_id(&r.sample_id);
    if !named {
        problem(format!(
            "{:?} is not a texaug sample id; its thumbnail was not made",
            r.sample_id
        ));
    }
    let bbox = match (r.bbox_x, r.bbox_y, r.bbox_w, r.bbox_h, r.width, r.height) {
        (Some(x), Some(y), Some(w), Some(h), Some(iw), Some(ih)) if iw > 0 && ih > 0 => {
            let (iw, ih) = (iw as f64, ih as f64);
            let pct = |v: i64, of: f64| (1000.0 * v as f64 / of).round() / 10.0;
            Some([pct(x, iw), pct(y, ih), pct(w, iw), pct(h, ih)])
        }
        _ => None,
    };
    let tooltip = match &r.error {
        Some(e) => e.clone(),
        None => format!("{} (seed {}, strength {})", r.prompt, r.seed, r.strength),
    };
    let ok = r.status != "failed";
    Tile {
        sample_id: r.sample_id.clone(),
        status: r.status.clone(),
        thumb: (ok && named && image.is_some()).then(|| format!("thumbs/{}.png", r.sample_id)),
        full: image.as_ref().map(|p| format!("../{p}")),
        asset: asset.map(|p| format!("../{p}")),
        caption: r.source_id.clone(),
        short: shorten(&tooltip, 90),
        tooltip,
        size: None,
        bbox,
        azimuth_deg: azimuth_deg(r.camera.as_deref()),
        source: image.filter(|_| ok && named),
    }
}
