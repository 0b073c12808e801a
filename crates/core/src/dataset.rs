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
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;

use crate::error::{Error, Result};
use crate::io::exports::{ColumnMap, Encoding, Reading};
use crate::io::source::{find_table_file, raw_from_batches, read_file, RawRows, RawTable};
use crate::io::{cache, store};
use crate::schema::{self, TABLES};
use crate::table::Loaded;
pub use crate::table::{Table, TableSummary};
use crate::validate;

/// How [`Dataset::open_with`] loads a registry.
///
/// The default keeps the validated tables in the dataset folder's default
/// store ([`crate::io::cache`]) and reuses it while the sources are
/// unchanged; [`OpenOptions::in_memory`] keeps nothing.
///
/// ```
/// use tuopin::OpenOptions;
/// assert!(OpenOptions::default().cache);
/// assert!(!OpenOptions::in_memory().cache);
/// let at = OpenOptions { store: Some("/tmp/hebei-store".into()), ..Default::default() };
/// assert!(at.store.is_some());
/// ```
#[derive(Clone)]
pub struct OpenOptions {
    /// Keep the validated tables in this store folder (it must not be or
    /// lie in the dataset folder). `None`: the default store when
    /// [`cache`](Self::cache) is on, else in memory.
    pub store: Option<PathBuf>,
    /// Use the default store under the cache root when no `store` is
    /// given (default `true`); `false` validates in memory and keeps
    /// nothing (CLI `--no-cache`, Python `cache=False`).
    pub cache: bool,
    /// Memory limit in bytes for the validation plans (duplicate keys and
    /// references spill to disk past it), as
    /// [`EngineOptions::memory_limit`](crate::EngineOptions) is for
    /// queries. `None`: no limit.
    pub memory_limit: Option<usize>,
    /// The encoding of CSV sources (default: detected — UTF-8 with or
    /// without BOM, else GB18030; CLI `--encoding`, Python `encoding=`).
    pub encoding: Encoding,
    /// Headers and labels added to (or overriding) the built-in Chinese
    /// map of registry exports ([`ColumnMap::builtin`]; CLI `--columns
    /// FILE`, Python `columns=`).
    pub columns: Option<ColumnMap>,
    /// Called as sources are read — `("reading", bytes read, bytes in
    /// all sources)` after each table — and around validation
    /// (`("validating", 0, 1)`, then `1, 1`); for progress bars.
    pub progress: Option<crate::synth::Progress>,
    /// Into a store, sources of at most this many bytes on disk in all are
    /// read and validated in memory (tables side by side) and the store is
    /// written from the validated rows; larger sources stream from their
    /// Parquet files into the store one table at a time, which holds
    /// little in memory (national scale). `None`: a sixteenth of
    /// [`memory_limit`](Self::memory_limit) (validation in memory takes
    /// about 13 times the Parquet sources' size), or
    /// [`DEFAULT_STAGING_LIMIT`] without a limit. `Some(0)` always streams.
    pub staging_limit: Option<u64>,
}

/// Sources up to this size are validated in memory before a store is
/// written, when no memory limit is set (see
/// [`OpenOptions::staging_limit`]): 128 MiB of Parquet, about 1.5 M
/// households with their members.
pub const DEFAULT_STAGING_LIMIT: u64 = 128 << 20;

impl std::fmt::Debug for OpenOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenOptions")
            .field("store", &self.store)
            .field("cache", &self.cache)
            .field("memory_limit", &self.memory_limit)
            .field("encoding", &self.encoding)
            .field("columns", &self.columns)
            .field("progress", &self.progress.is_some())
            .field("staging_limit", &self.staging_limit)
            .finish()
    }
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            store: None,
            cache: true,
            memory_limit: None,
            encoding: Encoding::Auto,
            columns: None,
            progress: None,
            staging_limit: None,
        }
    }
}

impl OpenOptions {
    /// Validate in memory and keep nothing on disk.
    pub fn in_memory() -> Self {
        OpenOptions {
            cache: false,
            ..Default::default()
        }
    }

