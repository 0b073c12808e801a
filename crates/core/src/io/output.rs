//! Writing results: Parquet, CSV, JSON or Excel by file extension.
//!
//! CSV and Excel have no list type, so list columns (`failed`, `vetoed_by`,
//! `unknown`) are written as `;`-joined text. JSON is newline-delimited (one
//! object per line). Excel (`.xlsx`) is one sheet named after the file,
//! with a header row and typed cells ([`crate::io::xlsx::XlsxWriter`]).
//!
//! ```no_run
//! # async fn run(df: datafusion::prelude::DataFrame) -> tuopin::Result<()> {
//! let batches = df.collect().await?;
//! tuopin::output::write_batches(&batches, "outcomes.parquet")?;
//! # Ok(()) }
//! ```

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::error::{Error, Result};

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Apache Parquet.
    Parquet,
    /// CSV with header; lists as `;`-joined text.
    Csv,
    /// Newline-delimited JSON.
    Json,
    /// An Excel workbook of one sheet.
    Xlsx,
}

impl Format {
    /// The format of a path, by extension.
    pub fn from_path(path: &Path) -> Result<Format> {
        match path.extension().and_then(|e| e.to_str()) {
            Some("parquet") => Ok(Format::Parquet),
            Some("csv") => Ok(Format::Csv),
            Some("json") | Some("jsonl") | Some("ndjson") => Ok(Format::Json),
            Some("xlsx") => Ok(Format::Xlsx),
            _ => Err(Error::InvalidArgument(format!(
                "{}: unknown output format (use .parquet, .csv, .json or .xlsx)",
                path.display()
            ))),
        }
    }
}

/// Write `batches` to `path` in the format given by its extension.
pub fn write_batches(batches: &[RecordBatch], path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let Some(first) = batches.first() else {
        return Err(Error::InvalidArgument(format!(
            "{}: nothing to write (no schema)",
            path.display()
        )));
    };
    let mut w = BatchWriter::create(path, first.schema())?;
    for b in batches {
        w.write(b)?;
    }
    w.finish()
}

/// Run `df` and write its result to `path` batch by batch, as it is
/// produced (the result never sits in memory whole); returns the number
/// of rows written.
///
/// ```no_run
/// # async fn run(df: datafusion::prelude::DataFrame) -> tuopin::Result<()> {
/// let rows = tuopin::output::write_dataframe(df, "outcomes.parquet").await?;
/// # Ok(()) }
/// ```
pub async fn write_dataframe(
    df: datafusion::prelude::DataFrame,
    path: impl AsRef<Path>,
) -> Result<usize> {
    use futures::StreamExt;
    let path = path.as_ref();
    if Format::from_path(path)? == Format::Parquet {
        return write_parquet(df, path, "zstd(1)", OUTPUT_LAYOUT).await;
    }
    let schema = df.schema().inner().clone();
    let mut stream = df.execute_stream().await?;
    let mut w = BatchWriter::create(path, schema)?;
    let mut rows = 0;
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        rows += batch.num_rows();
        w.write(&batch)?;
    }
    w.finish()?;
    Ok(rows)
}

/// How DataFusion's Parquet writer lays out a file: its row groups and
/// dictionaries.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layout {
    /// Rows per row group, at most. A reader splits a file across its
    /// partitions by row group: a 1.15 M-row table in 1 Mi-row groups is
    /// read mostly on one core.
    pub rows: usize,
    /// Row groups encoded at once.
    pub at_once: usize,
    /// Whether text columns other than identifiers ([`is_identifier`])
    /// are dictionary-encoded: smaller files, but the writer hashes every
    /// value into the dictionary.
    pub dictionaries: bool,
}

/// The layout of `--out` files: 128 Ki-row groups (the file splits
/// across a reader's cores), two encoded at once, dictionaries.
pub(crate) const OUTPUT_LAYOUT: Layout = Layout {
    rows: 128 * 1024,
    at_once: 2,
    dictionaries: true,
};

