//! Stores: validated datasets kept on disk, so validation runs once per
//! version of the sources (DESIGN §7), and registries larger than memory
//! (a national registry of 30 million households) stream from disk.
//!
//! A [`crate::Dataset`] opened from a folder keeps its accepted tables in
//! a store — the folder's default store ([`crate::io::cache`]) or one
//! chosen with [`crate::OpenOptions::store`] — and holds them in memory
//! only when opened with [`crate::OpenOptions::in_memory`] or from
//! in-memory tables:
//!
//! ```no_run
//! # async fn run() -> tuopin::Result<()> {
//! use tuopin::{Dataset, Engine, EngineOptions, OpenOptions};
//! let limit = Some(3 << 30); // 3 GiB, for validation and for queries
//! let options = OpenOptions { store: Some("/tmp/tuopin-store".into()), memory_limit: limit, ..Default::default() };
//! let ds = Dataset::open_with("data/national", &options).await?;
//! let engine = Engine::with_options(
//!     ds,
//!     EngineOptions { memory_limit: limit, ..Default::default() },
//! )
//! .await?;
//! # Ok(()) }
//! ```
//!
//! What changes (the checks, rejects and results do not):
//!
//! - a Parquet source is read as a stream of row groups, numbered on the
//!   fly (`NumberedParquet`), never loaded whole (CSV and Arrow sources
//!   are still read into memory first);
//! - the validation plan of each table (typing, row checks, duplicate keys
//!   as a spillable aggregate, references as joins) is written once to
//!   `<store>/<table>.parquet` with its `__bad` flag and fault columns; the
//!   rejects ledger is read back from the flagged rows;
//! - the accepted table is a view over that file (`WHERE NOT __bad`), so
//!   every later query streams from disk under the engine's memory limit.
//!
//! Row order of a stored table is not the source order (the write is
//! parallel); rejects still name the source row.
//!
//! A store remembers what it was validated from (`tuopin-store.toml`:
//! each source file's path, size and modification time, and the tuopin
//! version) and keeps its rejects ledger (`rejects.parquet`); opening the
//! same sources into the same store again reuses it without validating.
//! Any change of a source file, or a missing store file, validates again.
//!
//! A store is built in a temporary folder beside it and renamed into place
//! ([`Building`]), so an interrupted run leaves no half store; a store that
//! is, lies inside or holds the dataset folder is refused before anything
//! is written ([`guard`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::error::ArrowError;
use datafusion::catalog::TableProvider;
use datafusion::common::Column;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::logical_expr::{col, not, Expr};
use datafusion::prelude::{DataFrame, SessionContext};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::io::output::Layout;
use crate::schema::TableSpec;
use crate::table::{Linked, Loaded, StoredFile, Table, TableSummary};

/// Column of a stored table that is true for a rejected row.
pub(crate) const BAD_COLUMN: &str = "__bad";

/// The layout of a store file validated in memory first (a small
/// dataset, [`crate::OpenOptions::staging_limit`]): 128 Ki-row groups, so
/// a scan of a 1.2 M-row table splits evenly across the cores (in 1 Mi-row
/// groups one core decoded 91 % of households), two encoded at once, and
/// text without dictionaries — interning every value was over a third of
/// writing the store, and the first command on a dataset waits for it
/// (the store is a third larger: 183 against 137 MB at 1.2 M households).
const STAGED: Layout = Layout {
    rows: 128 * 1024,
    at_once: 2,
    dictionaries: false,
};

/// The layout of a store file streamed from its source (national scale):
/// DataFusion's 1 Mi-row groups, one encoded at a time beside the
/// validation plan, dictionaries (size matters more there).
pub(crate) const STREAMED: Layout = Layout {
    rows: 1024 * 1024,
    at_once: 1,
    dictionaries: true,
};

/// How store files are compressed (LZ4: the store is read back many
/// times and decompression speed matters more than size).
pub(crate) const COMPRESSION: &str = "lz4_raw";

/// Write the flagged rows of `df` to `path` (one Parquet file), laid out
/// for a `staged` or a streamed table.
pub(crate) async fn write_flagged(df: DataFrame, path: &Path, staged: bool) -> Result<()> {
    let layout = if staged { STAGED } else { STREAMED };
    crate::io::output::write_parquet(df, path, COMPRESSION, layout).await?;
    Ok(())
}

