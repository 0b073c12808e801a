//! Store files that copy column chunks from their source instead of
//! encoding them again.
//!
//! A national registry's columns mostly arrive as they are stored: typing
//! keeps a column of its declared type as it is, and text as it is unless
//! it is blank (DESIGN §11). Encoding them again was about three quarters
//! of a national load's CPU (BENCHMARKS, twenty-second session).
//!
//! A file written by [`write_copying`] follows its source's row groups.
//! For each row group, a column whose typed values are the source's is
//! copied as its source chunk's bytes (`append_column` of parquet-rs)
//! when:
//! - the typing kept it ([`Kept`]: declared type = source type, or text
//!   kept unless blank) and its Parquet column is the source's (type,
//!   logical type, nullability);
//! - the row group holds exactly its source row group's rows (by `__row`);
//! - it has as many nulls as the source chunk had when the validation
//!   plan decoded it ([`Tally`]): no blank became null.
//!
//! Every other column — tuopin's own (`__row`, the flags), a column with a
//! blank or a relabelled value in that row group — is encoded as the
//! store encodes it. Statistics of a copied chunk are computed from its
//! values, never taken from the source's footer. The file has no page
//! index (a page index of copied chunks would be the source's).
//!
//! ```text
//! source row group 3 (rows 786 433 … 1 048 576) → store row group 3
//!   household_id   copied    (typed = source, 0 nulls = 0 nulls)
//!   id_number      encoded   (2 blanks became null)
//!   __row, __bad   encoded   (tuopin's own)
//! ```

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::{Array, Int64Array, RecordBatch};
use datafusion::execution::SendableRecordBatchStream;
use futures::StreamExt;
use parquet::file::metadata::ParquetMetaData;

use crate::error::{Error, Result};
use crate::io::output::parquet_options;
use crate::io::store::{COMPRESSION, STREAMED};
use crate::schema::ROW_COLUMN;

/// Rows of a source row group, at most, for a store file to follow the
/// source's row groups: a store row group is held in memory while it is
/// written (two at once).
const MOST_ROWS: usize = 2 * 1024 * 1024;

/// Rows of a source row group on average, at least, unless there are at
/// most [`FEW_GROUPS`]: a store of many small row groups reads slowly.
const FEWEST_ROWS: usize = 64 * 1024;

/// Row groups few enough to follow whatever their size.
const FEW_GROUPS: usize = 64;

/// Null counts of the columns of each source row group, as the validation
/// plan decoded them. A row group's entry is set once one scan of it has
/// decoded all its rows (every complete scan decodes the same values).
#[derive(Debug)]
pub(crate) struct Tally {
    /// Rows of each row group, from the footer.
    rows: Vec<usize>,
    /// Nulls of each file column, per row group decoded in full.
    nulls: Mutex<Vec<Option<Arc<[usize]>>>>,
}

impl Tally {
    /// A tally of row groups of `rows` rows each.
    pub(crate) fn new(rows: Vec<usize>) -> Arc<Tally> {
        let nulls = Mutex::new(vec![None; rows.len()]);
        Arc::new(Tally { rows, nulls })
    }

    /// A counter for one scan of row group `group`.
    pub(crate) fn counter(self: &Arc<Self>, group: usize) -> Counter {
        Counter {
            tally: self.clone(),
            group,
            rows: 0,
            nulls: Vec::new(),
        }
    }

    /// The null counts of row group `group`'s columns, once decoded.
    fn nulls(&self, group: usize) -> Option<Arc<[usize]>> {
        let nulls = self.nulls.lock().ok()?;
        nulls.get(group).cloned().flatten()
    }
}

/// Counts the nulls of one scan of a row group, batch by batch.
#[derive(Debug)]
pub(crate) struct Counter {
    tally: Arc<Tally>,
    group: usize,
    rows: usize,
    nulls: Vec<usize>,
}

impl Counter {
    /// Count `batch`, the row group's next batch of file columns; the
    /// tally has the counts once the row group's last row is counted.
    pub(crate) fn add(&mut self, batch: &RecordBatch) {
        if self.nulls.len() != batch.num_columns() {
            self.nulls = vec![0; batch.num_columns()];
        }
        for (n, column) in self.nulls.iter_mut().zip(batch.columns()) {
            *n += column.logical_null_count();
        }
        self.rows += batch.num_rows();
        if Some(&self.rows) == self.tally.rows.get(self.group) {
            if let Ok(mut nulls) = self.tally.nulls.lock() {
                if let Some(entry) = nulls.get_mut(self.group) {
                    *entry = Some(self.nulls.clone().into());
                }
            }
        }
    }
}

