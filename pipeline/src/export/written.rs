//! What one format wrote, for the summary and the export's marker file.

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub samples: usize,
    /// Boxes or instance annotations (none for a classification-only layout).
    pub annotations: usize,
    /// Items the layout cannot hold (YOLO: images without a mask, whose objects have no box).
    pub left_out: usize,
}