/// The store file `<store>/<table>.parquet`, as an absolute path.
pub(crate) fn stored_path(store: &Path, table: &str) -> Result<PathBuf> {
    std::fs::create_dir_all(store).map_err(|e| Error::io(store, e))?;
    let dir = std::fs::canonicalize(store).map_err(|e| Error::io(store, e))?;
    Ok(dir.join(format!("{table}.parquet")))
}

/// The whole stored file (accepted and rejected rows, fault columns) as a
/// listing table: scans split by byte range across the session's
/// partitions, columns and row groups read on demand.
pub(crate) fn flagged_provider(stored: &StoredFile) -> Result<Arc<dyn TableProvider>> {
    let path = stored.path.to_str().ok_or_else(|| {
        Error::InvalidArgument(format!(
            "{}: store path is not UTF-8",
            stored.path.display()
        ))
    })?;
    let url = ListingTableUrl::parse(path)?;
    let options =
        ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    let config = ListingTableConfig::new(url)
        .with_listing_options(options)
        .with_schema(stored.file_schema.clone());
    Ok(Arc::new(ListingTable::try_new(config)?))
}

/// The schema of a stored table's accepted rows: the file's `columns`, in
/// that order (the file also holds the `__bad` flag and the fault columns).
pub(crate) fn accepted_schema(
    file_schema: &Schema,
    columns: &[String],
) -> std::result::Result<SchemaRef, ArrowError> {
    let indices = columns
        .iter()
        .map(|c| file_schema.index_of(c))
        .collect::<std::result::Result<Vec<usize>, _>>()?;
    Ok(Arc::new(file_schema.project(&indices)?))
}

/// The rows of stored `table` with its link columns ([`crate::links`]):
/// the file's `columns`, then the links; `None` for a table without links.
pub(crate) fn stored_linked(
    file_schema: &Schema,
    table: &str,
    columns: &[String],
) -> std::result::Result<Option<Linked>, ArrowError> {
    let links = crate::links::columns(table);
    if links.is_empty() {
        return Ok(None);
    }
    let mut linked = columns.to_vec();
    linked.extend(links.iter().map(|c| c.to_string()));
    Ok(Some(Linked {
        schema: accepted_schema(file_schema, &linked)?,
        batches: Vec::new(),
    }))
}

/// The accepted rows of a stored table: a view over the file that keeps
/// the rows with `__bad` false and the table's own columns (`schema`).
pub(crate) fn accepted_view(
    ctx: &SessionContext,
    stored: &StoredFile,
    schema: &SchemaRef,
) -> Result<Arc<dyn TableProvider>> {
    let columns: Vec<Expr> = schema
        .fields()
        .iter()
        .map(|f| Expr::Column(Column::new_unqualified(f.name())))
        .collect();
    let view = ctx
        .read_table(flagged_provider(stored)?)?
        .filter(not(col(BAD_COLUMN)))?
        .select(columns)?
        .into_view();
    Ok(view)
}

// ---------------------------------------------------------------------
// Reusing a store: validated once, opened many times.
// ---------------------------------------------------------------------

/// File of the store that records what it was validated from; written
/// last, removed first, so a half-written store is never reused.
const MANIFEST: &str = "tuopin-store.toml";
/// The rejects ledger of the store.
const REJECTS: &str = "rejects.parquet";

/// What a store was validated from and holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Manifest {
    /// tuopin version that wrote the store (checks may change between
    /// versions).
    version: String,
    /// The dataset folder validated (for `tuopin cache list`).
    #[serde(default)]
    dataset: String,
    sources: Vec<Source>,
    tables: Vec<Entry>,
}

impl Manifest {
    /// Whether the store was validated from exactly `sources` (path, size,
    /// modification time) by this tuopin version: reusable.
    fn validated_from(&self, sources: &[Source]) -> bool {
        self.version == store_version() && self.sources == sources
    }
}

/// The layout of a store's files; raised when they change (2: the rejects
/// ledger gained `file`), so a store written before is validated again.
const STORE_FORMAT: u32 = 2;

