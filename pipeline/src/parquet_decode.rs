//! Decoding a Parquet file that may be hostile — a source manifest a user wrote, or a sample manifest `texaug merge`
//! reads from another run — into a DataFrame, without letting a corrupt file crash texaug.
//!
//! polars-parquet trusts the counts a file declares: a negative `num_values` in a data page header becomes a 2^64 bit
//! reservation, which aborts the process (an allocation failure is not a panic). So before polars decodes anything,
//! every count that sizes a buffer is checked against what the file can hold: the footer read with a bounded Thrift
//! reader first, its row count against the file's length, and each page header (walked with polars' own page reader, nothing decoded) against its row group.
//! What polars still rejects by asserting becomes an error through `catch_unwind`.

use std::io::Cursor;

use polars::prelude::{DataFrame, ParquetReader, SerReader};
use polars_parquet::parquet::metadata::{ColumnChunkMetadata, FileMetadata};
use polars_parquet_format::thrift::protocol::TCompactInputProtocol;
use polars_parquet_format::{PageHeader, PageType};

use crate::engine::pool::panic_message;

/// Decodes `bytes` (a whole Parquet file) into a DataFrame of at most `max_rows` rows, with the file's footer (for
/// its key-value metadata). The error is a sentence saying what is wrong with the file, for the caller to prefix
/// with its path.
pub fn decode_parquet(bytes: Vec<u8>, max_rows: u64) -> Result<(DataFrame, FileMetadata), String> {
    let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        check_footer(&bytes)?;
        // One reader: polars parses the footer once, for the checks and then for the decode.
        let mut reader = ParquetReader::new(Cursor::new(bytes.as_slice()));
        let metadata = reader
            .get_metadata()
            .map_err(|e| e.to_string())?
            .as_ref()
            .clone();
        check_counts(&metadata, &bytes, max_rows)?;
        let frame = reader.finish().map_err(|e| e.to_string())?;
        Ok((frame, metadata))
    }));
    decoded.unwrap_or_else(|panic| Err(format!("corrupt data ({})", panic_message(panic.as_ref()))))
}

/// The footer read once with a bounded Thrift reader before polars reads it: polars reserves every list the footer
/// declares (row groups, columns, key-value pairs) at its declared length, so a corrupt count asks for gigabytes and
/// aborts. polars-parquet-format's reader counts what each list would allocate against a budget instead.
fn check_footer(file: &[u8]) -> Result<(), String> {
    let n = file.len();
    if n < 12 || &file[n - 4..] != b"PAR1" {
        return Err("no Parquet footer (the file does not end in `PAR1`)".into());
    }
    let footer_len =
        u32::from_le_bytes([file[n - 8], file[n - 7], file[n - 6], file[n - 5]]) as usize;
    let Some(start) = (n - 8).checked_sub(footer_len) else {
        return Err(format!(
            "its footer claims {footer_len} bytes in a {n}-byte file"
        ));
    };
    let footer = &file[start..n - 8];
    // Decoded metadata takes a few times its encoded size; the budget leaves ample room for honest files.
    let budget = footer_len.saturating_mul(64).max(1 << 20);
    let mut cursor = Cursor::new(footer);
    let mut protocol = TCompactInputProtocol::new(&mut cursor, budget);
    polars_parquet_format::FileMetaData::read_from_in_protocol(&mut protocol)
        .map(drop)
        .map_err(|e| format!("corrupt footer ({e}): a list in it declares more entries than the file holds, or it is cut"))
}

/// Every count in the footer and the page headers that polars sizes an allocation by, checked.
fn check_counts(metadata: &FileMetadata, file: &[u8], max_rows: u64) -> Result<(), String> {
    let file_len = file.len() as u64;
    // A row takes at least a byte of the file, whatever its encoding, so more rows than bytes is a lie.
    let rows: u64 = metadata
        .row_groups
        .iter()
        .map(|g| g.num_rows() as u64)
        .sum();
    if rows > file_len.min(max_rows) {
        return Err(format!(
            "its footer declares {rows} rows in {file_len} bytes"
        ));
    }
    for (g, group) in metadata.row_groups.iter().enumerate() {
        for column in group.parquet_columns() {
            let name = column.descriptor().path_in_schema.join(".");
            check_column(column, group.num_rows() as i64, file)
                .map_err(|what| format!("row group {g}, column `{name}`: {what}"))?;
        }
    }
    Ok(())
}

/// Walks a column chunk's page headers as polars will (from the chunk's start until its declared values are
/// seen), decoding no page, and checks each header's counts.
fn check_column(column: &ColumnChunkMetadata, group_rows: i64, file: &[u8]) -> Result<(), String> {
    if column.descriptor().descriptor.max_rep_level > 0 {
        return Err("a list column; every manifest column is a flat string".into());
    }
    let range = column.byte_range();
    let file_len = file.len() as u64;
    if range.start > range.end || range.end > file_len {
        return Err(format!(
            "its pages lie at bytes {}..{}, past the end of the {file_len}-byte file",
            range.start, range.end
        ));
    }
    let declared = column.num_values();
    if !(0..=group_rows).contains(&declared) {
        return Err(format!(
            "{declared} values in a row group of {group_rows} rows"
        ));
    }
    let chunk = &file[range.start as usize..range.end as usize];
    let mut at = 0usize;
    let mut seen = 0i64;
    while seen < declared {
        let mut cursor = Cursor::new(&chunk[at..]);
        let header = {
            let mut protocol = TCompactInputProtocol::new(&mut cursor, chunk.len() - at);
            PageHeader::read_from_in_protocol(&mut protocol).map_err(|e| {
                format!(
                    "unreadable page header at byte {}: {e}",
                    range.start as usize + at
                )
            })?
        };
        let body = usize::try_from(header.compressed_page_size)
            .ok()
            .filter(|&n| n <= chunk.len() - at - cursor.position() as usize)
            .ok_or_else(|| {
                format!(
                    "a page of {} bytes runs past its column chunk",
                    header.compressed_page_size
                )
            })?;
        seen += check_page(&header, group_rows, file_len)?;
        at += cursor.position() as usize + body;
    }
    Ok(())
}

