//! The sample record (DESIGN §3): one row per sample, written once here. Its Parquet columns, their types, the
//! writer and the reader all come from [`sample_schema!`], and the journal stores the same record as JSON.

use serde::{Deserialize, Serialize};

use super::cell::sample_schema;

sample_schema! {
/// One sample: what was made, from what, how, and where it lies (paths relative to the output folder).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SampleRecord {
    pub sample_id: String,
    pub run_id: String,
    pub recipe_hash: String,
    pub source_id: String,
    pub source_path: String,
    pub source_kind: String,
    pub label: String,
    pub split: Option<String>,
    pub stage: String,
    pub variant: i64,
    pub prompt: String,
    pub negative_prompt: String,
    pub seed: i64,
    pub strength: f64,
    pub guidance: f64,
    pub steps: i64,
    pub scheduler: String,
    pub model_id: String,
    pub model_hash: String,
    pub depth_source: Option<String>,
    pub width: Option<i64>,
    pub height: Option<i64>,
    pub image_path: Option<String>,
    /// Mesh samples: the new base-color textures, ';'-separated when a mesh has several.
    pub texture_path: Option<String>,
    pub asset_path: Option<String>,
    pub output_sha256: Option<String>,
    pub device: String,
    /// The sample's own time: its prepare, its share of the device calls it was in, its finish.
    pub duration_ms: i64,
    /// The rest of its wall time: waiting for a device, its batch or a finish thread (absent in older journals).
    pub queue_ms: Option<i64>,
    /// "ok" or "failed".
    pub status: String,
    pub error: Option<String>,
    pub texaug_version: String,
    pub views: Option<i64>,
    pub coverage: Option<f64>,
    /// Render rows: the re-textured sample the view shows (none for a render of the source mesh).
    pub parent_sample_id: Option<String>,
    /// Render rows: the instance mask (255 = object) and the 16-bit depth image (0 = background).
    pub mask_path: Option<String>,
    pub depth_path: Option<String>,
    /// Render rows: metres (the asset's units) per unit of the depth image.
    pub depth_scale_m: Option<f64>,
    /// Render rows: the tight box of the mask, in pixels (COCO's x, y, width, height).
    pub bbox_x: Option<i64>,
    pub bbox_y: Option<i64>,
    pub bbox_w: Option<i64>,
    pub bbox_h: Option<i64>,
    /// Render rows: the camera as JSON (angles, eye, world_to_camera, intrinsics).
    pub camera: Option<String>,
    /// Render rows: what lies behind the object ("#rrggbb" or "image:<n>").
    pub background: Option<String>,
}
}

impl SampleRecord {
    pub fn is_ok(&self) -> bool {
        self.status == "ok"
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn record(id: &str, status: &str) -> SampleRecord {
        SampleRecord {
            sample_id: id.into(),
            run_id: "r".into(),
            recipe_hash: "h".into(),
            source_id: "s".into(),
            source_path: "/x/s.png".into(),
            source_kind: "image".into(),
            label: "mug".into(),
            split: None,
            stage: "style".into(),
            variant: 0,
            prompt: "a mug".into(),
            negative_prompt: String::new(),
            seed: (1 << 62) + 3,
            strength: 0.5,
            guidance: 7.5,
            steps: 4,
            scheduler: "ddim".into(),
            model_id: "tiny".into(),
            model_hash: "mh".into(),
            depth_source: None,
            width: Some(64),
            height: Some(48),
            image_path: Some(format!("samples/{id}/image.png")),
            texture_path: None,
            asset_path: None,
            output_sha256: Some("ab".into()),
            device: "cpu".into(),
            duration_ms: 12,
            queue_ms: Some(3),
            status: status.into(),
            error: (status != "ok").then(|| "bad".to_string()),
            texaug_version: "0.1.0".into(),
            views: None,
            coverage: None,
            parent_sample_id: None,
            mask_path: None,
            depth_path: None,
            depth_scale_m: None,
            bbox_x: None,
            bbox_y: None,
            bbox_w: None,
            bbox_h: None,
            camera: None,
            background: None,
        }
    }

    #[test]
    fn columns_follow_the_struct_and_round_trip() {
        let rows = vec![record("a", "ok"), record("b", "failed")];
        let df = SampleRecord::to_dataframe(&rows).unwrap();
        let names: Vec<&str> = df.columns().iter().map(|c| c.name().as_str()).collect();
        assert_eq!(names, COLUMNS);
        assert_eq!(SampleRecord::from_dataframe(&df).unwrap(), rows);
        let json = serde_json::to_value(&rows[0]).unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut columns = COLUMNS.to_vec();
        columns.sort_unstable();
        let mut keys = keys;
        keys.sort_unstable();
        assert_eq!(
            keys, columns,
            "the journal and the Parquet file hold the same fields"
        );
    }
}
