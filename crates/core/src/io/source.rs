//! Reading sources: a dataset folder's table files (`<table>.parquet`, `.xlsx`,
//! `.csv`, `.arrow`, or a folder `<table>/` of such parts) or batches handed
//! over in memory, as raw tables whose rows are numbered (1-based, the CSV
//! header not counted) so every reject can point at its row — and, for a
//! folder of parts, at its part and its row within it. Typing and checking
//! are [`crate::validate`].

use std::fs::File;
use std::io::{BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};

use datafusion::catalog::streaming::StreamingTable;
use datafusion::catalog::TableProvider;
use datafusion::error::DataFusionError;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use futures::{StreamExt, TryStreamExt};
use parquet::arrow::ParquetRecordBatchStreamBuilder;

use crate::error::{Error, Result};
use crate::io::chunks::{ChunkSource, Tally};
use crate::io::exports::{self, ColumnMap, Reading};
use crate::schema::{self, TableSpec, ROW_COLUMN};

/// A table as read, before typing and validation: original columns plus a
/// 1-based row number.
#[derive(Debug)]
pub(crate) struct RawTable {
    pub spec: &'static TableSpec,
    pub source: String,
    pub rows: RawRows,
    /// What reading changed (renamed columns), for the load report.
    pub notes: Vec<String>,
    /// The header and label map the source is read with.
    pub map: Arc<ColumnMap>,
    /// For a table read from a folder of parts: each part's file name and
    /// the number (`__row`) of its first row, in order; empty otherwise.
    pub parts: Vec<Part>,
}

/// One file of a table read from a folder of parts.
#[derive(Debug, Clone)]
pub(crate) struct Part {
    /// `<table>/<file name>`, as the rejects ledger's `file` shows it.
    pub file: String,
    /// `__row` of the part's first row.
    pub first: i64,
}

/// Where the raw rows are.
#[derive(Debug)]
pub(crate) enum RawRows {
    /// Read into memory and numbered, with their schema.
    Memory {
        batches: Vec<RecordBatch>,
        schema: SchemaRef,
    },
    /// A Parquet file streamed by row groups and numbered on the fly.
    Parquet(PathBuf),
}

/// Extensions of the files a table is read from.
pub(crate) const EXTENSIONS: [&str; 4] = ["parquet", "csv", "arrow", "xlsx"];