/// The version a store records: tuopin's and the store layout's.
fn store_version() -> String {
    format!("{}+store{STORE_FORMAT}", env!("CARGO_PKG_VERSION"))
}

/// One source file, as found when validating.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Source {
    table: String,
    path: String,
    bytes: u64,
    modified_secs: u64,
    modified_nanos: u32,
}

/// One table of the store: its load summary and accepted columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Entry {
    table: String,
    source: String,
    rows: u64,
    accepted: u64,
    rejected: u64,
    /// Accepted columns, in order; empty for the built-in poverty lines
    /// (kept in memory).
    columns: Vec<String>,
    /// The load report's notes (renamed columns).
    #[serde(default)]
    notes: Vec<String>,
}

/// Path, size and modification time of every source file, and `reading`
/// (how the sources were read, when not the default) as one more entry.
pub(crate) fn fingerprint(
    found: &[(&'static TableSpec, PathBuf)],
    reading: Option<String>,
) -> Result<Vec<Source>> {
    let options = reading.map(|r| Source {
        table: "(reading)".into(),
        path: r,
        bytes: 0,
        modified_secs: 0,
        modified_nanos: 0,
    });
    // A folder of parts is fingerprinted part by part.
    let mut files: Vec<(&'static TableSpec, PathBuf)> = Vec::new();
    for (spec, path) in found {
        if path.is_dir() {
            for part in crate::io::parts::part_files(path)? {
                files.push((spec, part));
            }
        } else {
            files.push((spec, path.clone()));
        }
    }
    files
        .iter()
        .map(|(spec, path)| {
            let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
            let modified = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .unwrap_or_default();
            let absolute = std::fs::canonicalize(path).map_err(|e| Error::io(path, e))?;
            Ok(Source {
                table: spec.name.to_string(),
                path: absolute.display().to_string(),
                bytes: meta.len(),
                modified_secs: modified.as_secs(),
                modified_nanos: modified.subsec_nanos(),
            })
        })
        .chain(options.map(Ok))
        .collect()
}

/// File that marks a folder as a tuopin store (written first), so a store
/// being replaced is never mistaken for a user's folder.
const MARKER: &str = "TUOPIN-STORE";

/// `path` made absolute with its existing part resolved (symbolic links,
/// `..`), for a path that may not exist yet.
fn resolved(path: &Path) -> Result<PathBuf> {
    let absolute = std::path::absolute(path).map_err(|e| Error::io(path, e))?;
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    while !existing.exists() {
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                existing = parent;
            }
            _ => break,
        }
    }
    let mut out = std::fs::canonicalize(existing).map_err(|e| Error::io(existing, e))?;
    out.extend(rest.iter().rev());
    Ok(out)
}

/// Refuse, before anything is written, a store that is the dataset folder
/// `dir`, lies inside it, or holds it (replacing such a store would
/// overwrite or delete sources). Errors name both paths.
pub(crate) fn guard(store: &Path, dir: &Path) -> Result<()> {
    let store_at = resolved(store)?;
    let dir_at = std::fs::canonicalize(dir).map_err(|e| Error::io(dir, e))?;
    let message = if store_at == dir_at {
        Some(format!("is the dataset folder {}", dir_at.display()))
    } else if store_at.starts_with(&dir_at) {
        Some(format!(
            "lies inside the dataset folder {}",
            dir_at.display()
        ))
    } else if dir_at.starts_with(&store_at) {
        Some(format!("holds the dataset folder {}", dir_at.display()))
    } else {
        None
    };
    match message {
        Some(m) => Err(Error::Store {
            store: store.to_path_buf(),
            message: format!(
                "{m}; a store never lies in or around its sources — choose a folder outside {}",
                dir_at.display()
            ),
        }),
        None => Ok(()),
    }
}

/// Whether `path` may be replaced by a new store: absent, empty, or a
/// tuopin store (marker or manifest present).
fn replaceable(path: &Path) -> Result<bool> {
    if !path.exists() {
        return Ok(true);
    }
    if !path.is_dir() {
        return Ok(false);
    }
    let mut entries = std::fs::read_dir(path).map_err(|e| Error::io(path, e))?;
    Ok(entries.next().is_none() || is_store(path))
}

/// The error for a folder that may not be replaced by a store.
fn not_a_store(path: &Path) -> Error {
    Error::Store {
        store: path.to_path_buf(),
        message: "is not empty and not a tuopin store; choose a new or empty folder".into(),
    }
}

/// A store being built: validation writes into a temporary folder beside
/// the store, which [`Building::commit`] renames into place — so an
/// interrupted run leaves no half store that a later run would trust. The
/// temporary folder is removed when the build is dropped uncommitted.
#[derive(Debug)]
pub(crate) struct Building {
    store: PathBuf,
    tmp: PathBuf,
    done: bool,
}

impl Building {
    /// Start a build of `store` (refused when `store` is a folder that is
    /// not a tuopin store).
    pub fn begin(store: &Path) -> Result<Building> {
        if !replaceable(store)? {
            return Err(not_a_store(store));
        }
        let store_at = resolved(store)?;
        let parent = store_at.parent().unwrap_or(Path::new("/")).to_path_buf();
        std::fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
        let name = store_at
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "store".into());
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let tmp = parent.join(format!(".{name}.tmp-{}-{stamp}", std::process::id()));
        std::fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let marker = tmp.join(MARKER);
        std::fs::write(
            &marker,
            "a tuopin store: validated tables; safe to delete\n",
        )
        .map_err(|e| Error::io(&marker, e))?;
        Ok(Building {
            store: store_at,
            tmp,
            done: false,
        })
    }

    /// The folder validation writes into.
    pub fn path(&self) -> &Path {
        &self.tmp
    }

    /// Where the store will be once committed.
    pub fn store(&self) -> &Path {
        &self.store
    }

    /// Put the finished build in place of the store and reopen it there.
    /// When another process finished a valid store for the same sources
    /// first, that one is kept (both agree) and this build is dropped.
    pub fn commit(mut self, sources: &[Source]) -> Result<Loaded> {
        if let Some(loaded) = reopen(&self.store, sources)? {
            return Ok(loaded);
        }
        if self.store.exists() {
            if !replaceable(&self.store)? {
                return Err(not_a_store(&self.store));
            }
            remove_folder(&self.store)?;
        }
        if let Err(e) = std::fs::rename(&self.tmp, &self.store) {
            // Another process may have renamed its build in meanwhile.
            return match reopen(&self.store, sources)? {
                Some(loaded) => Ok(loaded),
                None => Err(Error::io(&self.store, e)),
            };
        }
        self.done = true;
        reopen(&self.store, sources)?.ok_or_else(|| Error::Store {
            store: self.store.clone(),
            message: "the store just written cannot be read back".into(),
        })
    }
}