/// A page header's counts: values and rows within its row group, sizes within the file's reach. Returns the
/// values it holds (0 for a dictionary page).
fn check_page(header: &PageHeader, group_rows: i64, file_len: u64) -> Result<i64, String> {
    // A page inflates to at most this much: zstd and gzip reach about 1000:1 on the most repetitive data.
    let max_inflated = file_len.saturating_mul(1024).max(1 << 20);
    let inflated = header.uncompressed_page_size;
    if inflated < 0 || inflated as u64 > max_inflated {
        return Err(format!(
            "a page inflates to {inflated} bytes from a {file_len}-byte file"
        ));
    }
    let values_within = |values: i32| {
        if (0..=group_rows).contains(&(values as i64)) {
            Ok(values as i64)
        } else {
            Err(format!(
                "a data page declares {values} values in a row group of {group_rows} rows"
            ))
        }
    };
    let missing = |kind: &str| format!("a {kind} page without its header");
    match header.type_ {
        PageType::DATA_PAGE => {
            let h = header
                .data_page_header
                .as_ref()
                .ok_or_else(|| missing("data"))?;
            values_within(h.num_values)
        }
        PageType::DATA_PAGE_V2 => {
            let h = header
                .data_page_header_v2
                .as_ref()
                .ok_or_else(|| missing("data"))?;
            let values = values_within(h.num_values)?;
            for (what, n) in [
                ("rows", h.num_rows),
                ("nulls", h.num_nulls),
                ("definition-level bytes", h.definition_levels_byte_length),
                ("repetition-level bytes", h.repetition_levels_byte_length),
            ] {
                if !(0..=group_rows.max(inflated as i64)).contains(&(n as i64)) {
                    return Err(format!("a data page declares {n} {what}"));
                }
            }
            Ok(values)
        }
        PageType::DICTIONARY_PAGE => {
            let h = header
                .dictionary_page_header
                .as_ref()
                .ok_or_else(|| missing("dictionary"))?;
            // A dictionary entry takes at least one byte of the inflated page.
            if h.num_values < 0 || h.num_values > inflated {
                return Err(format!(
                    "a dictionary page declares {} entries in {inflated} bytes",
                    h.num_values
                ));
            }
            Ok(0)
        }
        other => Err(format!("a page of unknown type {}", other.0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars::prelude::{df, ParquetWriter};
    use polars_parquet_format::{DataPageHeader, DictionaryPageHeader, Encoding};

    fn parquet_bytes() -> Vec<u8> {
        let mut frame = df!("id" => ["a", "b", "a"], "label" => ["mug", "mug", "cup"]).unwrap();
        let mut bytes = Vec::new();
        ParquetWriter::new(&mut bytes).finish(&mut frame).unwrap();
        bytes
    }

    fn data_page(values: i32) -> PageHeader {
        let plain = Encoding::PLAIN;
        let data = DataPageHeader::new(values, plain, Encoding::RLE, Encoding::RLE, None);
        PageHeader::new(PageType::DATA_PAGE, 64, 64, None, data, None, None, None)
    }

    #[test]
    fn a_sound_file_decodes_with_its_footer() {
        let (frame, footer) = decode_parquet(parquet_bytes(), 100).unwrap();
        assert_eq!(frame.shape(), (3, 2));
        assert_eq!(footer.num_rows, 3);
    }

    #[test]
    fn more_rows_than_allowed_is_refused_before_decoding() {
        let err = decode_parquet(parquet_bytes(), 2).unwrap_err();
        assert!(err.contains("declares 3 rows"), "{err}");
    }

    #[test]
    fn page_counts_outside_the_row_group_are_refused() {
        assert_eq!(check_page(&data_page(3), 3, 1000), Ok(3));
        // A negative count is what polars turns into a 2^64-bit reservation (the 9 aborts `make fuzz` found).
        let err = check_page(&data_page(-2), 3, 1000).unwrap_err();
        assert!(
            err.contains("declares -2 values in a row group of 3 rows"),
            "{err}"
        );
        assert!(check_page(&data_page(4), 3, 1000).is_err());

        let mut inflating = data_page(3);
        inflating.uncompressed_page_size = i32::MAX;
        let err = check_page(&inflating, 3, 100).unwrap_err();
        assert!(err.contains("inflates to"), "{err}");

        let dict = |entries| {
            let h = DictionaryPageHeader::new(entries, Encoding::PLAIN, None);
            PageHeader::new(PageType::DICTIONARY_PAGE, 64, 64, None, None, None, h, None)
        };
        assert_eq!(check_page(&dict(10), 3, 1000), Ok(0));
        assert!(check_page(&dict(65), 3, 1000).is_err());
        assert!(check_page(&dict(-1), 3, 1000).is_err());
        let missing = PageHeader::new(PageType::DATA_PAGE_V2, 64, 64, None, None, None, None, None);
        assert!(check_page(&missing, 3, 1000).is_err());
    }

    #[test]
    fn a_truncated_file_is_an_error_not_a_crash() {
        let bytes = parquet_bytes();
        for cut in [8, bytes.len() / 2, bytes.len() - 9] {
            let mut broken = bytes.clone();
            broken.drain(cut..bytes.len() - 8);
            assert!(decode_parquet(broken, 100).is_err(), "cut at {cut}");
        }
    }
}
