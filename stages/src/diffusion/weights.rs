//! TODO(owner: runtime helper)