/// Whether `column` names one row (`household_id`, `person_id`,
/// `id_number`, …): written without a dictionary, since nearly every value
/// is new to it (the writer hashed each one in until the dictionary
/// overflowed: a quarter of the time of writing the outcomes).
fn is_identifier(column: &str) -> bool {
    column.ends_with("_id") || column == "id_number"
}

/// Whether `column` is one of tuopin's own integer columns (`__row`, a
/// household's `__hid`, its `__village`, …): numbers that ascend or
/// repeat in runs down the file, stored as deltas — a few bits a value
/// where plain values took 4–8 bytes before compression (a third of a
/// national store: 320 MB of `__row` and 250 MB of `__village` in the
/// members file alone).
fn is_row_number(column: &str, physical: parquet::basic::Type) -> bool {
    column.starts_with("__")
        && matches!(
            physical,
            parquet::basic::Type::INT64 | parquet::basic::Type::INT32
        )
}

/// Whether a text column keeps min/max statistics: keys that lie in file
/// order and that lookups filter on — row identifiers (`household_id`,
/// `person_id`, …) and region codes (`village_code`, `code`, …), so a
/// reader skips the row groups that cannot hold a household or a region.
/// Other text (categories, ID-card numbers, lists of indicator names) is
/// spread over every row group, where min/max prunes nothing; the writer
/// compared every value twice to keep them (a sixth of the time of writing
/// a store, a fifth of writing the outcomes). Numbers, dates and flags
/// always keep theirs.
fn keeps_text_statistics(column: &str) -> bool {
    column.ends_with("_id") || column.ends_with("code")
}

/// Run `df` into one Parquet file at `path` with DataFusion's writer,
/// which encodes row groups and columns in parallel with the plan;
/// `compression` as DataFusion spells it (`zstd(1)`, `lz4_raw`, …), laid
/// out as `layout` says. Returns the number of rows written.
pub(crate) async fn write_parquet(
    df: datafusion::prelude::DataFrame,
    path: &Path,
    compression: &str,
    layout: Layout,
) -> Result<usize> {
    use datafusion::arrow::array::UInt64Array;
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let target = path
        .to_str()
        .ok_or_else(|| Error::InvalidArgument(format!("{}: path is not UTF-8", path.display())))?;
    let options = parquet_options(df.schema().inner(), compression, layout)?;
    let written = df
        .write_parquet(
            target,
            datafusion::dataframe::DataFrameWriteOptions::new().with_single_file_output(true),
            Some(options),
        )
        .await?;
    let rows = written
        .first()
        .and_then(|b| b.column(0).as_any().downcast_ref::<UInt64Array>())
        .filter(|c| !c.is_empty())
        .map(|c| c.value(0))
        .unwrap_or(0);
    Ok(usize::try_from(rows).unwrap_or(usize::MAX))
}

/// The writer options of a file of `schema` in `compression`, laid out as
/// `layout` says, with [`column_options`].
pub(crate) fn parquet_options(
    schema: &Schema,
    compression: &str,
    layout: Layout,
) -> Result<datafusion::config::TableParquetOptions> {
    let mut options = datafusion::config::TableParquetOptions::default();
    options.global.compression = Some(compression.into());
    options.global.max_row_group_size = layout.rows;
    options.global.maximum_parallel_row_group_writers = layout.at_once;
    options.global.dictionary_enabled = Some(layout.dictionaries);
    options.column_specific_options = column_options(schema)?;
    Ok(options)
}

/// The per-column writer options of a file of `schema`, keyed by the
/// Parquet path of each leaf (`failed.list.item` for a list of text):
/// identifiers without a dictionary ([`is_identifier`]), text without
/// statistics unless [`keeps_text_statistics`].
fn column_options(
    schema: &Schema,
) -> Result<std::collections::HashMap<String, datafusion::config::ParquetColumnOptions>> {
    let parquet = parquet::arrow::ArrowSchemaConverter::new().convert(schema)?;
    let mut options = std::collections::HashMap::new();
    for (i, leaf) in parquet.columns().iter().enumerate() {
        let column = schema.field(parquet.get_column_root_idx(i)).name();
        let text = leaf.physical_type() == parquet::basic::Type::BYTE_ARRAY;
        let mut o = datafusion::config::ParquetColumnOptions::default();
        if is_identifier(column) {
            o.dictionary_enabled = Some(false);
        }
        if is_row_number(column, leaf.physical_type()) {
            o.dictionary_enabled = Some(false);
            o.encoding = Some("delta_binary_packed".into());
        }
        if text && !keeps_text_statistics(column) {
            o.statistics_enabled = Some("none".into());
        }
        if o != datafusion::config::ParquetColumnOptions::default() {
            options.insert(leaf.path().string(), o);
        }
    }
    Ok(options)
}