impl Drop for Building {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_dir_all(&self.tmp);
        }
    }
}

/// Remove a store folder (it may vanish meanwhile: another process).
fn remove_folder(path: &Path) -> Result<()> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Record a freshly validated dataset in `store`: its rejects ledger,
/// then the manifest.
pub(crate) fn save(store: &Path, sources: &[Source], dataset: &Loaded) -> Result<()> {
    let rejects_path = store.join(REJECTS);
    let file = std::fs::File::create(&rejects_path).map_err(|e| Error::io(&rejects_path, e))?;
    let mut w = parquet::arrow::ArrowWriter::try_new(file, crate::schema::rejects_schema(), None)?;
    for b in &dataset.rejects {
        w.write(b)?;
    }
    w.close()?;
    let tables = dataset
        .summary
        .iter()
        .map(|s| Entry {
            table: s.table.clone(),
            source: s.source.clone(),
            rows: s.rows as u64,
            accepted: s.accepted as u64,
            rejected: s.rejected as u64,
            notes: s.notes.clone(),
            columns: match dataset.tables.get(&s.table) {
                Some(t) if t.stored.is_some() => {
                    t.schema.fields().iter().map(|f| f.name().clone()).collect()
                }
                _ => Vec::new(),
            },
        })
        .collect();
    let dataset_dir = sources
        .first()
        .and_then(|s| Path::new(&s.path).parent())
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let manifest = Manifest {
        version: store_version(),
        dataset: dataset_dir,
        sources: sources.to_vec(),
        tables,
    };
    let text = toml::to_string(&manifest)
        .map_err(|e| Error::InvalidArgument(format!("store manifest: {e}")))?;
    let path = store.join(MANIFEST);
    std::fs::write(&path, text).map_err(|e| Error::io(&path, e))
}

