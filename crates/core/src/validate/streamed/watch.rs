//! A streamed table's own key, checked as its rows pass to the writer.
//!
//! Whether a key that must be unique is (the duplicate-key check) is
//! answered without an aggregate when the keys ascend: streamed, that was
//! a pass over the key columns before the plan — at national scale 4–5 s
//! of reading the households' identifiers once more. Watched, the key is
//! taken as distinct (`__dup` false) and each partition checks that
//! `__row` and the key ascend as its rows pass; the first row out of order
//! stops the stream ([`Watch::gave_up`]), and partitions whose keys do not
//! follow one another are found when all rows are read ([`Watch::held`]).
//! Either way the caller writes the table again with the duplicate-key
//! plan.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::catalog::TableProvider;
use datafusion::common::{DataFusionError, Result as DfResult};
use datafusion::execution::TaskContext;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::physical_plan::{
    ExecutionPlan, ExecutionPlanProperties, SendableRecordBatchStream,
};
use datafusion::prelude::SessionContext;
use futures::StreamExt;

use super::super::checks::key_is_unique;
use super::super::order::{in_sequence, Ascent};
use crate::error::Result;
use crate::io::source::row_order;
use crate::schema::{TableSpec, ROW_COLUMN};

/// The ascent of `__row` and of a table's key, partition by partition.
#[derive(Debug)]
pub(in crate::validate) struct Watch {
    key: Vec<String>,
    gave_up: AtomicBool,
    /// Per partition, once its rows are all read: the ascent of `__row`
    /// and of the key.
    runs: Mutex<Vec<Option<(Ascent, Ascent)>>>,
}

impl Watch {
    /// A watch over `partitions` partitions of rows keyed by `key`.
    pub(super) fn new(key: Vec<String>, partitions: usize) -> Self {
        Watch {
            key,
            gave_up: AtomicBool::new(false),
            runs: Mutex::new((0..partitions).map(|_| None).collect()),
        }
    }

    /// A partition's ascent before its first row.
    pub(super) fn start(&self) -> (Ascent, Ascent) {
        let key: Vec<&str> = self.key.iter().map(String::as_str).collect();
        (Ascent::new(&[ROW_COLUMN]), Ascent::new(&key))
    }

    /// Check `batch`, the next rows of the partition at `ascent`: an
    /// error that stops the stream when a row is out of order.
    pub(super) fn push(&self, ascent: &mut (Ascent, Ascent), batch: &RecordBatch) -> DfResult<()> {
        let (rows, key) = ascent;
        rows.push(batch).map_err(external)?;
        key.push(batch).map_err(external)?;
        if rows.ascending && key.ascending {
            Ok(())
        } else {
            Err(self.give_up())
        }
    }

    /// Stop the stream: keys are not in order.
    pub(super) fn give_up(&self) -> DataFusionError {
        self.gave_up.store(true, Ordering::SeqCst);
        DataFusionError::Execution("streamed table: keys out of order".into())
    }

    /// Record `partition`'s ascent, once its rows are all read.
    pub(super) fn finish(&self, partition: usize, ascent: (Ascent, Ascent)) -> DfResult<()> {
        let mut runs = self
            .runs
            .lock()
            .map_err(|_| DataFusionError::Execution("streamed table: poisoned".into()))?;
        if let Some(run) = runs.get_mut(partition) {
            *run = Some(ascent);
        }
        Ok(())
    }

    /// Whether a partition met keys out of order and stopped: the plan
    /// over the watched rows then failed, and must run without the watch.
    pub fn gave_up(&self) -> bool {
        self.gave_up.load(Ordering::SeqCst)
    }

    /// After the rows of every partition were read: whether `__row` and
    /// the key ascended through the partitions in turn, so no key is
    /// shared and `__dup` is false as the plan said. `false` means the
    /// plan must run again without the watch.
    pub fn held(&self) -> Result<bool> {
        // Read once: the runs are taken.
        let runs = std::mem::take(
            &mut *self
                .runs
                .lock()
                .map_err(|_| DataFusionError::Execution("streamed table: poisoned".into()))?,
        );
        let Some(runs) = runs.into_iter().collect::<Option<Vec<_>>>() else {
            return Ok(false);
        };
        Ok(!self.gave_up() && in_sequence(&runs)?)
    }
}

/// The rows of `typed_name` (`spec`'s typed rows) under a watch of their
/// key, as a table in `__row` order with the same partitions; `None` when
/// the key may repeat (no duplicate-key check to spare).
pub(in crate::validate) async fn watched(
    ctx: &SessionContext,
    spec: &TableSpec,
    typed_name: &str,
) -> Result<Option<(Arc<dyn TableProvider>, Arc<Watch>)>> {
    if !key_is_unique(spec) {
        return Ok(None);
    }
    let rows = ctx.table(typed_name).await?.create_physical_plan().await?;
    let partitions = rows.output_partitioning().partition_count();
    let key = spec.key.iter().map(|k| k.to_string()).collect();
    let watch = Arc::new(Watch::new(key, partitions));
    let schema = rows.schema();
    let parts = (0..partitions)
        .map(|partition| {
            Arc::new(Watched {
                schema: schema.clone(),
                rows: rows.clone(),
                watch: watch.clone(),
                partition,
            }) as Arc<dyn PartitionStream>
        })
        .collect();
    let table = StreamingTable::try_new(schema, parts)?.with_sort_order(vec![row_order()]);
    Ok(Some((Arc::new(table), watch)))
}

/// One partition of the watched rows.
#[derive(Debug)]
struct Watched {
    schema: SchemaRef,
    rows: Arc<dyn ExecutionPlan>,
    watch: Arc<Watch>,
    partition: usize,
}

impl PartitionStream for Watched {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let schema = self.schema.clone();
        let rows = match self.rows.execute(self.partition, ctx) {
            Ok(rows) => rows,
            Err(e) => return super::failed(schema, e),
        };
        let state = (rows, self.watch.start(), self.watch.clone(), self.partition);
        let stream =
            futures::stream::try_unfold(state, |(mut rows, mut ascent, watch, p)| async move {
                match rows.next().await.transpose()? {
                    Some(batch) => {
                        watch.push(&mut ascent, &batch)?;
                        Ok(Some((batch, (rows, ascent, watch, p))))
                    }
                    None => {
                        watch.finish(p, ascent)?;
                        Ok(None)
                    }
                }
            });
        Box::pin(RecordBatchStreamAdapter::new(schema, stream))
    }
}

/// A core error inside a DataFusion stream.
pub(in crate::validate) fn external(e: crate::error::Error) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}