/// A file being written in one of the [`Format`]s.
enum BatchWriter {
    Parquet(parquet::arrow::ArrowWriter<File>),
    Csv(datafusion::arrow::csv::Writer<File>),
    Json(datafusion::arrow::json::LineDelimitedWriter<File>),
    Xlsx(Box<crate::io::xlsx::XlsxWriter>),
}

impl BatchWriter {
    /// Create `path` (and its folder) for batches of `schema`.
    fn create(path: &Path, schema: SchemaRef) -> Result<BatchWriter> {
        let format = Format::from_path(path)?;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        let file = || File::create(path).map_err(|e| Error::io(path, e));
        Ok(match format {
            Format::Parquet => {
                let props = parquet::file::properties::WriterProperties::builder()
                    .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
                    .build();
                BatchWriter::Parquet(parquet::arrow::ArrowWriter::try_new(
                    file()?,
                    schema,
                    Some(props),
                )?)
            }
            Format::Csv => BatchWriter::Csv(
                datafusion::arrow::csv::WriterBuilder::new()
                    .with_header(true)
                    .build(file()?),
            ),
            Format::Json => {
                BatchWriter::Json(datafusion::arrow::json::LineDelimitedWriter::new(file()?))
            }
            Format::Xlsx => BatchWriter::Xlsx(Box::new(crate::io::xlsx::XlsxWriter::create(
                path,
                &sheet_name(path),
                &schema,
            )?)),
        })
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        match self {
            BatchWriter::Parquet(w) => w.write(batch)?,
            BatchWriter::Csv(w) => w.write(&lists_as_text(batch)?)?,
            BatchWriter::Json(w) => w.write(batch)?,
            BatchWriter::Xlsx(w) => w.write(batch)?,
        }
        Ok(())
    }

    fn finish(self) -> Result<()> {
        match self {
            BatchWriter::Parquet(w) => {
                w.close()?;
            }
            BatchWriter::Csv(_) => {}
            BatchWriter::Json(mut w) => w.finish()?,
            BatchWriter::Xlsx(w) => w.finish()?,
        }
        Ok(())
    }
}

/// The sheet name of a result file: its stem without the characters
/// Excel refuses, at most 31 characters.
fn sheet_name(path: &Path) -> String {
    let stem: String = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default()
        .chars()
        .filter(|c| !matches!(c, '[' | ']' | ':' | '*' | '?' | '/' | '\\' | '\''))
        .take(31)
        .collect();
    if stem.is_empty() {
        "result".into()
    } else {
        stem
    }
}

/// `batch` as CSV text (lists `;`-joined), with the header line if asked
/// (for the first of several batches).
pub fn csv_text(batch: &RecordBatch, header: bool) -> Result<String> {
    let batch = lists_as_text(batch)?;
    let mut buf = Vec::new();
    {
        let mut w = datafusion::arrow::csv::WriterBuilder::new()
            .with_header(header)
            .build(&mut buf);
        w.write(&batch)?;
    }
    String::from_utf8(buf).map_err(|e| Error::InvalidArgument(format!("CSV text: {e}")))
}

