//! Baking generated views back into a mesh's UV texture.
