//! TODO(owner: networks helper)
