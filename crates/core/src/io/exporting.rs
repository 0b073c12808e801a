//! Writing a dataset the way the national system exports it (DESIGN §8):
//! CSV in UTF-8 or GB18030, or Excel, with English or Chinese headers —
//! so the tests and benchmarks can make the files users have, and an
//! office can hand a generated registry to its own tools.
//!
//! With Chinese headers ([`ExportHeaders::Chinese`]) the cells are written
//! as exports have them too: labels from the column map (一般贫困户,
//! 已脱贫, 因病 …), booleans as 是/否, and dates as `2016年12月31日` in CSV
//! (Excel gets date cells). Values the map has no label for (a faulty
//! category, say) are written as they are, so a faulty row stays faulty.
//!
//! An Excel table over [`ExportOptions::part_rows`] rows becomes a folder of
//! parts (`households/households-0001.xlsx`, …), which loading reads as one
//! table: a sheet holds at most 1,048,575 rows.
//!
//! The conversion is a DataFusion plan per table (a projection with `CASE`
//! expressions); only the file writing is Rust.
//!
//! ```no_run
//! # async fn run() -> tuopin::Result<()> {
//! use tuopin::io::exporting::{export_dataset, ExportFormat, ExportHeaders, ExportOptions};
//! use tuopin::Encoding;
//! let options = ExportOptions {
//!     format: ExportFormat::Csv,
//!     headers: ExportHeaders::Chinese,
//!     encoding: Encoding::Gb18030,
//!     ..ExportOptions::default()
//! };
//! export_dataset("data/hebei", "exports/hebei", &options).await?;
//! # Ok(()) }
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use futures::StreamExt;

use crate::error::{Error, Result};
use crate::io::exports::{ColumnMap, Encoding};
use crate::io::xlsx::XlsxWriter;
use crate::schema::TABLES;
use crate::sql::{quote_identifier as quote, quote_literal as literal};

/// The file format of an export.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ExportFormat {
    /// `<table>.csv`.
    #[default]
    Csv,
    /// `<table>.xlsx` (or a folder of parts).
    Xlsx,
}

impl FromStr for ExportFormat {
    type Err = Error;
    fn from_str(s: &str) -> Result<ExportFormat> {
        match s.to_ascii_lowercase().as_str() {
            "csv" => Ok(ExportFormat::Csv),
            "xlsx" => Ok(ExportFormat::Xlsx),
            _ => Err(Error::InvalidArgument(format!(
                "unknown export format {s:?} (expected csv or xlsx)"
            ))),
        }
    }
}

/// The headers (and with them the cell forms) of an export or a result
/// file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ExportHeaders {
    /// tuopin's English column names and values.
    #[default]
    English,
    /// The national system's Chinese headers, labels, 是/否 and dates.
    Chinese,
}

impl FromStr for ExportHeaders {
    type Err = Error;
    fn from_str(s: &str) -> Result<ExportHeaders> {
        match s.to_ascii_lowercase().as_str() {
            "en" | "english" => Ok(ExportHeaders::English),
            "zh" | "chinese" => Ok(ExportHeaders::Chinese),
            _ => Err(Error::InvalidArgument(format!(
                "unknown headers {s:?} (expected en or zh)"
            ))),
        }
    }
}

/// How [`export_dataset`] writes.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// CSV or Excel.
    pub format: ExportFormat,
    /// English or Chinese headers and values.
    pub headers: ExportHeaders,
    /// Encoding of CSV files (`Auto` writes UTF-8).
    pub encoding: Encoding,
    /// Excel: rows per part file (at most 1,048,575).
    pub part_rows: usize,
    /// The header and label map (the built-in Chinese one by default).
    pub map: ColumnMap,
}

impl Default for ExportOptions {
    fn default() -> ExportOptions {
        ExportOptions {
            format: ExportFormat::Csv,
            headers: ExportHeaders::English,
            encoding: Encoding::Utf8,
            part_rows: 1_000_000,
            map: ColumnMap::builtin(),
        }
    }
}

/// Write every `<table>.parquet` of the dataset folder `src` as an export
/// into `out` (created); returns the files written.
pub async fn export_dataset(
    src: impl AsRef<Path>,
    out: impl AsRef<Path>,
    options: &ExportOptions,
) -> Result<Vec<PathBuf>> {
    let (src, out) = (src.as_ref(), out.as_ref());
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let ctx = SessionContext::new();
    let mut written = Vec::new();
    for spec in TABLES.iter() {
        let path = src.join(format!("{}.parquet", spec.name));
        if !path.is_file() {
            continue;
        }
        let location = path.to_str().ok_or_else(|| {
            Error::InvalidArgument(format!("{}: path is not UTF-8", path.display()))
        })?;
        ctx.register_parquet(spec.name, location, ParquetReadOptions::default())
            .await?;
        let schema = ctx.table(spec.name).await?.schema().inner().clone();
        let select = projection(spec.name, &schema, options);
        let df = ctx
            .sql(&format!("SELECT {select} FROM \"{}\"", spec.name))
            .await?;
        written.extend(write_table(df, out, spec.name, options).await?);
        ctx.deregister_table(spec.name)?;
    }
    Ok(written)
}