    /// Whether sources of `source_bytes` bytes are validated in memory
    /// before a store is written (see [`Self::staging_limit`]).
    ///
    /// ```
    /// use tuopin::OpenOptions;
    /// let default = OpenOptions::default();
    /// assert!(default.stages(100 << 20) && !default.stages(1 << 30));
    /// let limited = OpenOptions { memory_limit: Some(3 << 30), ..Default::default() };
    /// assert!(limited.stages(192 << 20) && !limited.stages((192 << 20) + 1));
    /// let streamed = OpenOptions { staging_limit: Some(0), ..Default::default() };
    /// assert!(!streamed.stages(1));
    /// ```
    pub fn stages(&self, source_bytes: u64) -> bool {
        let limit = self.staging_limit.unwrap_or_else(|| {
            self.memory_limit.map_or(DEFAULT_STAGING_LIMIT, |l| {
                u64::try_from(l / 16).unwrap_or(u64::MAX)
            })
        });
        source_bytes <= limit
    }

    /// How sources are read under these options.
    fn reading(&self) -> Reading {
        let builtin = ColumnMap::builtin();
        Reading {
            encoding: self.encoding,
            map: Arc::new(match &self.columns {
                Some(extra) => builtin.extended(extra),
                None => builtin,
            }),
        }
    }

    /// What a store must have been read with besides the default, as a
    /// text kept with its sources (a store read otherwise is not reused).
    fn reading_key(&self) -> Option<String> {
        if self.encoding == Encoding::Auto && self.columns.is_none() {
            return None;
        }
        Some(format!(
            "encoding={:?} columns={:016x}",
            self.encoding,
            crate::io::cache::fnv1a(format!("{:?}", self.columns).as_bytes())
        ))
    }
}

