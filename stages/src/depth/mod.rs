//! Depth for the `depth` stage: a CPU rasterizer for meshes, and depth images for image sources.