/// The dataset of `store` if it was validated from exactly `sources` by
/// this version and all its files are present; `None` otherwise (it is
/// then validated again).
pub(crate) fn reopen(store: &Path, sources: &[Source]) -> Result<Option<Loaded>> {
    let Ok(text) = std::fs::read_to_string(store.join(MANIFEST)) else {
        return Ok(None);
    };
    let Ok(manifest) = toml::from_str::<Manifest>(&text) else {
        return Ok(None);
    };
    if !manifest.validated_from(sources) {
        return Ok(None);
    }
    let mut tables = BTreeMap::new();
    let mut summary = Vec::new();
    for e in &manifest.tables {
        let table = if e.columns.is_empty() {
            crate::lines::builtin_table()?
        } else {
            let path = stored_path(store, &e.table)?;
            let Some(file_schema) = parquet_schema(&path) else {
                return Ok(None);
            };
            let Ok(schema) = accepted_schema(&file_schema, &e.columns) else {
                return Ok(None);
            };
            // A store written before links existed lacks their columns:
            // it is validated again.
            let Ok(linked) = stored_linked(&file_schema, &e.table, &e.columns) else {
                return Ok(None);
            };
            Table {
                schema,
                batches: Vec::new(),
                linked,
                stored: Some(StoredFile {
                    path,
                    file_schema,
                    rows: e.accepted as usize,
                }),
            }
        };
        tables.insert(e.table.clone(), table);
        summary.push(TableSummary {
            table: e.table.clone(),
            source: e.source.clone(),
            rows: e.rows as usize,
            accepted: e.accepted as usize,
            rejected: e.rejected as usize,
            notes: e.notes.clone(),
        });
    }
    let rejects_path = store.join(REJECTS);
    let Ok(file) = std::fs::File::open(&rejects_path) else {
        return Ok(None);
    };
    let rejects = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.build())
        .map_err(|e| Error::Schema {
            table: "rejects".into(),
            source_name: rejects_path.display().to_string(),
            column: None,
            message: format!("unreadable store file: {e}"),
        })?
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let rejects = rejects.into_iter().filter(|b| b.num_rows() > 0).collect();
    Ok(Some(Loaded {
        tables,
        rejects,
        summary,
    }))
}

/// Whether `path` is a tuopin store (finished or being built).
pub(crate) fn is_store(path: &Path) -> bool {
    path.join(MARKER).is_file() || path.join(MANIFEST).is_file()
}

/// What [`describe`] tells of a store.
pub(crate) struct Described {
    pub dataset: String,
    pub version: String,
    /// `current`, `stale` or `orphaned` (see `cache::CachedStore`).
    pub status: &'static str,
}

/// The dataset, version and freshness of the store at `path`; `None`
/// without a readable manifest.
pub(crate) fn describe(path: &Path) -> Option<Described> {
    let text = std::fs::read_to_string(path.join(MANIFEST)).ok()?;
    let manifest = toml::from_str::<Manifest>(&text).ok()?;
    let gone = manifest
        .sources
        .iter()
        .any(|s| !Path::new(&s.path).is_file());
    // The sources as they are now, fingerprinted as an open would.
    let now = manifest
        .sources
        .iter()
        .map(|s| crate::schema::table_spec(&s.table).map(|spec| (spec, PathBuf::from(&s.path))))
        .collect::<Option<Vec<_>>>()
        .and_then(|found| fingerprint(&found, None).ok());
    let current = !gone && now.is_some_and(|now| manifest.validated_from(&now));
    Some(Described {
        dataset: manifest.dataset,
        version: manifest.version,
        status: if gone {
            "orphaned"
        } else if current {
            "current"
        } else {
            "stale"
        },
    })
}

/// The Arrow schema of a Parquet file, `None` if it cannot be read.
fn parquet_schema(path: &Path) -> Option<SchemaRef> {
    let file = std::fs::File::open(path).ok()?;
    ParquetRecordBatchReaderBuilder::try_new(file)
        .ok()
        .map(|b| b.schema().clone())
}
