//! TODO(owner: sources helper)