/// A Parquet source whose column chunks a store file may copy.
#[derive(Debug)]
pub(crate) struct ChunkSource {
    /// The source file.
    pub path: PathBuf,
    /// Its footer.
    pub metadata: Arc<ParquetMetaData>,
    /// Its row groups' nulls, as decoded.
    pub tally: Arc<Tally>,
}

impl ChunkSource {
    /// Whether a store file may follow this source's row groups: flat
    /// columns, and row groups neither too large to hold nor too small to
    /// read well ([`MOST_ROWS`], [`FEWEST_ROWS`]).
    pub(crate) fn fits(&self) -> bool {
        let schema = self.metadata.file_metadata().schema_descr();
        let flat = schema.num_columns() == schema.root_schema().get_fields().len();
        let groups = self.metadata.row_groups();
        let rows: i64 = groups.iter().map(|g| g.num_rows()).sum();
        let most = groups.iter().map(|g| g.num_rows()).max().unwrap_or(0);
        let few = groups.len() <= FEW_GROUPS || rows >= (FEWEST_ROWS * groups.len()) as i64;
        flat && !groups.is_empty() && most <= MOST_ROWS as i64 && few
    }
}

/// A column of the store file that the typing keeps as its source column
/// is, blanks aside.
#[derive(Debug, Clone)]
pub(crate) struct Kept {
    /// Its name in the store file.
    pub column: String,
    /// The index of its column in the source file.
    pub file_column: usize,
}

/// What [`write_copying`] did: column chunks copied and encoded.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Copied {
    /// Chunks copied from the source.
    pub copied: usize,
    /// Chunks encoded.
    pub encoded: usize,
}

/// Write the partitions `parts` (each in ascending `__row`, numbered as
/// in `source`, the first one's rows before the second's) to the store
/// file `path` as a streamed table's is written ([`crate::io::store`]),
/// but one row group per source row group, copying the [`Kept`] columns'
/// chunks where their values are the source's (module docs).
///
/// The partitions are written at once, each on a task of its own: the
/// first into `path`, each other one into a file beside it whose chunks
/// are appended to `path` at the end, as they are. Within a partition,
/// row groups are written on a blocking thread, one while the next is
/// gathered. The caller checks that the partitions follow one another.
pub(crate) async fn write_copying(
    parts: Vec<SendableRecordBatchStream>,
    path: &Path,
    source: &Arc<ChunkSource>,
    kept: &[Kept],
) -> Result<Copied> {
    let schema = match parts.first() {
        Some(part) => part.schema(),
        None => return Err(Error::InvalidArgument("a plan without partitions".into())),
    };
    let options = parquet_options(&schema, COMPRESSION, STREAMED)?;
    let bounds = Arc::new(Bounds::of(&source.metadata));
    let targets: Vec<PathBuf> = (0..parts.len())
        .map(|p| match p {
            0 => path.to_path_buf(),
            p => beside(path, p),
        })
        .collect();
    let mut jobs = tokio::task::JoinSet::new();
    for (p, stream) in parts.into_iter().enumerate() {
        let sink = Sink::create(&targets[p], &schema, options.clone(), source, kept)?;
        let (bounds, source) = (bounds.clone(), source.clone());
        jobs.spawn(async move { (p, write_part(stream, sink, bounds, source).await) });
    }
    let joined = finish(jobs, &targets).await;
    for other in &targets[1..] {
        if other.exists() {
            std::fs::remove_file(other).map_err(|e| Error::io(other, e))?;
        }
    }
    joined
}

/// The file beside `path` that partition `p` is written into.
fn beside(path: &Path, p: usize) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".part{p}"));
    path.with_file_name(name)
}

/// Wait for every partition's task (stopping them all at the first
/// error), then append the partitions' files to the first one's.
async fn finish(
    mut jobs: tokio::task::JoinSet<(usize, Result<Sink>)>,
    targets: &[PathBuf],
) -> Result<Copied> {
    let mut sinks: Vec<Option<Sink>> = (0..targets.len()).map(|_| None).collect();
    let mut failed = None;
    while let Some(job) = jobs.join_next().await {
        let written = match job {
            Ok((p, sink)) => sink.map(|sink| (p, sink)),
            Err(e) if e.is_panic() => Err(Error::from_panic(e.into_panic().as_ref())),
            Err(e) => Err(Error::InvalidArgument(format!("store writer stopped: {e}"))),
        };
        match written {
            Ok((p, sink)) => sinks[p] = Some(sink),
            Err(e) => {
                jobs.abort_all();
                failed.get_or_insert(e);
            }
        }
    }
    if let Some(e) = failed {
        return Err(e);
    }
    let mut sinks = sinks.into_iter().flatten();
    let mut first = sinks.next().ok_or_else(lost)?;
    for (sink, path) in sinks.zip(&targets[1..]) {
        first.absorb(sink, path)?;
    }
    first.close()
}