/// The file of `table` in `dir`, or its folder of parts (`dir/<table>/`);
/// an error when several are present.
pub(crate) fn find_table_file(dir: &Path, table: &str) -> Result<Option<PathBuf>> {
    let found: Vec<PathBuf> = EXTENSIONS
        .iter()
        .map(|ext| dir.join(format!("{table}.{ext}")))
        .filter(|p| p.is_file())
        .chain(Some(dir.join(table)).filter(|p| p.is_dir()))
        .collect();
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.into_iter().next()),
        _ => Err(Error::Schema {
            table: table.to_string(),
            source_name: dir.display().to_string(),
            column: None,
            message: format!(
                "several files for one table ({}); keep one",
                found
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
    }
}

/// Read the source of table `spec` — a file, or a folder of parts — into
/// memory, numbered. A Parquet file's text columns named in
/// `dictionaries` come as dictionaries of text ([`numbered_parquet`]).
pub(crate) fn read_file(
    spec: &'static TableSpec,
    path: &Path,
    reading: &Reading,
    dictionaries: &[String],
) -> Result<RawTable> {
    if path.is_dir() {
        return crate::io::parts::read_parts(spec, path, reading);
    }
    let batches = read_batches_with(spec, path, reading, dictionaries)?;
    raw_from_batches(
        spec,
        &path.display().to_string(),
        batches,
        reading.map.clone(),
    )
}

/// The rows of one source file of table `spec`, as read (before mapping).
pub(crate) fn read_batches(
    spec: &'static TableSpec,
    path: &Path,
    reading: &Reading,
) -> Result<Vec<RecordBatch>> {
    read_batches_with(spec, path, reading, &[])
}

/// [`read_batches`], a Parquet file's text columns named in
/// `dictionaries` as dictionaries of text.
fn read_batches_with(
    spec: &'static TableSpec,
    path: &Path,
    reading: &Reading,
    dictionaries: &[String],
) -> Result<Vec<RecordBatch>> {
    let source = path.display().to_string();
    let unreadable = |message: String| Error::Schema {
        table: spec.name.to_string(),
        source_name: source.clone(),
        column: None,
        message,
    };
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default();
    let batches: Vec<RecordBatch> = match ext {
        "parquet" => {
            let columns =
                |schema: &SchemaRef| as_dictionaries(spec.name, schema, &reading.map, dictionaries);
            read_parquet(path, file, &unreadable, &columns)?
        }
        "csv" => read_csv(path, reading.encoding)
            .map_err(|e| unreadable(format!("unreadable CSV file: {e}")))?,
        "xlsx" => crate::io::xlsx::read_xlsx(path, spec.name)
            .map_err(|e| unreadable(format!("unreadable Excel file: {e}")))?,
        _ => read_ipc(file).map_err(|e| unreadable(format!("unreadable Arrow file: {e}")))?,
    };
    Ok(batches)
}

/// A Parquet source's rows: its row groups decoded as contiguous runs, one
/// run per core at once, the runs' batches concatenated in order (so rows
/// keep their file order). `columns` says how the file's columns are read
/// (some text columns as dictionaries). A panic in a decoder thread is an
/// [`Error::ReaderPanic`], like one on the calling thread.
fn read_parquet(
    path: &Path,
    file: File,
    unreadable: &(dyn Fn(String) -> Error + Sync),
    columns: &dyn Fn(&SchemaRef) -> SchemaRef,
) -> Result<Vec<RecordBatch>> {
    use parquet::arrow::arrow_reader::ArrowReaderMetadata;
    let failed = |e: &dyn std::fmt::Display| unreadable(format!("unreadable Parquet file: {e}"));
    let meta = ArrowReaderMetadata::load(&file, source_options()).map_err(|e| failed(&e))?;
    check_footer(meta.metadata()).map_err(unreadable)?;
    let hint = columns(meta.schema());
    let meta =
        ArrowReaderMetadata::try_new(meta.metadata().clone(), source_options().with_schema(hint))
            .map_err(|e| failed(&e))?;
    let groups: Vec<usize> = (0..meta.metadata().num_row_groups()).collect();
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let read_run = |run: Vec<usize>| -> Result<Vec<RecordBatch>> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        ParquetRecordBatchReaderBuilder::new_with_metadata(file, meta.clone())
            .with_row_groups(run)
            .with_batch_size(64 * 1024)
            .build()
            .map_err(|e| failed(&e))?
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| failed(&e))
    };
    let mut runs = contiguous_runs(&groups, threads);
    if runs.len() == 1 {
        return runs.pop().map_or_else(|| Ok(Vec::new()), read_run);
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = runs
            .into_iter()
            .map(|run| scope.spawn(move || read_run(run)))
            .collect();
        // Every thread is joined before any result is looked at: a thread
        // left unjoined that panicked would make the scope panic.
        let joined: Vec<_> = handles.into_iter().map(|h| h.join()).collect();
        let mut batches = Vec::new();
        for run in joined {
            match run {
                Ok(run) => batches.extend(run?),
                Err(payload) => return Err(Error::from_panic(payload.as_ref())),
            }
        }
        Ok(batches)
    })
}

/// `items` as up to `n` contiguous runs of near-equal length, in order;
/// always at least one run (empty when `items` is).
fn contiguous_runs<T: Clone>(items: &[T], n: usize) -> Vec<Vec<T>> {
    let n = n.clamp(1, items.len().max(1));
    let per = items.len().div_ceil(n).max(1);
    let mut runs: Vec<Vec<T>> = items.chunks(per).map(<[T]>::to_vec).collect();
    if runs.is_empty() {
        runs.push(Vec::new());
    }
    runs
}

