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
    /// "ok", "failed", or "filtered" (below its stage's `min_clip_score`).
    pub status: String,
    pub error: Option<String>,
    pub texaug_version: String,
    pub views: Option<i64>,
    pub coverage: Option<f64>,
    /// Depth rows of meshes: mean over views of the PSNR (dB, covered pixels) between each generated view and
    /// the baked texture rendered from it; higher = the views agree.
    pub view_consistency_db: Option<f64>,
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
    /// With `[score]`: 100 × the CLIP cosine similarity of the image and the score prompt (torchmetrics' CLIPScore).
    pub clip_score: Option<f64>,
}
}

impl SampleRecord {
    pub fn is_ok(&self) -> bool {
        self.status == "ok"
    }

    /// Below its stage's `min_clip_score`: done, not to be made again, not part of the training set.
    pub fn is_filtered(&self) -> bool {
        self.status == "filtered"
    }

    /// Made, ok or filtered: a resumed run does not make it again, a merge does not call it missing.
    pub fn is_done(&self) -> bool {
        self.is_ok() || self.is_filtered()
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
            ..SampleRecord::default()
        }
    }

    #[test]
    fn a_manifest_of_an_earlier_texaug_reads_its_missing_optional_columns_as_none() {
        let rows = vec![record("a", "ok")];
        let df = SampleRecord::to_dataframe(&rows).unwrap();
        let older = df.drop_many(["clip_score", "camera", "bbox_x", "queue_ms"]);
        let back = SampleRecord::from_dataframe(&older).unwrap();
        assert_eq!(back[0].queue_ms, None);
        assert_eq!(back[0].sample_id, "a");
        let broken = df.drop("sample_id").unwrap();
        let err = SampleRecord::from_dataframe(&broken).unwrap_err();
        assert!(err.to_string().contains("no column sample_id"), "{err}");
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
