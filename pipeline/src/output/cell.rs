//! How one field of the sample record becomes a Parquet column and back. Strings are plain UTF-8 (nullable or
//! not), integers int64, floats float64: the plainest types, which every reader opens.

use anyhow::{Context, Result};
use polars::prelude::{Column, DataFrame};

/// A Rust field type the sample manifest can hold.
pub trait ManifestCell: Sized {
    /// The column of `values`, named `name`.
    fn column(name: &str, values: Vec<Self>) -> Column;
    /// Every value of the column `name` of `df`; a missing value reads as the type's default.
    fn read(df: &DataFrame, name: &str) -> Result<Vec<Self>>;
    /// The values of a column a manifest of an earlier texaug lacks: none for an optional field (a manifest written
    /// before the column existed), an error for a required one.
    fn absent(_rows: usize) -> Option<Vec<Self>> {
        None
    }
}

fn column_of<'a>(df: &'a DataFrame, name: &str) -> Result<&'a Column> {
    df.column(name)
        .with_context(|| format!("the manifest has no `{name}` column"))
}

impl ManifestCell for Option<String> {
    fn column(name: &str, values: Vec<Self>) -> Column {
        Column::new(name.into(), values)
    }
    fn absent(rows: usize) -> Option<Vec<Self>> {
        Some(vec![None; rows])
    }
    fn read(df: &DataFrame, name: &str) -> Result<Vec<Self>> {
        let c = column_of(df, name)?;
        let strings = c
            .str()
            .with_context(|| format!("column `{name}` is not text"))?;
        Ok(strings.iter().map(|v| v.map(str::to_string)).collect())
    }
}

impl ManifestCell for String {
    fn column(name: &str, values: Vec<Self>) -> Column {
        Column::new(name.into(), values)
    }
    fn read(df: &DataFrame, name: &str) -> Result<Vec<Self>> {
        Ok(<Option<String>>::read(df, name)?
            .into_iter()
            .map(Option::unwrap_or_default)
            .collect())
    }
}

impl ManifestCell for Option<i64> {
    fn column(name: &str, values: Vec<Self>) -> Column {
        Column::new(name.into(), values)
    }
    fn absent(rows: usize) -> Option<Vec<Self>> {
        Some(vec![None; rows])
    }
    fn read(df: &DataFrame, name: &str) -> Result<Vec<Self>> {
        let c = column_of(df, name)?;
        let ints = c
            .i64()
            .with_context(|| format!("column `{name}` is not int64"))?;
        Ok(ints.iter().collect())
    }
}

impl ManifestCell for i64 {
    fn column(name: &str, values: Vec<Self>) -> Column {
        Column::new(name.into(), values)
    }
    fn read(df: &DataFrame, name: &str) -> Result<Vec<Self>> {
        Ok(<Option<i64>>::read(df, name)?
            .into_iter()
            .map(Option::unwrap_or_default)
            .collect())
    }
}

impl ManifestCell for Option<f64> {
    fn column(name: &str, values: Vec<Self>) -> Column {
        Column::new(name.into(), values)
    }
    fn absent(rows: usize) -> Option<Vec<Self>> {
        Some(vec![None; rows])
    }
    fn read(df: &DataFrame, name: &str) -> Result<Vec<Self>> {
        let c = column_of(df, name)?;
        let floats = c
            .f64()
            .with_context(|| format!("column `{name}` is not float64"))?;
        Ok(floats.iter().collect())
    }
}

impl ManifestCell for f64 {
    fn column(name: &str, values: Vec<Self>) -> Column {
        Column::new(name.into(), values)
    }
    fn read(df: &DataFrame, name: &str) -> Result<Vec<Self>> {
        Ok(<Option<f64>>::read(df, name)?
            .into_iter()
            .map(Option::unwrap_or_default)
            .collect())
    }
}

/// Defines the sample record once: the struct (with its serde form, the journal's), the column order, and the
/// conversion to and from a DataFrame. A field added here is a column everywhere.
macro_rules! sample_schema {
    ($(#[$meta:meta])* pub struct $name:ident { $( $(#[$fmeta:meta])* pub $field:ident : $ty:ty, )* }) => {
        $(#[$meta])*
        pub struct $name { $( $(#[$fmeta])* pub $field: $ty, )* }

        /// The column order of the file (the writer follows the struct; tests and readers check against it).
        #[allow(dead_code)]
        pub const COLUMNS: &[&str] = &[$(stringify!($field)),*];

        impl $name {
            /// Records as a DataFrame with the manifest's exact columns and types.
            pub fn to_dataframe(rows: &[$name]) -> anyhow::Result<polars::prelude::DataFrame> {
                let columns = vec![$(
                    <$ty as $crate::output::cell::ManifestCell>::column(
                        stringify!($field),
                        rows.iter().map(|r| r.$field.clone()).collect(),
                    ),
                )*];
                Ok(polars::prelude::DataFrame::new(rows.len(), columns)?)
            }

            /// Records back from a manifest's DataFrame.
            pub fn from_dataframe(df: &polars::prelude::DataFrame) -> anyhow::Result<Vec<$name>> {
                let mut missing: Vec<&str> = Vec::new();
                $( let mut $field = if df.column(stringify!($field)).is_ok() {
                    <$ty as $crate::output::cell::ManifestCell>::read(df, stringify!($field))?
                } else {
                    <$ty as $crate::output::cell::ManifestCell>::absent(df.height()).unwrap_or_else(|| {
                        missing.push(stringify!($field));
                        Vec::new()
                    })
                }
                .into_iter(); )*
                if !missing.is_empty() {
                    anyhow::bail!(
                        "not a texaug sample manifest: no column {}",
                        missing.join(", ")
                    );
                }
                (0..df.height())
                    .map(|_| {
                        Ok($name { $( $field: $field.next().ok_or_else(|| {
                            anyhow::anyhow!("column `{}` is shorter than the manifest", stringify!($field))
                        })?, )* })
                    })
                    .collect()
            }
        }
    };
}
pub(crate) use sample_schema;