/// `df` with each column that has an exported header (households,
/// members, regions — [`ColumnMap::exported_header`]) renamed to it when
/// `headers` is Chinese; other columns (scores, outcomes, metrics) and
/// every value stay as they are. For `--out result.xlsx --headers zh`.
pub fn with_headers(
    df: datafusion::prelude::DataFrame,
    headers: ExportHeaders,
    map: &ColumnMap,
) -> Result<datafusion::prelude::DataFrame> {
    if headers == ExportHeaders::English {
        return Ok(df);
    }
    let mut taken: Vec<String> = Vec::new();
    let exprs: Vec<datafusion::prelude::Expr> = df
        .schema()
        .fields()
        .iter()
        .map(|f| {
            let name = f.name().as_str();
            let header = map
                .exported_header(None, name)
                .filter(|h| {
                    !taken.iter().any(|t| t == h)
                        && df.schema().field_with_unqualified_name(h).is_err()
                })
                .unwrap_or(name)
                .to_string();
            taken.push(header.clone());
            datafusion::prelude::ident(name).alias(header)
        })
        .collect();
    Ok(df.select(exprs)?)
}

/// The SELECT list that turns `table` (columns `schema`) into its export.
fn projection(table: &str, schema: &Schema, options: &ExportOptions) -> String {
    let chinese = options.headers == ExportHeaders::Chinese;
    schema
        .fields()
        .iter()
        .map(|f| {
            let name = f.name().as_str();
            let q = quote(name);
            let value = if !chinese {
                q.clone()
            } else {
                match f.data_type() {
                    DataType::Boolean => {
                        format!("CASE WHEN {q} THEN '是' WHEN NOT {q} THEN '否' END")
                    }
                    DataType::Date32 if options.format == ExportFormat::Csv => format!(
                        "CASE WHEN {q} IS NOT NULL THEN concat(\
                         CAST(date_part('year', {q}) AS BIGINT), '年', \
                         CAST(date_part('month', {q}) AS BIGINT), '月', \
                         CAST(date_part('day', {q}) AS BIGINT), '日') END"
                    ),
                    DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
                        labelled(&options.map, name, &q)
                    }
                    _ => q.clone(),
                }
            };
            let header = if chinese {
                options
                    .map
                    .exported_header(Some(table), name)
                    .unwrap_or(name)
            } else {
                name
            };
            format!("{value} AS {}", quote(header))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `q` with each value that has a label replaced by its label.
fn labelled(map: &ColumnMap, column: &str, q: &str) -> String {
    let values: Vec<(String, &str)> = map
        .labels_of(column)
        .into_iter()
        .filter_map(|(_, value)| {
            map.exported_label(column, value)
                .map(|label| (value.to_string(), label))
        })
        .collect::<std::collections::BTreeMap<_, _>>()
        .into_iter()
        .collect();
    if values.is_empty() {
        return q.to_string();
    }
    let whens: String = values
        .iter()
        .map(|(v, l)| format!(" WHEN {} THEN {}", literal(v), literal(l)))
        .collect();
    format!("CASE {q}{whens} ELSE {q} END")
}

/// Run `df` into `out/<table>.csv`, `out/<table>.xlsx` or, for a long
/// Excel table, `out/<table>/<table>-NNNN.xlsx`.
async fn write_table(
    df: datafusion::prelude::DataFrame,
    out: &Path,
    table: &str,
    options: &ExportOptions,
) -> Result<Vec<PathBuf>> {
    let schema = df.schema().inner().clone();
    let mut stream = df.execute_stream().await?;
    match options.format {
        ExportFormat::Csv => {
            let path = out.join(format!("{table}.csv"));
            let mut file = std::io::BufWriter::new(
                std::fs::File::create(&path).map_err(|e| Error::io(&path, e))?,
            );
            let mut header = true;
            while let Some(batch) = stream.next().await {
                let text = crate::output::csv_text(&batch?, header)?;
                header = false;
                let bytes = encoded(&text, options.encoding);
                file.write_all(&bytes).map_err(|e| Error::io(&path, e))?;
            }
            if header {
                // No rows: the header alone.
                let empty = RecordBatch::new_empty(schema);
                let bytes = encoded(&crate::output::csv_text(&empty, true)?, options.encoding);
                file.write_all(&bytes).map_err(|e| Error::io(&path, e))?;
            }
            file.flush().map_err(|e| Error::io(&path, e))?;
            Ok(vec![path])
        }
        ExportFormat::Xlsx => {
            let per_part = options.part_rows.clamp(1, crate::io::xlsx::SHEET_ROWS - 1);
            // Rows go to one workbook at a time; it is named when it is
            // saved: `<table>.xlsx` if it was the only one, else a part.
            let single = out.join(format!("{table}.xlsx"));
            let part_dir = out.join(table);
            let part = |k: usize| part_dir.join(format!("{table}-{k:04}.xlsx"));
            let mut saved_parts = 0;
            let mut current = (XlsxWriter::create(&single, table, &schema)?, 0usize);
            while let Some(batch) = stream.next().await {
                let batch = batch?;
                let mut offset = 0;
                while offset < batch.num_rows() {
                    if current.1 == per_part {
                        let full = std::mem::replace(
                            &mut current,
                            (XlsxWriter::create(&single, table, &schema)?, 0),
                        );
                        std::fs::create_dir_all(&part_dir).map_err(|e| Error::io(&part_dir, e))?;
                        saved_parts += 1;
                        full.0.finish_at(&part(saved_parts))?;
                    }
                    let take = (per_part - current.1).min(batch.num_rows() - offset);
                    current.0.write(&batch.slice(offset, take))?;
                    current.1 += take;
                    offset += take;
                }
            }
            if saved_parts == 0 {
                current.0.finish()?;
                return Ok(vec![single]);
            }
            current.0.finish_at(&part(saved_parts + 1))?;
            Ok((1..=saved_parts + 1).map(part).collect())
        }
    }
}

/// `text` in `encoding` (UTF-8 unless GB18030).
fn encoded(text: &str, encoding: Encoding) -> Vec<u8> {
    match encoding {
        Encoding::Gb18030 => encoding_rs::GB18030.encode(text).0.into_owned(),
        _ => text.as_bytes().to_vec(),
    }
}
