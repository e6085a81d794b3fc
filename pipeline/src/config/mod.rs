//! What the user writes: the recipe ([`recipe`] types, [`recipe_load`], [`recipe_schema`] spans and keys,
//! [`recipe_checks`]), devices ([`devices`]), source manifests per format ([`sources`]), the checks of files a
//! recipe names ([`check_inputs`], masks in [`check_masks`]) and the `file:line:col` diagnostics all of them report ([`diagnostic`]).

pub mod check_inputs;
pub mod check_masks;
pub mod devices;
pub mod diagnostic;
pub mod recipe;
pub mod recipe_checks;
pub mod recipe_load;
pub mod recipe_render_checks;
pub mod recipe_schema;
pub mod sources;
