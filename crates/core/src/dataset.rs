//! Datasets: a folder with one file per table, or tables handed over in
//! memory, loaded, typed and validated into accepted tables plus a
//! `rejects` ledger.
//!
//! ```no_run
//! # async fn run() -> tuopin::Result<()> {
//! let ds = tuopin::Dataset::open("data/hebei").await?;
//! for t in ds.summary() {
//!     println!("{}: {} accepted, {} rejected", t.table, t.accepted, t.rejected);
//! }
//! # Ok(()) }
//! ```
//!
//! Each table is read from `<table>.parquet`, `<table>.csv` (UTF-8, header
//! row) or `<table>.arrow` (Arrow IPC file or stream). Reading keeps the
//! source order and numbers the rows (1-based, the CSV header not counted)
//! so every reject can point at its row; typing and every check then run as
//! DataFusion plans in [`crate::validate`].

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::error::{Error, Result};
use crate::schema::{self, TableSpec, TABLES};
use crate::store::{self, StoredFile};
use crate::validate;

/// Name of the row-number column added while loading.
pub(crate) const ROW_COLUMN: &str = "__row";

/// An accepted table: its rows and schema (declared columns first, then any
/// extra columns of the input).
#[derive(Debug, Clone)]
pub struct Table {
    /// Schema of the accepted rows.
    pub schema: SchemaRef,
    /// The accepted rows; empty for a table kept on disk (see
    /// [`Table::file`]).
    pub batches: Vec<RecordBatch>,
    /// Where a disk-backed table lives ([`crate::store`]).
    pub(crate) stored: Option<StoredFile>,
    /// The rows with their link columns ([`crate::links`]); `None` for a
    /// table without links.
    pub(crate) linked: Option<Linked>,
}

/// A table's rows with its link columns ([`crate::links`]) after its own.
#[derive(Debug, Clone)]
pub(crate) struct Linked {
    /// The table's schema, then the link columns.
    pub schema: SchemaRef,
    /// The linked rows of an in-memory table (its public batches are
    /// projections of these, sharing their buffers); empty when stored.
    pub batches: Vec<RecordBatch>,
}

impl Table {
    /// An in-memory table.
    pub fn new(schema: SchemaRef, batches: Vec<RecordBatch>) -> Table {
        Table {
            schema,
            batches,
            stored: None,
            linked: None,
        }
    }

    /// Number of rows.
    pub fn num_rows(&self) -> usize {
        match &self.stored {
            Some(s) => s.rows,
            None => self.batches.iter().map(|b| b.num_rows()).sum(),
        }
    }

    /// The store file of a disk-backed table (its rows are those with
    /// `__bad` false), `None` for a table held in memory.
    pub fn file(&self) -> Option<&Path> {
        self.stored.as_ref().map(|s| s.path.as_path())
    }
}

/// How [`Dataset::open_with`] loads a registry.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// Keep the accepted tables as Parquet files in this folder instead of
    /// in memory, for registries larger than memory ([`crate::store`]).
    /// `None` (default): in memory.
    pub store: Option<PathBuf>,
    /// Memory limit in bytes for the validation plans (duplicate keys and
    /// references spill to disk past it), as
    /// [`EngineOptions::memory_limit`](crate::EngineOptions) is for
    /// queries. `None`: no limit.
    pub memory_limit: Option<usize>,
}

/// How loading went for one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSummary {
    /// Table name.
    pub table: String,
    /// Where it came from: a file path, `memory`, or `built-in`.
    pub source: String,
    /// Rows read.
    pub rows: usize,
    /// Rows accepted.
    pub accepted: usize,
    /// Rows rejected (each appears one or more times in `rejects`).
    pub rejected: usize,
}

/// A table as read, before typing and validation: original columns plus a
/// 1-based row number.
#[derive(Debug)]
pub(crate) struct RawTable {
    pub spec: &'static TableSpec,
    pub source: String,
    pub rows: RawRows,
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

/// A loaded and validated registry.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub(crate) tables: BTreeMap<String, Table>,
    pub(crate) rejects: Vec<RecordBatch>,
    pub(crate) summary: Vec<TableSummary>,
}

impl Dataset {
    /// Load every table found in folder `dir` and validate it.
    ///
    /// Fails on structural faults (missing folder or required table,
    /// unreadable file, missing required column, uncastable type); row
    /// faults go to [`Dataset::rejects`].
    pub async fn open(dir: impl AsRef<Path>) -> Result<Dataset> {
        Self::open_with(dir, &OpenOptions::default()).await
    }

    /// [`Dataset::open`] with options, e.g. a store folder that keeps the
    /// accepted tables on disk for registries larger than memory. A store
    /// validated from the same source files (path, size, modification time)
    /// by the same tuopin version is reused without validating again.
    pub async fn open_with(dir: impl AsRef<Path>, options: &OpenOptions) -> Result<Dataset> {
        let dir = dir.as_ref().to_path_buf();
        if !dir.is_dir() {
            return Err(Error::io(
                &dir,
                std::io::Error::new(std::io::ErrorKind::NotFound, "dataset folder not found"),
            ));
        }
        let mut found = Vec::new();
        for spec in TABLES.iter() {
            match find_table_file(&dir, spec.name)? {
                Some(path) => found.push((spec, path)),
                None if spec.required => {
                    return Err(Error::MissingTable {
                        dir: dir.display().to_string(),
                        table: spec.name.to_string(),
                    })
                }
                None => {}
            }
        }
        // With a store: reuse it if it was validated from these sources,
        // else validate into it (Parquet sources streamed).
        let into_store = match &options.store {
            Some(store) => {
                let sources = store::fingerprint(&found)?;
                if let Some(dataset) = store::reopen(store, &sources)? {
                    return Ok(dataset);
                }
                store::invalidate(store)?;
                Some((store, sources))
            }
            None => None,
        };
        let mut raws = Vec::new();
        for (spec, path) in found {
            if into_store.is_some() && path.extension().is_some_and(|e| e == "parquet") {
                raws.push(RawTable {
                    spec,
                    source: path.display().to_string(),
                    rows: RawRows::Parquet(path),
                });
                continue;
            }
            let raw = tokio::task::spawn_blocking(move || read_file(spec, &path))
                .await
                .map_err(|e| Error::InvalidArgument(format!("reader task failed: {e}")))??;
            raws.push(raw);
        }
        let dataset = validate::validate(raws, options).await?;
        if let Some((store, sources)) = into_store {
            store::save(store, &sources, &dataset)?;
        }
        Ok(dataset)
    }