/// A CSV file's rows, every column as text, in `encoding` (detected when
/// `Auto`: [`exports::detect`]).
fn read_csv(
    path: &Path,
    encoding: exports::Encoding,
) -> std::result::Result<Vec<RecordBatch>, datafusion::arrow::error::ArrowError> {
    use datafusion::arrow::csv::reader::{Format, ReaderBuilder};
    let io = |e: std::io::Error| datafusion::arrow::error::ArrowError::IoError(e.to_string(), e);
    let encoding = exports::detect(path, encoding).map_err(io)?;
    let format = Format::default().with_header(true);
    let (inferred, _) =
        format.infer_schema(exports::utf8_reader(path, encoding).map_err(io)?, Some(0))?;
    // Every column is read as text; typing happens in the validation plan so
    // that a bad value becomes a reject, not a failed load.
    let text = Arc::new(Schema::new(
        inferred
            .fields()
            .iter()
            .map(|f| Field::new(f.name(), DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ));
    // Short rows are read with the missing cells null, so they become
    // rejects naming the missing values rather than failing the whole load.
    let reader = ReaderBuilder::new(text)
        .with_format(format)
        .with_truncated_rows(true)
        .with_batch_size(64 * 1024)
        .build(exports::utf8_reader(path, encoding).map_err(io)?)?;
    reader.collect()
}

fn read_ipc(
    mut file: File,
) -> std::result::Result<Vec<RecordBatch>, datafusion::arrow::error::ArrowError> {
    use datafusion::arrow::ipc::reader::{FileReader, StreamReader};
    match FileReader::try_new(BufReader::new(&mut file), None) {
        Ok(reader) => reader.collect(),
        Err(_) => {
            file.seek(SeekFrom::Start(0))
                .map_err(|e| datafusion::arrow::error::ArrowError::IoError(e.to_string(), e))?;
            StreamReader::try_new(BufReader::new(file), None)?.collect()
        }
    }
}

/// How a source Parquet file is read: its column types come from the
/// Parquet schema, not from the Arrow schema some writers embed in the
/// footer metadata — a damaged embedded schema made the Arrow decoder
/// panic (found by the `load_parquet` fuzz target, RELIABILITY.md), and
/// validation casts every declared column to its declared type anyway.
fn source_options() -> ArrowReaderOptions {
    ArrowReaderOptions::new().with_skip_arrow_metadata(true)
}

/// Refuse a footer whose column chunks have negative offsets or sizes:
/// the Parquet reader asserts on them (a panic; found by the
/// `load_parquet` fuzz target, RELIABILITY.md).
fn check_footer(
    meta: &parquet::file::metadata::ParquetMetaData,
) -> std::result::Result<(), String> {
    for (g, rg) in meta.row_groups().iter().enumerate() {
        if rg.num_rows() < 0 {
            return Err(format!(
                "damaged Parquet footer: row group {g} has a negative row count"
            ));
        }
        for c in rg.columns() {
            let start = c.dictionary_page_offset().unwrap_or(c.data_page_offset());
            if start < 0 || c.data_page_offset() < 0 || c.compressed_size() < 0 {
                return Err(format!(
                    "damaged Parquet footer: column `{}` of row group {g} has a negative offset or size",
                    c.column_path()
                ));
            }
        }
    }
    Ok(())
}

/// Attach 1-based row numbers to `batches` (in their order).
pub(crate) fn raw_from_batches(
    spec: &'static TableSpec,
    source: &str,
    batches: Vec<RecordBatch>,
    map: Arc<ColumnMap>,
) -> Result<RawTable> {
    let base = match batches.first() {
        Some(b) => b.schema(),
        None => spec.schema(),
    };
    let (schema, notes) = numbered_schema(spec.name, &base, &map);
    let mut next = 1i64;
    let mut out = Vec::with_capacity(batches.len());
    for batch in batches {
        if batch.schema().fields() != base.fields() {
            return Err(Error::Schema {
                table: spec.name.into(),
                source_name: source.into(),
                column: None,
                message: "record batches have different schemas".into(),
            });
        }
        out.push(number_rows(&batch, &schema, next)?);
        next += batch.num_rows() as i64;
    }
    Ok(RawTable {
        spec,
        source: source.to_string(),
        rows: RawRows::Memory {
            batches: out,
            schema,
        },
        notes,
        map,
        parts: Vec::new(),
    })
}

/// `__row` ascending: the order of a raw table's partitions.
pub(crate) fn row_order() -> datafusion::logical_expr::SortExpr {
    datafusion::prelude::col(ROW_COLUMN).sort(true, false)
}

/// The English name of each column of `base` under `map` (a header the
/// map knows, unless its English column is there too), and how many were
/// mapped.
pub(crate) fn english_names(table: &str, base: &Schema, map: &ColumnMap) -> (Vec<String>, usize) {
    let mut english: Vec<String> = Vec::with_capacity(base.fields().len());
    let mut mapped = 0;
    for f in base.fields() {
        let name = f.name().as_str();
        match map.english(table, name) {
            Some(e)
                if !english.iter().any(|n| n == e)
                    && !base.fields().iter().any(|g| g.name() == e) =>
            {
                english.push(e.to_string());
                mapped += 1;
            }
            _ => english.push(name.to_string()),
        }
    }
    (english, mapped)
}

/// `base` with the row-number column appended; a column named by an
/// exported header of `map` (DESIGN §8) read as its English column, unless
/// that column is there too; and every input column whose name clashes
/// with a derived or internal one ([`schema::reserved_column`]) renamed
/// `source_<name>`. The notes say what was renamed (DESIGN §11: input
/// columns may be named anything).
pub(crate) fn numbered_schema(
    table: &str,
    base: &Schema,
    map: &ColumnMap,
) -> (SchemaRef, Vec<String>) {
    let (english, mapped) = english_names(table, base, map);
    let base = Schema::new(
        base.fields()
            .iter()
            .zip(&english)
            .map(|(f, name)| f.as_ref().clone().with_name(name))
            .collect::<Vec<_>>(),
    );
    let names: Vec<&str> = base.fields().iter().map(|f| f.name().as_str()).collect();
    let mut notes = Vec::new();
    if mapped > 0 {
        notes.push(format!(
            "{mapped} exported (Chinese) headers read as their English columns"
        ));
    }
    let mut fields: Vec<Field> = Vec::with_capacity(names.len() + 1);
    for f in base.fields() {
        let name = f.name().as_str();
        if !schema::reserved_column(table, name) {
            fields.push(f.as_ref().clone());
            continue;
        }
        let renamed = schema::source_name(name, &|c: &str| {
            names.contains(&c) || fields.iter().any(|g| g.name() == c)
        });
        notes.push(format!(
            "column `{name}` renamed `{renamed}`: `{name}` is a name tuopin derives or uses"
        ));
        fields.push(f.as_ref().clone().with_name(renamed));
    }
    fields.push(Field::new(ROW_COLUMN, DataType::Int64, false));
    (Arc::new(Schema::new(fields)), notes)
}

/// `batch` with its rows numbered `first`, `first + 1`, … under `schema`
/// (from [`numbered_schema`]).
pub(crate) fn number_rows(
    batch: &RecordBatch,
    schema: &SchemaRef,
    first: i64,
) -> std::result::Result<RecordBatch, datafusion::arrow::error::ArrowError> {
    let n = batch.num_rows() as i64;
    let mut columns = batch.columns().to_vec();
    columns.push(Arc::new(Int64Array::from_iter_values(first..first + n)));
    RecordBatch::try_new(schema.clone(), columns)
}

/// A Parquet file read as `partitions` streams of whole row groups, each
/// row numbered (`__row`, 1-based, in file order) from the row-group
/// offsets in the footer — so a large source never sits in memory and
/// every reject still names its row.
#[derive(Debug)]
pub(crate) struct NumberedParquet {
    path: PathBuf,
    schema: SchemaRef,
    /// (row group index, number of its first row) read by this partition.
    groups: Vec<(usize, i64)>,
    batch_size: usize,
    /// How the file's columns are read (some text columns as
    /// dictionaries, [`numbered_parquet`]).
    file_schema: SchemaRef,
    /// The nulls of each row group as decoded, for a store file that
    /// copies column chunks ([`crate::io::chunks`]).
    tally: Arc<Tally>,
}

impl PartitionStream for NumberedParquet {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let path = self.path.clone();
        let schema = self.schema.clone();
        let batch_size = self.batch_size;
        let out_schema = schema.clone();
        let file_schema = self.file_schema.clone();
        let tally = self.tally.clone();
        let stream = futures::stream::iter(self.groups.clone())
            .then(move |(group, first)| {
                let path = path.clone();
                let schema = schema.clone();
                let options = source_options().with_schema(file_schema.clone());
                let mut counter = tally.counter(group);
                async move {
                    // Errors name the file: a source can be damaged past
                    // its footer, which is only found while streaming.
                    let named = {
                        let path = path.clone();
                        move |e: &dyn std::fmt::Display| {
                            DataFusionError::Execution(format!("{}: {e}", path.display()))
                        }
                    };
                    let file = tokio::fs::File::open(&path).await.map_err(|e| named(&e))?;
                    let reader = ParquetRecordBatchStreamBuilder::new_with_options(file, options)
                        .await
                        .and_then(|b| {
                            b.with_row_groups(vec![group])
                                .with_batch_size(batch_size)
                                .build()
                        })
                        .map_err(|e| named(&e))?;
                    let mut next = first;
                    Ok::<_, DataFusionError>(reader.map(move |batch| {
                        let batch = batch.map_err(|e| named(&e))?;
                        counter.add(&batch);
                        let numbered = number_rows(&batch, &schema, next)?;
                        next += batch.num_rows() as i64;
                        Ok(numbered)
                    }))
                }
            })
            .try_flatten();
        Box::pin(RecordBatchStreamAdapter::new(out_schema, stream))
    }
}

/// `file` (a Parquet file's columns) with the utf8 columns whose English
/// names are in `dictionaries` as dictionaries of text.
fn as_dictionaries(
    table: &str,
    file: &SchemaRef,
    map: &ColumnMap,
    dictionaries: &[String],
) -> SchemaRef {
    let (english, _) = english_names(table, file, map);
    let fields: Vec<Field> = file
        .fields()
        .iter()
        .zip(&english)
        .map(|(f, name)| {
            if f.data_type() == &DataType::Utf8 && dictionaries.contains(name) {
                let text =
                    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
                f.as_ref().clone().with_data_type(text)
            } else {
                f.as_ref().clone()
            }
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, file.metadata().clone()))
}

/// A Parquet source as a numbered table ([`numbered_parquet`]).
pub(crate) struct NumberedParquetTable {
    /// Its row groups as partition streams.
    pub provider: Arc<dyn TableProvider>,
    /// Its columns (clashing names renamed) and `__row`.
    pub schema: SchemaRef,
    /// Number of rows (from the footer).
    pub rows: usize,
    /// Columns renamed.
    pub notes: Vec<String>,
    /// The file, for a store file that copies its column chunks.
    pub chunks: Arc<ChunkSource>,
}

/// The raw rows of Parquet file `path` (its columns plus `__row`) as a
/// table of `partitions` streams, and the number of rows. The text
/// columns named in `dictionaries` (English names) come as dictionaries
/// of text (`Dictionary(Int32, Utf8)`), as Parquet keeps such columns:
/// validation checks each distinct value once.
pub(crate) fn numbered_parquet(
    table: &str,
    path: &Path,
    partitions: usize,
    batch_size: usize,
    map: &ColumnMap,
    dictionaries: &[String],
) -> Result<NumberedParquetTable> {
    let unreadable = |message: String| Error::Schema {
        table: table.to_string(),
        source_name: path.display().to_string(),
        column: None,
        message,
    };
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new_with_options(file, source_options())
        .map_err(|e| unreadable(format!("unreadable Parquet file: {e}")))?;
    check_footer(builder.metadata()).map_err(unreadable)?;
    let file_schema = as_dictionaries(table, builder.schema(), map, dictionaries);
    let (schema, notes) = numbered_schema(table, &file_schema, map);

    let mut groups = Vec::new();
    let mut first = 1i64;
    for (i, rg) in builder.metadata().row_groups().iter().enumerate() {
        groups.push((i, first));
        first += rg.num_rows();
    }
    let rows = (first - 1) as usize;
    let chunks = Arc::new(ChunkSource {
        path: path.to_path_buf(),
        metadata: builder.metadata().clone(),
        tally: Tally::new(row_counts(builder.metadata())),
    });
    // Contiguous runs of row groups per partition (at least one partition,
    // even for a file without row groups, so the table has a stream).
    let parts = contiguous_runs(&groups, partitions)
        .into_iter()
        .map(|groups| {
            Arc::new(NumberedParquet {
                path: path.to_path_buf(),
                schema: schema.clone(),
                groups,
                batch_size,
                file_schema: file_schema.clone(),
                tally: chunks.tally.clone(),
            }) as Arc<dyn PartitionStream>
        })
        .collect();
    // Each partition streams its row groups in order, so `__row` ascends
    // within it (validation's joins keep that order: `validate::in_order`).
    let provider =
        StreamingTable::try_new(schema.clone(), parts)?.with_sort_order(vec![row_order()]);
    Ok(NumberedParquetTable {
        provider: Arc::new(provider),
        schema,
        rows,
        notes,
        chunks,
    })
}

/// The rows of each of a file's row groups.
fn row_counts(metadata: &parquet::file::metadata::ParquetMetaData) -> Vec<usize> {
    let rows = metadata.row_groups().iter().map(|g| g.num_rows());
    rows.map(|n| usize::try_from(n).unwrap_or(0)).collect()
}

#[cfg(test)]
mod tests {
    use super::contiguous_runs;

    #[test]
    fn contiguous_runs_keep_order_and_never_vanish() {
        let items: Vec<usize> = (0..12).collect();
        assert_eq!(
            contiguous_runs(&items, 2),
            vec![(0..6).collect::<Vec<_>>(), (6..12).collect()]
        );
        assert_eq!(
            contiguous_runs(&items[..5], 2),
            vec![vec![0, 1, 2], vec![3, 4]]
        );
        // More runs asked than items: one item each; none asked: one run.
        assert_eq!(contiguous_runs(&items[..2], 8), vec![vec![0], vec![1]]);
        assert_eq!(contiguous_runs(&items[..3], 0), vec![vec![0, 1, 2]]);
        assert_eq!(contiguous_runs::<usize>(&[], 4), vec![Vec::<usize>::new()]);
    }
}
