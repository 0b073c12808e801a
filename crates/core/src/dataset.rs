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
//! DataFusion plans in `validate`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use datafusion::arrow::array::RecordBatch;

use crate::error::{Error, Result};
use crate::io::source::{find_table_file, raw_from_batches, read_file, RawRows, RawTable};
use crate::io::store;
use crate::schema::{self, TABLES};
use crate::table::Loaded;
pub use crate::table::{Table, TableSummary};
use crate::validate;

/// How [`Dataset::open_with`] loads a registry.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// Keep the accepted tables as Parquet files in this folder instead of
    /// in memory, for registries larger than memory (`io::store`).
    /// `None` (default): in memory.
    pub store: Option<PathBuf>,
    /// Memory limit in bytes for the validation plans (duplicate keys and
    /// references spill to disk past it), as
    /// [`EngineOptions::memory_limit`](crate::EngineOptions) is for
    /// queries. `None`: no limit.
    pub memory_limit: Option<usize>,
}

/// A loaded and validated registry.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub(crate) tables: BTreeMap<String, Table>,
    pub(crate) rejects: Vec<RecordBatch>,
    pub(crate) summary: Vec<TableSummary>,
}

impl From<Loaded> for Dataset {
    fn from(loaded: Loaded) -> Dataset {
        Dataset {
            tables: loaded.tables,
            rejects: loaded.rejects,
            summary: loaded.summary,
        }
    }
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
                store::guard(store, &dir)?;
                let sources = store::fingerprint(&found)?;
                let (at, check) = (store.clone(), sources.clone());
                if let Some(loaded) = blocking(move || store::reopen(&at, &check)).await? {
                    return Ok(loaded.into());
                }
                Some((store::Building::begin(store)?, sources))
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
                    notes: Vec::new(),
                });
                continue;
            }
            raws.push(blocking(move || read_file(spec, &path)).await?);
        }
        let store_dir = into_store.as_ref().map(|(building, _)| building.path());
        let loaded = validate::validate(raws, store_dir, options.memory_limit).await?;
        let Some((building, sources)) = into_store else {
            return Ok(loaded.into());
        };
        let loaded = blocking(move || {
            store::save(building.path(), &sources, &loaded)?;
            building.commit(&sources)
        })
        .await?;
        Ok(loaded.into())
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
        Ok(validate::validate(raws, None, None).await?.into())
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

/// Run file work `f` on tokio's blocking pool, so an open never blocks the
/// caller's runtime (DESIGN §1).
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::InvalidArgument(format!("file task failed: {e}")))?
}