/// Replace `list<utf8>` columns by `;`-joined text (for CSV and printing).
pub fn lists_as_text(batch: &RecordBatch) -> Result<RecordBatch> {
    let schema = batch.schema();
    if !schema
        .fields()
        .iter()
        .any(|f| matches!(f.data_type(), DataType::List(_)))
    {
        return Ok(batch.clone());
    }
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        if let DataType::List(_) = field.data_type() {
            let list = column.as_list::<i32>();
            let mut b = StringBuilder::new();
            for i in 0..list.len() {
                if list.is_null(i) {
                    b.append_null();
                    continue;
                }
                let items = list.value(i);
                let text = datafusion::arrow::compute::cast(&items, &DataType::Utf8)?;
                let text = text.as_string::<i32>();
                let joined = (0..text.len())
                    .filter(|j| text.is_valid(*j))
                    .map(|j| text.value(j))
                    .collect::<Vec<_>>()
                    .join(";");
                b.append_value(joined);
            }
            fields.push(Field::new(field.name(), DataType::Utf8, true));
            columns.push(Arc::new(b.finish()));
        } else {
            fields.push(field.as_ref().clone());
            columns.push(column.clone());
        }
    }
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}

#[cfg(test)]
mod tests {
    use super::{write_parquet, Layout};
    use datafusion::arrow::array::{
        Int32Array, ListBuilder, RecordBatch, StringArray, StringBuilder,
    };
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use parquet::basic::Encoding;
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use std::sync::Arc;

    /// Of the Parquet file at `path`: the encodings of each column chunk
    /// of the first row group, whether each has min/max statistics, and
    /// the number of rows of each row group.
    fn read_layout(path: &std::path::Path) -> (Vec<Vec<Encoding>>, Vec<bool>, Vec<i64>) {
        let reader = SerializedFileReader::new(std::fs::File::open(path).unwrap()).unwrap();
        let meta = reader.metadata();
        let columns = meta.row_group(0).columns();
        let encodings = columns.iter().map(|c| c.encodings().collect()).collect();
        let statistics = columns
            .iter()
            .map(|c| c.statistics().is_some_and(|s| s.min_bytes_opt().is_some()))
            .collect();
        let rows = meta.row_groups().iter().map(|g| g.num_rows()).collect();
        (encodings, statistics, rows)
    }

    #[tokio::test]
    async fn files_are_cut_into_row_groups_and_identifiers_have_no_dictionary() {
        let n = 2500;
        let ids: Vec<String> = (0..n).map(|i| format!("H{i:08}")).collect();
        let villages: Vec<&str> = (0..n).map(|i| ["a", "b", "c"][i % 3]).collect();
        let statuses: Vec<&str> = (0..n).map(|i| ["poor", "exited"][i % 2]).collect();
        let mut failed = ListBuilder::new(StringBuilder::new());
        for i in 0..n {
            if i % 2 == 0 {
                failed.values().append_value("income");
            }
            failed.append(true);
        }
        let schema = Arc::new(Schema::new(vec![
            Field::new("household_id", DataType::Utf8, false),
            Field::new("village_code", DataType::Utf8, false),
            Field::new("status", DataType::Utf8, false),
            Field::new("size", DataType::Int32, false),
            Field::new_list("failed", Field::new_list_field(DataType::Utf8, true), true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(ids)),
                Arc::new(StringArray::from(villages)),
                Arc::new(StringArray::from(statuses)),
                Arc::new(Int32Array::from_iter_values((0..n).map(|i| i as i32 % 7))),
                Arc::new(failed.finish()),
            ],
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ctx = datafusion::prelude::SessionContext::new();
        for dictionaries in [true, false] {
            let path = dir.path().join(format!("{dictionaries}.parquet"));
            let layout = Layout {
                rows: 1000,
                at_once: 2,
                dictionaries,
            };
            let df = ctx.read_batch(batch.clone()).unwrap();
            let written = write_parquet(df, &path, "lz4_raw", layout).await.unwrap();
            assert_eq!(written, n);
            let (encodings, statistics, rows) = read_layout(&path);
            assert_eq!(rows, vec![1000, 1000, 500], "dictionaries: {dictionaries}");
            let dictionary = |c: usize| encodings[c].contains(&Encoding::RLE_DICTIONARY);
            assert!(!dictionary(0), "household_id: {:?}", encodings[0]);
            assert_eq!(
                dictionary(1),
                dictionaries,
                "village_code: {:?}",
                encodings[1]
            );
            // Keys and numbers keep min/max; other text and lists of text
            // have none.
            assert_eq!(statistics, vec![true, true, false, true, false]);
        }
    }
}