/// Bytes of a source: its file, or every part of its folder.
fn source_bytes(path: &Path) -> u64 {
    if path.is_dir() {
        crate::io::parts::part_files(path)
            .map(|parts| {
                parts
                    .iter()
                    .filter_map(|p| std::fs::metadata(p).ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    } else {
        std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
    }
}

/// A loaded and validated registry.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub(crate) tables: BTreeMap<String, Table>,
    pub(crate) rejects: Vec<RecordBatch>,
    pub(crate) summary: Vec<TableSummary>,
    pub(crate) store: Option<PathBuf>,
    pub(crate) reused: bool,
}

impl From<Loaded> for Dataset {
    fn from(loaded: Loaded) -> Dataset {
        Dataset {
            tables: loaded.tables,
            rejects: loaded.rejects,
            summary: loaded.summary,
            store: None,
            reused: false,
        }
    }
}

impl Dataset {
    /// `self`, recorded as held in `store` (`reused`: reopened, not
    /// validated by this open).
    fn in_store(mut self, store: &Path, reused: bool) -> Dataset {
        self.store = Some(store.to_path_buf());
        self.reused = reused;
        self
    }

    /// Load every table found in folder `dir` and validate it — once: the
    /// validated tables and rejects are kept in the folder's default store
    /// ([`crate::io::cache`]) and reopened by later opens while the source
    /// files are unchanged (DESIGN §7). [`OpenOptions::in_memory`] keeps
    /// nothing.
    ///
    /// Fails on structural faults (missing folder or required table,
    /// unreadable file, missing required column, uncastable type); row
    /// faults go to [`Dataset::rejects`].
    pub async fn open(dir: impl AsRef<Path>) -> Result<Dataset> {
        Self::open_with(dir, &OpenOptions::default()).await
    }

    /// [`Dataset::open`] with options: a store folder of one's choosing,
    /// no store at all, a memory limit for validation. A store
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
        // With a store (the default store unless told otherwise): reuse it
        // if it was validated from these sources, else validate into it
        // (Parquet sources streamed).
        let store = match (&options.store, options.cache) {
            (Some(store), _) => Some(store.clone()),
            (None, true) => cache::default_store(&dir)?,
            (None, false) => None,
        };
        let into_store = match &store {
            Some(store) => {
                store::guard(store, &dir)?;
                let sources = store::fingerprint(&found, options.reading_key())?;
                let (at, check) = (store.clone(), sources.clone());
                if let Some(loaded) = blocking(move || store::reopen(&at, &check)).await? {
                    return Ok(Dataset::from(loaded).in_store(store, true));
                }
                match store::Building::begin(store) {
                    Ok(building) => Some((building, sources)),
                    // The default store is a convenience: where it cannot
                    // be created (a read-only home), validate in memory.
                    Err(Error::Io { .. }) if options.store.is_none() => None,
                    Err(e) => return Err(e),
                }
            }
            None => None,
        };
        let reading = options.reading();
        let sizes: Vec<u64> = found.iter().map(|(_, p)| source_bytes(p)).collect();
        let total: u64 = sizes.iter().sum();
        let staged = into_store.is_some() && options.stages(total);
        let read = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let report = |stage: &str, done: u64, total: u64| {
            if let Some(p) = &options.progress {
                p(stage, done, total);
            }
        };
        report("reading", 0, total);
        // Every table is read at once (each on a blocking thread), so the
        // cores decode several files together — Excel and GB18030 sources
        // are decoded on one thread per file.
        let mut pending = Vec::new();
        for ((spec, path), size) in found.into_iter().zip(sizes) {
            let progress = options.progress.clone();
            let read = read.clone();
            let done = move || {
                let now = read.fetch_add(size, std::sync::atomic::Ordering::Relaxed) + size;
                if let Some(p) = &progress {
                    p("reading", now, total);
                }
            };
            if into_store.is_some() && !staged && path.extension().is_some_and(|e| e == "parquet") {
                let raw = RawTable {
                    spec,
                    source: path.display().to_string(),
                    rows: RawRows::Parquet(path),
                    notes: Vec::new(),
                    map: reading.map.clone(),
                    parts: Vec::new(),
                };
                done();
                pending.push(futures::future::Either::Left(async move { Ok(raw) }));
                continue;
            }
            let source = path.display().to_string();
            let reading = reading.clone();
            let coded = validate::code_list_columns(spec);
            pending.push(futures::future::Either::Right(async move {
                let raw = blocking(move || read_file(spec, &path, &reading, &coded))
                    .await
                    .map_err(|e| e.in_table(spec.name, &source))?;
                done();
                Ok::<_, Error>(raw)
            }));
        }
        let raws = futures::future::try_join_all(pending).await?;
        let store_dir = into_store.as_ref().map(|(building, _)| building.path());
        report("validating", 0, 1);
        let into = match store_dir {
            None => validate::Target::Memory,
            Some(dir) => validate::Target::Store { dir, staged },
        };
        let loaded = validate::validate(raws, into, options.memory_limit).await?;
        report("validating", 1, 1);
        let Some((building, sources)) = into_store else {
            return Ok(loaded.into());
        };
        let at = building.store().to_path_buf();
        let loaded = blocking(move || {
            store::save(building.path(), &sources, &loaded)?;
            building.commit(&sources)
        })
        .await?;
        Ok(Dataset::from(loaded).in_store(&at, false))
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
        let map = Arc::new(ColumnMap::builtin());
        for spec in TABLES.iter() {
            match given.remove(spec.name) {
                Some(batches) => raws.push(raw_from_batches(spec, "memory", batches, map.clone())?),
                None if spec.required => {
                    return Err(Error::MissingTable {
                        dir: "memory".into(),
                        table: spec.name.to_string(),
                    })
                }
                None => {}
            }
        }
        Ok(validate::validate(raws, validate::Target::Memory, None)
            .await?
            .into())
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

    /// The store folder holding the validated tables; `None` when they
    /// are in memory.
    pub fn store(&self) -> Option<&Path> {
        self.store.as_deref()
    }

    /// Whether the tables came from a store validated earlier from the
    /// same sources (nothing was validated by this open).
    pub fn reused_store(&self) -> bool {
        self.reused
    }

    /// Accepted and rejected rows per table, in load order.
    pub fn summary(&self) -> &[TableSummary] {
        &self.summary
    }
}

/// Run file work `f` on tokio's blocking pool, so an open never blocks the
/// caller's runtime (DESIGN §1).
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => Err(Error::from_panic(e.into_panic().as_ref())),
        Err(e) => Err(Error::InvalidArgument(format!("file task failed: {e}"))),
    }
}
