//! The process exit codes: 0 ok, 1 usage or validation error, 2 some samples failed.

/// Some samples failed; their rows carry the errors.
pub const EXIT_SAMPLES_FAILED: u8 = 2;
/// The input was wrong (recipe, manifest, arguments); the message says how.
pub const EXIT_INVALID: u8 = 1;