    /// Build a dataset from in-memory Arrow tables, e.g.
    /// `[("regions", regions_batches), ("households", household_batches)]`.
    /// Unknown table names are an error; `regions` and `households` are
    /// required.
    pub async fn from_batches<N: AsRef<str>>(
        tables: impl IntoIterator<Item = (N, Vec<RecordBatch>)>,
    ) -> Result<Dataset> {
        let mut given: BTreeMap<String, Vec<RecordBatch>> = BTreeMap::new();
        for (name, batches) in tables {
            let name = name.as_ref().to_string();
            if schema::table_spec(&name).is_none() {
                return Err(Error::InvalidArgument(format!(
                    "unknown table `{name}` (tables: {})",
                    TABLES.iter().map(|t| t.name).collect::<Vec<_>>().join(", ")
                )));
            }
            given.entry(name).or_default().extend(batches);
        }
        let mut raws = Vec::new();
        for spec in TABLES.iter() {
            match given.remove(spec.name) {
                Some(batches) => raws.push(raw_from_batches(spec, "memory", batches)?),
                None if spec.required => {
                    return Err(Error::MissingTable {
                        dir: "memory".into(),
                        table: spec.name.to_string(),
                    })
                }
                None => {}
            }
        }
        validate::validate(raws, &OpenOptions::default()).await
    }

    /// The accepted rows of `table`, if the dataset has it.
    pub fn table(&self, name: &str) -> Option<&Table> {
        self.tables.get(name)
    }

    /// Names of the tables present (after loading; `poverty_lines` is
    /// always present, built in when not supplied).
    pub fn table_names(&self) -> Vec<&str> {
        self.tables.keys().map(String::as_str).collect()
    }

    /// The rejects ledger: `table`, `row`, `key`, `column`, `problem`.
    pub fn rejects(&self) -> &[RecordBatch] {
        &self.rejects
    }

    /// Number of rows in the rejects ledger (one per fault).
    pub fn reject_count(&self) -> usize {
        self.rejects.iter().map(|b| b.num_rows()).sum()
    }

    /// Accepted and rejected rows per table, in load order.
    pub fn summary(&self) -> &[TableSummary] {
        &self.summary
    }
}

/// The file of `table` in `dir`; an error when several formats are present.
fn find_table_file(dir: &Path, table: &str) -> Result<Option<PathBuf>> {
    let found: Vec<PathBuf> = ["parquet", "csv", "arrow"]
        .iter()
        .map(|ext| dir.join(format!("{table}.{ext}")))
        .filter(|p| p.is_file())
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

fn read_file(spec: &'static TableSpec, path: &Path) -> Result<RawTable> {
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
            let reader = ParquetRecordBatchReaderBuilder::try_new(file)
                .and_then(|b| b.with_batch_size(64 * 1024).build())
                .map_err(|e| unreadable(format!("unreadable Parquet file: {e}")))?;
            reader
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| unreadable(format!("unreadable Parquet file: {e}")))?
        }
        "csv" => read_csv(file).map_err(|e| unreadable(format!("unreadable CSV file: {e}")))?,
        _ => read_ipc(file).map_err(|e| unreadable(format!("unreadable Arrow file: {e}")))?,
    };
    raw_from_batches(spec, &source, batches)
}

fn read_csv(
    mut file: File,
) -> std::result::Result<Vec<RecordBatch>, datafusion::arrow::error::ArrowError> {
    use datafusion::arrow::csv::reader::{Format, ReaderBuilder};
    let format = Format::default().with_header(true);
    let (inferred, _) = format.infer_schema(BufReader::new(&mut file), Some(0))?;
    file.seek(SeekFrom::Start(0))
        .map_err(|e| datafusion::arrow::error::ArrowError::IoError(e.to_string(), e))?;
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
        .build(BufReader::with_capacity(1 << 20, file))?;
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

/// Attach 1-based row numbers to `batches` (in their order).
pub(crate) fn raw_from_batches(
    spec: &'static TableSpec,
    source: &str,
    batches: Vec<RecordBatch>,
) -> Result<RawTable> {
    let base = match batches.first() {
        Some(b) => b.schema(),
        None => spec.schema(),
    };
    let schema = numbered_schema(spec.name, source, &base)?;
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
    })
}

/// `base` with the row-number column appended (a source may not have a
/// column of that name: it is reserved).
pub(crate) fn numbered_schema(table: &str, source: &str, base: &Schema) -> Result<SchemaRef> {
    if base.field_with_name(ROW_COLUMN).is_ok() {
        return Err(Error::Schema {
            table: table.into(),
            source_name: source.into(),
            column: Some(ROW_COLUMN.into()),
            message: "column name is reserved".into(),
        });
    }
    let mut fields: Vec<Field> = base.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new(ROW_COLUMN, DataType::Int64, false));
    Ok(Arc::new(Schema::new(fields)))
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