/// Write one partition's rows into `sink`, a row group per source row
/// group.
async fn write_part(
    mut stream: SendableRecordBatchStream,
    sink: Sink,
    bounds: Arc<Bounds>,
    source: Arc<ChunkSource>,
) -> Result<Sink> {
    let row_index = stream.schema().index_of(ROW_COLUMN)?;
    let mut held: Vec<RecordBatch> = Vec::new();
    let mut at = 0;
    // The sink, back once the row group before is written.
    let mut writing = tokio::task::spawn(std::future::ready(Ok(sink)));
    while let Some(batch) = stream.next().await {
        let mut batch = batch?;
        while batch.num_rows() > 0 {
            let rows = batch
                .column(row_index)
                .as_any()
                .downcast_ref::<Int64Array>()
                .ok_or_else(|| Error::InvalidArgument("`__row` is not Int64".into()))?;
            let group = bounds.group_of(rows.value(0));
            if group != at && !held.is_empty() {
                let gathered = Group::gathered(std::mem::take(&mut held), &bounds, at, &source);
                let sink = joined(writing).await?;
                writing = tokio::task::spawn_blocking(move || sink.write(gathered));
            }
            at = group;
            let inside = rows.values().partition_point(|r| *r < bounds.end(group));
            held.push(batch.slice(0, inside));
            batch = batch.slice(inside, batch.num_rows() - inside);
        }
    }
    let mut sink = joined(writing).await?;
    if !held.is_empty() {
        sink = sink.write(Group::gathered(held, &bounds, at, &source))?;
    }
    Ok(sink)
}

/// The error of a writer lost between row groups (cannot happen).
fn lost() -> Error {
    Error::InvalidArgument("store writer lost between row groups".into())
}

/// The sink back from its blocking thread.
async fn joined(job: tokio::task::JoinHandle<Result<Sink>>) -> Result<Sink> {
    match job.await {
        Ok(sink) => sink,
        Err(e) if e.is_panic() => Err(Error::from_panic(e.into_panic().as_ref())),
        Err(e) => Err(Error::InvalidArgument(format!("store writer stopped: {e}"))),
    }
}

/// The source's row groups by `__row`: each one's first row and rows.
struct Bounds {
    groups: Vec<(i64, usize)>,
}

impl Bounds {
    fn of(metadata: &ParquetMetaData) -> Bounds {
        let mut first = 1i64;
        let mut groups = Vec::new();
        for g in metadata.row_groups() {
            groups.push((first, usize::try_from(g.num_rows()).unwrap_or(0)));
            first += g.num_rows();
        }
        Bounds { groups }
    }

    /// The row group that holds `__row` `row`: the last one starting at
    /// or before it (rows past the last row group are one more group).
    fn group_of(&self, row: i64) -> usize {
        let starting = self.groups.partition_point(|(first, _)| *first <= row);
        let group = starting.saturating_sub(1);
        if row >= self.end(group) {
            self.groups.len()
        } else {
            group
        }
    }

    /// The `__row` after source row group `at`.
    fn end(&self, at: usize) -> i64 {
        match self.groups.get(at) {
            Some((first, rows)) => first + *rows as i64,
            None => i64::MAX,
        }
    }
}

/// One store row group's rows, and the null counts of its source row
/// group when it holds exactly that row group's rows.
struct Group {
    batches: Vec<RecordBatch>,
    rows: usize,
    source: Option<(usize, Arc<[usize]>)>,
}

impl Group {
    fn gathered(
        batches: Vec<RecordBatch>,
        bounds: &Bounds,
        at: usize,
        source: &ChunkSource,
    ) -> Group {
        let rows = batches.iter().map(|b| b.num_rows()).sum();
        let whole = bounds.groups.get(at).is_some_and(|(_, n)| *n == rows);
        let source = whole
            .then(|| source.tally.nulls(at))
            .flatten()
            .map(|nulls| (at, nulls));
        Group {
            batches,
            rows,
            source,
        }
    }
}

mod sink;

use sink::Sink;

#[cfg(test)]
mod tests;
