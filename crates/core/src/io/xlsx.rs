//! `<table>.xlsx` sources (DESIGN §8): the sheet named like the table,
//! else the first sheet; the first row is the header; every cell is read
//! as text — numbers as written (`2016`, not `2016.0`), dates as
//! `YYYY-MM-DD`, errors as Excel shows them (`#DIV/0!`) — and typed by
//! validation like a CSV column, so a bad cell becomes a reject naming
//! its raw value.
//!
//! Writing (`--out result.xlsx`, generated exports): [`XlsxWriter`], one
//! sheet with a header row and typed cells — numbers as numbers (whole
//! numbers shown without a fraction, so a 12-digit region code is not
//! `1.30102E+11`), booleans, dates as Excel dates, lists as `;`-joined
//! text — written row by row in rust_xlsxwriter's constant-memory mode.

use std::path::Path;
use std::sync::Arc;

use calamine::{open_workbook_auto, Data, Reader};
use datafusion::arrow::array::{ArrayRef, RecordBatch, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Schema};

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::Int64Type;

use crate::error::{Error, Result as TuopinResult};

/// Rows per batch.
const BATCH_ROWS: usize = 64 * 1024;

/// The rows of the `table` sheet of the workbook `path`, all text.
pub(crate) fn read_xlsx(path: &Path, table: &str) -> Result<Vec<RecordBatch>, String> {
    let mut book = open_workbook_auto(path).map_err(|e| e.to_string())?;
    let names = book.sheet_names();
    let sheet = names
        .iter()
        .find(|n| n.as_str() == table)
        .or_else(|| names.first())
        .cloned()
        .ok_or("the workbook has no sheet")?;
    let range = book
        .worksheet_range(&sheet)
        .map_err(|e| format!("sheet {sheet:?}: {e}"))?;
    let mut rows = range.rows();
    let header: Vec<String> = rows
        .next()
        .ok_or_else(|| format!("sheet {sheet:?} is empty (no header row)"))?
        .iter()
        .enumerate()
        .map(|(i, c)| cell_text(c).unwrap_or_else(|| format!("column_{}", i + 1)))
        .collect();
    let schema = Arc::new(Schema::new(
        header
            .iter()
            .map(|h| Field::new(h, DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ));
    let mut batches = Vec::new();
    let mut builders: Vec<StringBuilder> = header.iter().map(|_| StringBuilder::new()).collect();
    let mut n = 0;
    for row in rows {
        for (i, b) in builders.iter_mut().enumerate() {
            b.append_option(row.get(i).and_then(cell_text));
        }
        n += 1;
        if n == BATCH_ROWS {
            batches.push(finish(&schema, &mut builders)?);
            n = 0;
        }
    }
    if n > 0 || batches.is_empty() {
        batches.push(finish(&schema, &mut builders)?);
    }
    Ok(batches)
}

fn finish(schema: &Arc<Schema>, builders: &mut [StringBuilder]) -> Result<RecordBatch, String> {
    let columns: Vec<ArrayRef> = builders
        .iter_mut()
        .map(|b| Arc::new(b.finish()) as ArrayRef)
        .collect();
    RecordBatch::try_new(schema.clone(), columns).map_err(|e| e.to_string())
}

/// A cell as text (`None` when empty).
pub(crate) fn cell_text(cell: &Data) -> Option<String> {
    Some(match cell {
        Data::Empty => return None,
        Data::String(s) => s.clone(),
        Data::Int(i) => i.to_string(),
        Data::Float(f) => float_text(*f),
        Data::Bool(b) => b.to_string(),
        Data::DateTime(d) if d.is_datetime() => {
            let (y, m, day, h, min, s, _) = d.to_ymd_hms_milli();
            if (h, min, s) == (0, 0, 0) {
                format!("{y:04}-{m:02}-{day:02}")
            } else {
                format!("{y:04}-{m:02}-{day:02}T{h:02}:{min:02}:{s:02}")
            }
        }
        Data::DateTime(d) => float_text(d.as_f64()),
        Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::Error(e) => e.to_string(),
    })
}

/// A number as written: whole numbers without a fraction (Excel keeps
/// every number as a float, so a code or a year would read `2016.0`).
fn float_text(f: f64) -> String {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        f.to_string()
    }
}

/// Rows an Excel sheet holds (the header row included).
pub const SHEET_ROWS: usize = 1_048_576;

/// An `.xlsx` file being written: one sheet, a header row, then the rows
/// of each batch (see the module doc for the cell types).
pub struct XlsxWriter {
    path: std::path::PathBuf,
    book: rust_xlsxwriter::Workbook,
    /// Rows written so far, the header included.
    rows: usize,
    whole: rust_xlsxwriter::Format,
    date: rust_xlsxwriter::Format,
}

impl XlsxWriter {
    /// Start `path` with a sheet named `sheet` whose header row is the
    /// field names of `schema`.
    pub fn create(path: &Path, sheet: &str, schema: &Schema) -> TuopinResult<XlsxWriter> {
        let mut book = rust_xlsxwriter::Workbook::new();
        let named = |e: rust_xlsxwriter::XlsxError| xlsx_error(path, e);
        let ws = book.add_worksheet_with_constant_memory();
        ws.set_name(sheet).map_err(named)?;
        let bold = rust_xlsxwriter::Format::new().set_bold();
        for (c, f) in schema.fields().iter().enumerate() {
            ws.write_string_with_format(0, col(c)?, f.name(), &bold)
                .map_err(named)?;
        }
        ws.set_freeze_panes(1, 0).map_err(named)?;
        Ok(XlsxWriter {
            path: path.to_path_buf(),
            book,
            rows: 1,
            whole: rust_xlsxwriter::Format::new().set_num_format("0"),
            date: rust_xlsxwriter::Format::new().set_num_format("yyyy-mm-dd"),
        })
    }

    /// Append the rows of `batch`; an error when the sheet would pass
    /// Excel's [`SHEET_ROWS`].
    pub fn write(&mut self, batch: &RecordBatch) -> TuopinResult<()> {
        if self.rows + batch.num_rows() > SHEET_ROWS {
            return Err(Error::InvalidArgument(format!(
                "{}: more than {} rows, which is what an Excel sheet holds; write .parquet or .csv",
                self.path.display(),
                SHEET_ROWS - 1
            )));
        }
        let batch = crate::output::lists_as_text(batch)?;
        let path = self.path.clone();
        let named = |e: rust_xlsxwriter::XlsxError| xlsx_error(&path, e);
        let ws = self.book.worksheet_from_index(0).map_err(named)?;
        for r in 0..batch.num_rows() {
            let row = u32::try_from(self.rows + r).unwrap_or(u32::MAX);
            for (c, column) in batch.columns().iter().enumerate() {
                if column.is_null(r) {
                    continue;
                }
                write_cell(ws, row, col(c)?, column, r, &self.whole, &self.date).map_err(named)?;
            }
        }
        self.rows += batch.num_rows();
        Ok(())
    }

    /// Close the workbook: the file is complete only now.
    pub fn finish(self) -> TuopinResult<()> {
        let path = self.path.clone();
        self.finish_at(&path)
    }

    /// [`XlsxWriter::finish`], saving the workbook at `path` instead of
    /// the path it was created with (a file whose name is known only at
    /// the end: one table or the first of its parts).
    pub fn finish_at(mut self, path: &Path) -> TuopinResult<()> {
        self.book.save(path).map_err(|e| xlsx_error(path, e))
    }
}

fn xlsx_error(path: &Path, e: rust_xlsxwriter::XlsxError) -> Error {
    Error::InvalidArgument(format!(
        "{}: cannot write the Excel file: {e}",
        path.display()
    ))
}

fn col(c: usize) -> TuopinResult<u16> {
    u16::try_from(c)
        .ok()
        .filter(|c| *c < 16_384)
        .ok_or_else(|| Error::InvalidArgument("more than 16,384 columns for an Excel sheet".into()))
}

/// One non-null cell, typed by its column.
fn write_cell(
    ws: &mut rust_xlsxwriter::Worksheet,
    row: u32,
    c: u16,
    column: &ArrayRef,
    r: usize,
    whole: &rust_xlsxwriter::Format,
    date: &rust_xlsxwriter::Format,
) -> std::result::Result<(), rust_xlsxwriter::XlsxError> {
    use datafusion::arrow::datatypes::DataType as T;
    match column.data_type() {
        T::Boolean => {
            ws.write_boolean(row, c, column.as_boolean().value(r))?;
        }
        T::Int8 | T::Int16 | T::Int32 | T::Int64 | T::UInt8 | T::UInt16 | T::UInt32 | T::UInt64 => {
            // Exact in an Excel number (a double) up to 2^53; larger as text.
            let v = datafusion::arrow::compute::cast(&column.slice(r, 1), &T::Int64)
                .ok()
                .and_then(|a| (a.is_valid(0)).then(|| a.as_primitive::<Int64Type>().value(0)));
            match v {
                Some(v) if v.unsigned_abs() < (1u64 << 53) => {
                    ws.write_number_with_format(row, c, v as f64, whole)?;
                }
                _ => {
                    ws.write_string(row, c, text_of(column, r))?;
                }
            }
        }
        T::Float16 | T::Float32 | T::Float64 | T::Decimal128(_, _) | T::Decimal256(_, _) => {
            let v = datafusion::arrow::compute::cast(&column.slice(r, 1), &T::Float64)
                .ok()
                .and_then(|a| {
                    (a.is_valid(0)).then(|| {
                        a.as_primitive::<datafusion::arrow::datatypes::Float64Type>()
                            .value(0)
                    })
                });
            match v {
                Some(v) if v.is_finite() => {
                    ws.write_number(row, c, v)?;
                }
                _ => {
                    ws.write_string(row, c, text_of(column, r))?;
                }
            }
        }
        T::Date32 => {
            let days = column
                .as_primitive::<datafusion::arrow::datatypes::Date32Type>()
                .value(r);
            match chrono::NaiveDate::from_num_days_from_ce_opt(days + 719_163) {
                Some(d) => {
                    use chrono::Datelike;
                    let dt = rust_xlsxwriter::ExcelDateTime::from_ymd(
                        u16::try_from(d.year()).unwrap_or(1900),
                        d.month() as u8,
                        d.day() as u8,
                    );
                    match dt {
                        Ok(dt) => {
                            ws.write_datetime_with_format(row, c, dt, date)?;
                        }
                        // Before 1900 (Excel's first date): as text.
                        Err(_) => {
                            ws.write_string(row, c, d.to_string())?;
                        }
                    }
                }
                None => {
                    ws.write_string(row, c, text_of(column, r))?;
                }
            }
        }
        _ => {
            ws.write_string(row, c, text_of(column, r))?;
        }
    }
    Ok(())
}

/// A cell as text (Arrow's display form).
fn text_of(column: &ArrayRef, r: usize) -> String {
    datafusion::arrow::util::display::array_value_to_string(column, r).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_read_as_written() {
        assert_eq!(cell_text(&Data::Float(2016.0)).as_deref(), Some("2016"));
        assert_eq!(
            cell_text(&Data::Float(130102001001.0)).as_deref(),
            Some("130102001001")
        );
        assert_eq!(cell_text(&Data::Float(100.5)).as_deref(), Some("100.5"));
        assert_eq!(cell_text(&Data::Int(-3)).as_deref(), Some("-3"));
        assert_eq!(cell_text(&Data::Bool(true)).as_deref(), Some("true"));
        assert_eq!(cell_text(&Data::String("是".into())).as_deref(), Some("是"));
        assert_eq!(cell_text(&Data::Empty), None);
        assert_eq!(
            cell_text(&Data::Error(calamine::CellErrorType::Div0)).as_deref(),
            Some("#DIV/0!")
        );
    }
}
