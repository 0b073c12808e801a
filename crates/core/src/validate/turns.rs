//! A streamed table written as one store file: copying its source's
//! column chunks with its partitions written at once ([`Copying`],
//! [`crate::io::chunks`]) when its source is a Parquet file whose row
//! groups suit a store; else by taking its partitions in turn.
//!
//! A plan over a national source has one partition per contiguous run of
//! row groups (`crate::io::source`), each in `__row` order, the first
//! run's rows before the second's. DataFusion's writer wants one stream,
//! and merges the partitions into one with a sort-preserving merge: it
//! copies every value of every row into new batches (its `interleave`,
//! ~5 % of a national load's CPU), and since the first run's rows all come
//! first, the second partition waits for the first anyway.
//!
//! [`write_in_turn`] hands the writer the partitions one after the other
//! instead, batches as they are. Nothing is assumed: the stream checks
//! that `__row` ascends through every batch and across partitions (an
//! [`Ascent`] of `__row` over the whole stream), and a
//! plan whose partitions do not follow one another stops the write; the
//! file is then written again through the merge.
//!
//! Taken in turn, the second partition is not read until the first is
//! done. The validation session's plans do not repartition their rows
//! ([`super::order::in_order`]: joins collect their small side, no
//! round-robin), so no partition waits on another; a plan that did
//! repartition by hash would mix its inputs' rows, and its order would
//! break within its first batches.
//!
//! ```text
//! partition 0   rows 1 … 500 000        ┐
//! partition 1   rows 500 001 … 1 000 000 ┘→ one stream 1 … 1 000 000 → writer
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::common::{DataFusionError, Result as DfResult};
use datafusion::execution::TaskContext;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::physical_plan::{
    ExecutionPlan, ExecutionPlanProperties, SendableRecordBatchStream,
};
use datafusion::prelude::{DataFrame, SessionContext};
use futures::StreamExt;

use super::order::{follow_one_another, Ascent};
use super::streamed::{external, failed};
use crate::error::{Error, Result};
use crate::io::chunks::{write_copying, ChunkSource, Kept};
use crate::io::source::row_order;
use crate::io::store::write_flagged;
use crate::schema::ROW_COLUMN;

/// A streamed table's Parquet source, whose column chunks its store file
/// may copy ([`crate::io::chunks`]), and the columns the typing keeps.
#[derive(Debug)]
pub(super) struct Copying {
    source: Arc<ChunkSource>,
    kept: Vec<Kept>,
}

impl Copying {
    /// For `source`, read as the raw table of schema `raw` (the file's
    /// columns in order, then `__row`), whose typing keeps the raw columns
    /// named `kept`; `None` when its row groups do not suit a store.
    pub(super) fn of(source: Arc<ChunkSource>, raw: &SchemaRef, kept: &[String]) -> Option<Self> {
        if !source.fits() {
            return None;
        }
        let kept = kept.iter().filter_map(|column| {
            let file_column = raw.index_of(column).ok()?;
            let column = column.clone();
            Some(Kept {
                column,
                file_column,
            })
        });
        let kept = kept.collect();
        Some(Copying { source, kept })
    }
}

/// Write the flagged rows of a streamed table to its store file `path`:
/// copying `copying`'s column chunks where it can, its partitions written
/// at once ([`write_copying`]); else ([`write_flagged`]) with its
/// partitions taken in turn when its rows carry `__row`. Through
/// DataFusion's merge of partitions when the rows carry no `__row`, or
/// when the partitions turn out not to follow one another. An error of
/// the plan itself is returned as it is.
pub(super) async fn write_in_turn(
    df: DataFrame,
    path: &std::path::Path,
    copying: Option<&Copying>,
) -> Result<()> {
    // Set when `__row` did not ascend: the write stopped.
    let broken = Arc::new(AtomicBool::new(false));
    let followed = match copying.filter(|_| numbered(&df)) {
        Some(copying) => write_copied(df.clone(), path, copying, &broken).await,
        None => match in_turn(&df, &broken).await? {
            Some(turned) => write_flagged(turned, path, false).await.map(|()| true),
            None => return write_flagged(df, path, false).await,
        },
    };
    match followed {
        Ok(true) => Ok(()),
        Err(e) if !broken.load(Ordering::SeqCst) => Err(e),
        // Out of turn: written again through the merge.
        Ok(false) | Err(_) => {
            discard(path)?;
            write_flagged(df, path, false).await
        }
    }
}

