//! A streamed table written as one file by taking its partitions in turn.
//!
//! A plan over a national source has one partition per contiguous run of
//! row groups ([`crate::io::source`]), each in `__row` order, the first
//! run's rows before the second's. DataFusion's writer wants one stream,
//! and merges the partitions into one with a sort-preserving merge: it
//! copies every value of every row into new batches (its `interleave`,
//! ~5 % of a national load's CPU), and since the first run's rows all come
//! first, the second partition waits for the first anyway.
//!
//! [`write_in_turn`] hands the writer the partitions one after the other
//! instead, batches as they are. Nothing is assumed: the stream checks
//! that `__row` ascends through every batch and across partitions, and a
//! plan whose partitions do not follow one another stops the write; the
//! file is then written again through the merge.
//!
//! Taken in turn, the second partition is not read until the first is
//! done. The validation session's plans do not repartition their rows
//! (`validate::order::in_order`: joins collect their small side, no
//! round-robin), so no partition waits on another; a plan that did
//! repartition by hash would mix its inputs' rows, and its order would
//! break within its first batches.
//!
//! ```text
//! partition 0   rows 1 … 500 000        ┐
//! partition 1   rows 500 001 … 1 000 000 ┘→ one stream 1 … 1 000 000 → writer
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use datafusion::arrow::array::{Array, Int64Array, RecordBatch};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::common::DataFusionError;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::physical_plan::{
    ExecutionPlan, ExecutionPlanProperties, SendableRecordBatchStream,
};
use datafusion::prelude::{DataFrame, SessionContext};
use futures::StreamExt;

use crate::error::{Error, Result};
use crate::io::output::{write_parquet, Layout};
use crate::io::source::row_order;
use crate::schema::ROW_COLUMN;

/// Write `df` to `path` (LZ4, `layout`) with its partitions taken in turn
/// when its rows carry `__row`; through DataFusion's merge of partitions
/// when they do not, or when the partitions turn out not to follow one
/// another. An error of the plan itself is returned as it is.
pub(crate) async fn write_in_turn(
    df: DataFrame,
    path: &std::path::Path,
    layout: Layout,
) -> Result<()> {
    let Some((turned, order)) = in_turn(&df).await? else {
        write_parquet(df, path, "lz4_raw", layout).await?;
        return Ok(());
    };
    match write_parquet(turned, path, "lz4_raw", layout).await {
        Err(_) if order.broken.load(Ordering::SeqCst) => {
            if path.exists() {
                std::fs::remove_file(path).map_err(|e| Error::io(path, e))?;
            }
            write_parquet(df, path, "lz4_raw", layout).await?;
            Ok(())
        }
        written => written.map(|_| ()),
    }
}

/// Whether the order of a stream taken in turn held.
#[derive(Debug, Default)]
struct Order {
    broken: AtomicBool,
}

/// `df` as one partition that runs its partitions one after the other,
/// checking `__row`; `None` when it has no `__row` of 64-bit integers, or
/// one partition already.
async fn in_turn(df: &DataFrame) -> Result<Option<(DataFrame, Arc<Order>)>> {
    let schema: SchemaRef = df.schema().inner().clone();
    let numbered = schema
        .field_with_name(ROW_COLUMN)
        .is_ok_and(|f| f.data_type() == &datafusion::arrow::datatypes::DataType::Int64);
    if !numbered {
        return Ok(None);
    }
    let plan = df.clone().create_physical_plan().await?;
    if plan.output_partitioning().partition_count() < 2 {
        return Ok(None);
    }
    let order = Arc::new(Order::default());
    let turns = Turns {
        schema: schema.clone(),
        plan,
        order: order.clone(),
    };
    let table =
        StreamingTable::try_new(schema, vec![Arc::new(turns)])?.with_sort_order(vec![row_order()]);
    let ctx = SessionContext::new_with_state(df.clone().into_parts().0);
    Ok(Some((ctx.read_table(Arc::new(table))?, order)))
}

/// The one partition of a plan's partitions in turn.
#[derive(Debug)]
struct Turns {
    schema: SchemaRef,
    plan: Arc<dyn ExecutionPlan>,
    order: Arc<Order>,
}

impl PartitionStream for Turns {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let plan = self.plan.clone();
        let order = self.order.clone();
        let partitions = plan.output_partitioning().partition_count();
        let streams = futures::stream::iter(0..partitions)
            .map(move |p| plan.execute(p, ctx.clone()))
            .map(|s| match s {
                Ok(s) => s,
                Err(e) => Box::pin(RecordBatchStreamAdapter::new(
                    Arc::new(datafusion::arrow::datatypes::Schema::empty()),
                    futures::stream::once(async move { Err(e) }),
                )),
            })
            .flatten();
        let mut last: Option<i64> = None;
        let checked = streams.map(move |batch| {
            let batch = batch?;
            if !ascends(&batch, &mut last) {
                order.broken.store(true, Ordering::SeqCst);
                return Err(DataFusionError::Execution(
                    "partitions taken in turn: `__row` out of order".into(),
                ));
            }
            Ok(batch)
        });
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), checked))
    }
}

/// Whether `batch`'s `__row` (no nulls) ascends strictly from `last` on;
/// `last` becomes its last value.
fn ascends(batch: &RecordBatch, last: &mut Option<i64>) -> bool {
    let Some(rows) = batch
        .column_by_name(ROW_COLUMN)
        .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
    else {
        return false;
    };
    if rows.null_count() > 0 {
        return false;
    }
    let values = rows.values();
    let mut previous = *last;
    for &v in values.iter() {
        if previous.is_some_and(|p| v <= p) {
            return false;
        }
        previous = Some(v);
    }
    *last = previous;
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::StringArray;
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

    /// The `__row`s of the file written from `partitions`, each in
    /// `__row` order.
    async fn written(partitions: Vec<Vec<RecordBatch>>) -> Vec<i64> {
        let ctx = SessionContext::new();
        let schema = partitions[0][0].schema();
        let table = MemTable::try_new(schema, partitions)
            .unwrap()
            .with_sort_order(vec![vec![row_order()]]);
        let df = ctx.read_table(Arc::new(table)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        write_in_turn(df, &path, crate::io::output::OUTPUT_LAYOUT)
            .await
            .unwrap();
        let file = std::fs::File::open(&path).unwrap();
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap();
        let mut rows = Vec::new();
        for b in reader {
            let b = b.unwrap();
            let c = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
            rows.extend(c.values().iter().copied());
        }
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
        let (turned, order) = in_turn(&df).await.unwrap().unwrap();
        let sizes: Vec<usize> = turned
            .collect()
            .await
            .unwrap()
            .iter()
            .map(|b| b.num_rows())
            .collect();
        assert_eq!(sizes, vec![3, 1, 2, 2]);
        assert!(!order.broken.load(Ordering::SeqCst));
    }

    #[test]
    fn ascent_is_checked_within_and_across_batches() {
        let mut last = None;
        assert!(ascends(&batch(&[1, 2, 5]), &mut last));
        assert_eq!(last, Some(5));
        assert!(!ascends(&batch(&[5, 6]), &mut last.clone()));
        assert!(!ascends(&batch(&[7, 7]), &mut last.clone()));
        assert!(ascends(&batch(&[6, 10]), &mut last));
        assert_eq!(last, Some(10));
    }
}
