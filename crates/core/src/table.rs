//! Validated tables as the layers above see them: a [`Table`] (in memory
//! or kept in a store file), its link columns ([`crate::links`]), and how
//! loading went ([`TableSummary`]). Plain data: opening a dataset is
//! [`crate::dataset`], validating it [`crate::validate`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;

/// A table kept in a Parquet file of the store: the flagged rows of the
/// validation plan; the accepted rows are those with `__bad` false.
#[derive(Debug, Clone)]
pub(crate) struct StoredFile {
    /// The file, an absolute path.
    pub path: PathBuf,
    /// Schema of the whole file (accepted columns plus fault columns).
    pub file_schema: SchemaRef,
    /// Number of accepted rows.
    pub rows: usize,
}

/// An accepted table: its rows and schema (declared columns first, then any
/// extra columns of the input).
#[derive(Debug, Clone)]
pub struct Table {
    /// Schema of the accepted rows.
    pub schema: SchemaRef,
    /// The accepted rows; empty for a table kept on disk (see
    /// [`Table::file`]).
    pub batches: Vec<RecordBatch>,
    /// Where a disk-backed table lives ([`crate::io::store`]).
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
    /// What loading changed without rejecting rows, e.g. an input column
    /// renamed because its name clashes with a derived one.
    pub notes: Vec<String>,
}

/// What validation (or a reopened store) hands to a [`crate::Dataset`]:
/// the accepted tables, the rejects ledger and the per-table summary.
#[derive(Debug, Clone, Default)]
pub(crate) struct Loaded {
    pub tables: BTreeMap<String, Table>,
    pub rejects: Vec<RecordBatch>,
    pub summary: Vec<TableSummary>,
}