/// Remove the store file at `path` if a write left one.
pub(super) fn discard(path: &std::path::Path) -> Result<()> {
    if path.exists() {
        std::fs::remove_file(path).map_err(|e| Error::io(path, e))?;
    }
    Ok(())
}

/// Whether `df`'s rows carry a `__row` of 64-bit integers.
fn numbered(df: &DataFrame) -> bool {
    let schema = df.schema();
    let row = schema.inner().field_with_name(ROW_COLUMN);
    row.is_ok_and(|f| f.data_type() == &datafusion::arrow::datatypes::DataType::Int64)
}

/// Write `df` to `path` copying `copying`'s chunks, each partition
/// checked for `__row` ascending (`broken` set and the write stopped when
/// it does not); whether the partitions followed one another.
async fn write_copied(
    df: DataFrame,
    path: &std::path::Path,
    copying: &Copying,
    broken: &Arc<AtomicBool>,
) -> Result<bool> {
    let task = Arc::new(df.task_ctx());
    let plan = df.create_physical_plan().await?;
    let schema = plan.schema();
    let partitions = plan.output_partitioning().partition_count();
    let ascents = Arc::new(Mutex::new((0..partitions).map(|_| None).collect()));
    let parts = (0..partitions)
        .map(|p| {
            let stream = match plan.execute(p, task.clone()) {
                Ok(s) => s,
                Err(e) => failed(schema.clone(), e),
            };
            checked(stream, broken.clone(), Some((ascents.clone(), p)))
        })
        .collect();
    write_copying(parts, path, &copying.source, &copying.kept).await?;
    let ascents = std::mem::take(&mut *ascents.lock().map_err(|_| poisoned())?);
    let Some(ascents) = ascents.into_iter().collect::<Option<Vec<Ascent>>>() else {
        return Ok(false);
    };
    follow_one_another(&ascents.iter().collect::<Vec<_>>())
}

/// The ascents of `__row` of a plan's partitions, each once read whole.
type Ascents = Arc<Mutex<Vec<Option<Ascent>>>>;

/// `stream` with `__row` checked to ascend strictly, within its batches
/// and from one to the next: `broken` is set and the stream stops at the
/// first row out of order. With `kept`, its ascent once read whole.
fn checked(
    stream: SendableRecordBatchStream,
    broken: Arc<AtomicBool>,
    kept: Option<(Ascents, usize)>,
) -> SendableRecordBatchStream {
    let schema = stream.schema();
    let state = (stream, Ascent::new(&[ROW_COLUMN]), broken, kept);
    let checked =
        futures::stream::try_unfold(state, |(mut stream, mut rows, broken, kept)| async move {
            let Some(batch) = stream.next().await.transpose()? else {
                if let Some((ascents, p)) = &kept {
                    let mut ascents = ascents.lock().map_err(|_| poisoned())?;
                    if let Some(slot) = ascents.get_mut(*p) {
                        *slot = Some(rows);
                    }
                }
                return Ok(None);
            };
            if !ascends(&mut rows, &batch)? {
                broken.store(true, Ordering::SeqCst);
                return Err(DataFusionError::Execution(
                    "partitions taken in turn: `__row` out of order".into(),
                ));
            }
            Ok(Some((batch, (stream, rows, broken, kept))))
        });
    Box::pin(RecordBatchStreamAdapter::new(schema, checked))
}

/// A lock poisoned by a panic elsewhere.
fn poisoned() -> DataFusionError {
    DataFusionError::Execution("partitions taken in turn: poisoned".into())
}

/// `df` as one partition that runs its partitions one after the other,
/// checking `__row` (setting `broken` when it does not ascend); `None`
/// when it has no `__row` of 64-bit integers, or one partition already.
async fn in_turn(df: &DataFrame, broken: &Arc<AtomicBool>) -> Result<Option<DataFrame>> {
    if !numbered(df) {
        return Ok(None);
    }
    let plan = df.clone().create_physical_plan().await?;
    if plan.output_partitioning().partition_count() < 2 {
        return Ok(None);
    }
    let schema: SchemaRef = df.schema().inner().clone();
    let turns = Turns {
        schema: schema.clone(),
        plan,
        broken: broken.clone(),
    };
    let table =
        StreamingTable::try_new(schema, vec![Arc::new(turns)])?.with_sort_order(vec![row_order()]);
    let ctx = SessionContext::new_with_state(df.clone().into_parts().0);
    Ok(Some(ctx.read_table(Arc::new(table))?))
}

/// The one partition of a plan's partitions in turn.
#[derive(Debug)]
struct Turns {
    schema: SchemaRef,
    plan: Arc<dyn ExecutionPlan>,
    /// Set when `__row` did not ascend.
    broken: Arc<AtomicBool>,
}

impl PartitionStream for Turns {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let plan = self.plan.clone();
        let schema = self.schema.clone();
        let broken = self.broken.clone();
        let partitions = plan.output_partitioning().partition_count();
        let streams = futures::stream::iter(0..partitions)
            .map(move |p| match plan.execute(p, ctx.clone()) {
                Ok(s) => s,
                Err(e) => failed(schema.clone(), e),
            })
            .flatten();
        let turned = Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), streams));
        checked(turned, broken, None)
    }
}

/// Whether `batch`'s `__row` (no nulls) ascends strictly, within it and
/// from the rows `rows` has seen on.
fn ascends(rows: &mut Ascent, batch: &RecordBatch) -> DfResult<bool> {
    rows.push(batch).map_err(external)?;
    Ok(rows.ascending)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::datasource::MemTable;

    fn batch(rows: &[i64]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new(ROW_COLUMN, DataType::Int64, false),
            Field::new("v", DataType::Utf8, true),
        ]));
        let text: Vec<String> = rows.iter().map(|r| format!("r{r}")).collect();
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(rows.to_vec())),
                Arc::new(StringArray::from(text)),
            ],
        )
        .unwrap()
    }

    /// A Parquet source of rows `v` = r1 … r9 in row groups of three,
    /// decoded whole, whose `v` the typing keeps.
    fn copying(dir: &std::path::Path) -> Copying {
        use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder as Reader;
        let path = dir.join("source.parquet");
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Utf8, true)]));
        let text: Vec<String> = (1..=9).map(|r| format!("r{r}")).collect();
        let rows = RecordBatch::try_new(schema.clone(), vec![Arc::new(StringArray::from(text))]);
        let props = parquet::file::properties::WriterProperties::builder()
            .set_max_row_group_row_count(Some(3))
            .build();
        let file = std::fs::File::create(&path).unwrap();
        let mut writer = parquet::arrow::ArrowWriter::try_new(file, schema, Some(props)).unwrap();
        writer.write(&rows.unwrap()).unwrap();
        writer.close().unwrap();
        let metadata = Reader::try_new(std::fs::File::open(&path).unwrap())
            .unwrap()
            .metadata()
            .clone();
        let tally = crate::io::chunks::Tally::new(vec![3, 3, 3]);
        for group in 0..3 {
            let reader = Reader::try_new(std::fs::File::open(&path).unwrap()).unwrap();
            let mut counter = tally.counter(group);
            for b in reader.with_row_groups(vec![group]).build().unwrap() {
                counter.add(&b.unwrap());
            }
        }
        let source = Arc::new(ChunkSource {
            path,
            metadata,
            tally,
        });
        let raw = batch(&[1]).schema();
        let raw = Arc::new(raw.project(&[1, 0]).unwrap());
        Copying::of(source, &raw, &["v".to_string()]).unwrap()
    }

    /// The `__row`s of the file written from `partitions`, each in
    /// `__row` order.
    async fn written(partitions: Vec<Vec<RecordBatch>>) -> Vec<i64> {
        written_copying(partitions, false).await
    }

    /// [`written`], copying the chunks of [`copying`]'s source or not.
    async fn written_copying(partitions: Vec<Vec<RecordBatch>>, copy: bool) -> Vec<i64> {
        let ctx = SessionContext::new();
        let schema = partitions[0][0].schema();
        let table = MemTable::try_new(schema, partitions)
            .unwrap()
            .with_sort_order(vec![vec![row_order()]]);
        let df = ctx.read_table(Arc::new(table)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        let copying = copy.then(|| copying(dir.path()));
        write_in_turn(df, &path, copying.as_ref()).await.unwrap();
        let (rows, v) = read(&path);
        let expected: Vec<String> = rows.iter().map(|r| format!("r{r}")).collect();
        assert_eq!(v, expected, "`v` is each row's own");
        rows
    }

    #[tokio::test]
    async fn partitions_in_turn_keep_every_row_in_order() {
        let rows = written(vec![
            vec![batch(&[1, 2, 3]), batch(&[4])],
            vec![batch(&[5, 6]), batch(&[7, 9])],
        ])
        .await;
        assert_eq!(rows, vec![1, 2, 3, 4, 5, 6, 7, 9]);
    }

    #[tokio::test]
    async fn partitions_out_of_turn_are_merged_instead() {
        // The second partition's rows lie between the first's: taken in
        // turn they would not ascend, so the file is written through the
        // merge, in `__row` order all the same.
        let rows = written(vec![
            vec![batch(&[1, 4, 8])],
            vec![batch(&[2, 3]), batch(&[5, 9])],
        ])
        .await;
        assert_eq!(rows, vec![1, 2, 3, 4, 5, 8, 9]);
    }

    /// The `__row`s and the `v`s of the Parquet file at `path`.
    fn read(path: &std::path::Path) -> (Vec<i64>, Vec<String>) {
        let file = std::fs::File::open(path).unwrap();
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap();
        let (mut rows, mut v) = (Vec::new(), Vec::new());
        for b in reader {
            let b = b.unwrap();
            let r = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
            rows.extend(r.values().iter().copied());
            let t = b.column(1).as_any().downcast_ref::<StringArray>().unwrap();
            v.extend(t.iter().map(|x| x.unwrap_or_default().to_string()));
        }
        (rows, v)
    }

    #[tokio::test]
    async fn copying_partitions_written_at_once_keep_every_row_in_order() {
        let rows = written_copying(
            vec![
                vec![batch(&[1, 2, 3]), batch(&[4])],
                vec![batch(&[5, 6]), batch(&[7, 9])],
            ],
            true,
        )
        .await;
        assert_eq!(rows, vec![1, 2, 3, 4, 5, 6, 7, 9]);
    }

    #[tokio::test]
    async fn copying_partitions_out_of_turn_are_merged_instead() {
        // Each partition ascends, but the second's rows lie between the
        // first's: found once both are written, and written again through
        // the merge.
        let rows = written_copying(
            vec![
                vec![batch(&[1, 4, 8])],
                vec![batch(&[2, 3]), batch(&[5, 9])],
            ],
            true,
        )
        .await;
        assert_eq!(rows, vec![1, 2, 3, 4, 5, 8, 9]);
        // A partition out of order within itself stops the copying at
        // once, and the file is the merge's, as without copying.
        let parts = || vec![vec![batch(&[1, 5, 4])], vec![batch(&[6])]];
        assert_eq!(written_copying(parts(), true).await, written(parts()).await);
    }

    #[tokio::test]
    async fn the_writer_gets_each_partition_batches_as_they_are() {
        // Taken in turn, not merged: a merge would copy the rows into
        // batches of its own (one here).
        let ctx = SessionContext::new();
        let parts = vec![
            vec![batch(&[1, 2, 3]), batch(&[4])],
            vec![batch(&[5, 6]), batch(&[7, 9])],
        ];
        let table = MemTable::try_new(parts[0][0].schema(), parts)
            .unwrap()
            .with_sort_order(vec![vec![row_order()]]);
        let df = ctx.read_table(Arc::new(table)).unwrap();
        let broken = Arc::new(AtomicBool::new(false));
        let turned = in_turn(&df, &broken).await.unwrap().unwrap();
        let sizes: Vec<usize> = turned
            .collect()
            .await
            .unwrap()
            .iter()
            .map(|b| b.num_rows())
            .collect();
        assert_eq!(sizes, vec![3, 1, 2, 2]);
        assert!(!broken.load(Ordering::SeqCst));
    }

    #[test]
    fn ascent_is_checked_within_and_across_batches() {
        // After rows 1, 2, 5: a batch from 5 on, or one repeating a row
        // within it, is out of order; one from 6 on is in order.
        let after_five = || {
            let mut rows = Ascent::new(&[ROW_COLUMN]);
            assert!(ascends(&mut rows, &batch(&[1, 2, 5])).unwrap());
            rows
        };
        assert!(!ascends(&mut after_five(), &batch(&[5, 6])).unwrap());
        assert!(!ascends(&mut after_five(), &batch(&[7, 7])).unwrap());
        let mut rows = after_five();
        assert!(ascends(&mut rows, &batch(&[6, 10])).unwrap());
        // …and the next batch must start above 10.
        assert!(!ascends(&mut rows, &batch(&[10])).unwrap());
    }
}
