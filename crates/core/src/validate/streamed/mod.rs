//! Household references of a table streamed into a store (national
//! scale) as a merge, not a join.
//!
//! Streamed, a member's or an assistance row's household was found by a
//! hash join: a hash table of every accepted household key (26 M at 30 M
//! households, ~1.5 GB, built on one core before the first row streams)
//! probed once per row. When the household file and the rows are in key
//! order — registries are commonly exported in household order, and the
//! generator's are — the same answer comes from a cursor: each partition
//! of the rows reads the accepted households from the store file beside
//! its own rows, in file order, and walks past them as its rows' keys
//! ascend ([`merge.rs`](super::merge) does the same in memory).
//!
//! Each partition's household scan starts at its first row's household
//! (a filter the Parquet scan prunes row groups by), so the second half's
//! cursor does not read the first half's households.
//!
//! The merged rows are the join plan's rows exactly: its schema, the same
//! `__ref<i>` flag and handed-over link columns, `__dup` false (the key
//! taken as distinct, and checked ascending as the rows pass). Nothing is
//! assumed: a household key not strictly above the one before it, a row
//! whose key lies below the last household the cursor passed (or below
//! its partition's first), or a row's own key not above the row before,
//! stops the stream with an error ([`Watch::gave_up`]); partitions
//! whose keys do not follow one another are found when all rows are read
//! ([`Watch::held`]). Either way the caller writes the table again
//! with the join plan.
//!
//! ```text
//! partition 0   rows H1 H1 H2 H4 …      households from H1: H1 H2 H3 H4 …
//! partition 1   rows H7 H7 H9 …         households from H7: H7 H8 H9 …
//! ```

use std::cmp::Ordering;
use std::sync::Arc;

use datafusion::arrow::array::{
    new_null_array, Array, ArrayRef, BooleanArray, BooleanBufferBuilder, RecordBatch,
};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::compute::interleave;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::streaming::StreamingTable;
use datafusion::catalog::TableProvider;
use datafusion::common::{DataFusionError, Result as DfResult, ScalarValue};
use datafusion::execution::session_state::SessionState;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{col, lit};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::physical_plan::{
    ExecutionPlan, ExecutionPlanProperties, SendableRecordBatchStream,
};
use datafusion::prelude::SessionContext;
use futures::StreamExt;

use super::checks::{key_is_unique, references_for, Reference};
use super::joins::{joins, reference_flag, DUP, DUP_N};
use super::merge::{compare_rows, mergeable, Key};
use super::order::Ascent;
use crate::error::Result;
use crate::io::source::row_order;
use crate::schema::{TableSpec, ROW_COLUMN};
pub(super) use watch::{external, watched, Watch};

mod watch;

/// The merged rows of a streamed table, and whether the merge held.
pub(super) struct StreamedMerge {
    /// The typed rows with the join plan's flag and link columns, one
    /// partition per partition of the typed rows, each in `__row` order.
    pub provider: Arc<dyn TableProvider>,
    /// The ascent of the table's own keys (when they must be unique; else
    /// `__row`) and of the households' keys: [`Watch::gave_up`] when a
    /// partition met keys out of order and stopped, [`Watch::held`] false
    /// when the partitions' keys do not follow one another. Either way
    /// the join plan must run.
    pub watch: Arc<Watch>,
}

/// The merged rows of `spec`'s typed rows (registered as `typed_name`),
/// or `None` when the table's flags need their joins: no reference or
/// another than one household-style reference ([`mergeable`]), key or
/// link columns whose types the merge does not hand over as the plan
/// declares them, a target read in more than one stream. A key that must
/// be unique is taken as distinct (`__dup` false) and checked in order as
/// the rows pass ([`Watch::held`]): the pass over the keys before
/// the plan is saved.
pub(super) async fn streamed_merge(
    ctx: &SessionContext,
    spec: &TableSpec,
    typed_name: &str,
) -> Result<Option<StreamedMerge>> {
    let distinct = true;
    let references = references_for(spec);
    let [reference] = references.as_slice() else {
        return Ok(None);
    };
    if !mergeable(reference) {
        return Ok(None);
    }
    // The join plan's schema: the merged rows have exactly it.
    let rows_sql = format!("SELECT * FROM {typed_name}");
    let planned = ctx
        .sql(&joins(spec, typed_name, rows_sql, distinct).sql)
        .await?
        .schema()
        .inner()
        .clone();
    let rows = ctx.table(typed_name).await?.create_physical_plan().await?;
    let target = ctx
        .sql(&reference.target)
        .await?
        .create_physical_plan()
        .await?;
    if target.output_partitioning().partition_count() != 1
        || !fits(&planned, &rows.schema(), &target.schema(), reference)
    {
        return Ok(None);
    }
    let partitions = rows.output_partitioning().partition_count();
    let key = if key_is_unique(spec) {
        spec.key.iter().map(|k| k.to_string()).collect()
    } else {
        vec![ROW_COLUMN.to_string()]
    };
    let watch = Arc::new(Watch::new(key, partitions));
    let merge = Arc::new(Merge {
        schema: planned.clone(),
        rows,
        state: ctx.state(),
        target_sql: reference.target.clone(),
        columns: reference.on.iter().map(|(c, _)| c.clone()).collect(),
        target_keys: reference.on.iter().map(|(_, t)| t.to_string()).collect(),
        flag: reference_flag(0),
        watch: watch.clone(),
    });
    let parts = (0..partitions)
        .map(|partition| {
            Arc::new(Part {
                merge: merge.clone(),
                partition,
            }) as Arc<dyn PartitionStream>
        })
        .collect();
    let provider = StreamingTable::try_new(planned, parts)?.with_sort_order(vec![row_order()]);
    Ok(Some(StreamedMerge {
        provider: Arc::new(provider),
        watch,
    }))
}

/// Whether the merge can give every column of `planned` as the plan
/// declares it: the rows' own columns, the flag, the handed-over columns
/// (from the target, nullable), `__dup`/`__dup_n`; key columns of one
/// type on both sides, of a type [`Key`] compares.
fn fits(planned: &SchemaRef, rows: &SchemaRef, target: &SchemaRef, reference: &Reference) -> bool {
    let comparable = reference.on.iter().all(|(c, t)| {
        match (rows.field_with_name(c), target.field_with_name(t)) {
            (Ok(a), Ok(b)) => a.data_type() == b.data_type() && Key::compares(a.data_type()),
            _ => false,
        }
    });
    comparable
        && planned.fields().iter().all(|f| {
            let name = f.name().as_str();
            if let Ok(own) = rows.field_with_name(name) {
                own.data_type() == f.data_type() && (f.is_nullable() || !own.is_nullable())
            } else if name == reference_flag(0) || name == DUP {
                f.data_type() == &DataType::Boolean
            } else if name == DUP_N {
                f.is_nullable()
            } else if reference.carry.contains(&name) {
                target
                    .field_with_name(name)
                    .is_ok_and(|t| t.data_type() == f.data_type() && f.is_nullable())
            } else {
                false
            }
        })
}

/// What every partition of the merge shares.
#[derive(Debug)]
struct Merge {
    schema: SchemaRef,
    /// The typed rows' plan; partition `p` is merged by [`Part`] `p`.
    rows: Arc<dyn ExecutionPlan>,
    /// Where the accepted households are planned from: SQL of one
    /// stream in file order, which each partition reads from its first
    /// key on ([`Cursor::open_target`]).
    state: SessionState,
    target_sql: String,
    /// Key columns of the rows and of the target, pairwise.
    columns: Vec<String>,
    target_keys: Vec<String>,
    flag: String,
    /// The table's own key (`__row` for a table whose key may repeat),
    /// checked ascending as the rows pass.
    watch: Arc<Watch>,
}

/// One partition of the merged rows.
#[derive(Debug)]
struct Part {
    merge: Arc<Merge>,
    partition: usize,
}

impl PartitionStream for Part {
    fn schema(&self) -> &SchemaRef {
        &self.merge.schema
    }

    fn execute(&self, ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let merge = self.merge.clone();
        let schema = merge.schema.clone();
        match merge.rows.execute(self.partition, ctx.clone()) {
            Ok(rows) => {
                let target_key: Vec<&str> = merge.target_keys.iter().map(String::as_str).collect();
                let cursor = Cursor {
                    ascent: merge.watch.start(),
                    target_ascent: Ascent::new(&target_key),
                    partition: self.partition,
                    task: ctx,
                    rows,
                    target: None,
                    bound: None,
                    window: Vec::new(),
                    at: (0, 0),
                    exhausted: false,
                    merge,
                };
                let stream = futures::stream::try_unfold(cursor, |mut c| async move {
                    Ok(c.next_batch().await?.map(|b| (b, c)))
                });
                Box::pin(RecordBatchStreamAdapter::new(schema, stream))
            }
            Err(e) => failed(schema, e),
        }
    }
}

/// Where a row's search for its household stopped.
enum Pass {
    /// Every row of the batch has its answer.
    Done,
    /// Row `i` needs target rows beyond the window.
    NeedTarget(usize),
    /// A row lies below a household already passed.
    OutOfOrder,
}

/// One partition's merge: its rows, its own stream of households, and a
/// window of household batches from the one before the cursor on.
struct Cursor {
    merge: Arc<Merge>,
    partition: usize,
    task: Arc<TaskContext>,
    rows: SendableRecordBatchStream,
    /// The ascent of the rows' `__row` and key so far, and of the
    /// households' keys.
    ascent: (Ascent, Ascent),
    target_ascent: Ascent,
    /// The households from the partition's first key on, opened with the
    /// first batch; `bound` that first key's first column.
    target: Option<SendableRecordBatchStream>,
    bound: Option<ArrayRef>,
    window: Vec<RecordBatch>,
    /// The cursor (window batch, row): every household before it is below
    /// the current row's key.
    at: (usize, usize),
    exhausted: bool,
}

impl Cursor {
    /// The next batch of rows with its flag and handed-over columns.
    async fn next_batch(&mut self) -> DfResult<Option<RecordBatch>> {
        let Some(batch) = self.rows.next().await.transpose()? else {
            self.finish()?;
            return Ok(None);
        };
        self.merge.watch.push(&mut self.ascent, &batch)?;
        self.forget_passed();
        let keys = self
            .merge
            .columns
            .iter()
            .map(|c| batch.column_by_name(c).cloned().ok_or_else(|| missing(c)))
            .collect::<DfResult<Vec<ArrayRef>>>()?;
        if self.target.is_none() {
            self.open_target(&keys).await?;
        }
        let n = batch.num_rows();
        let mut found: Vec<(usize, usize)> = Vec::with_capacity(n);
        let mut failed = BooleanBufferBuilder::new(n);
        let mut from = 0;
        loop {
            let mut at = self.at;
            let pass = self.pass(&keys, from, &mut at, &mut found, &mut failed);
            self.at = at;
            match pass {
                Pass::Done => break,
                Pass::NeedTarget(i) => {
                    from = i;
                    self.pull().await?;
                }
                Pass::OutOfOrder => return Err(self.merge.watch.give_up()),
            }
        }
        self.assemble(&batch, &found, failed).map(Some)
    }

    /// Open the households from the first key of `keys` (the partition's
    /// first rows) on: the scan skips the row groups below it, so a later
    /// partition does not read the households of the ones before it.
    async fn open_target(&mut self, keys: &[ArrayRef]) -> DfResult<()> {
        let nulls = NullBuffer::union_many(keys.iter().map(|k| k.nulls()));
        let rows = keys.first().map_or(0, |k| k.len());
        let first = (0..rows).find(|&i| nulls.as_ref().is_none_or(|n| n.is_valid(i)));
        let ctx = SessionContext::new_with_state(self.merge.state.clone());
        let mut df = ctx.sql(&self.merge.target_sql).await?;
        if let (Some(i), Some(column)) = (first, keys.first()) {
            let bound = ScalarValue::try_from_array(column, i)?;
            df = df.filter(col(self.merge.target_keys[0].as_str()).gt_eq(lit(bound)))?;
            self.bound = Some(column.slice(i, 1));
        }
        let plan = df.create_physical_plan().await?;
        if plan.output_partitioning().partition_count() != 1 {
            return Err(self.merge.watch.give_up());
        }
        self.target = Some(plan.execute(0, self.task.clone())?);
        Ok(())
    }

    /// Record this partition's ascent, once its rows are all read.
    fn finish(&mut self) -> DfResult<()> {
        let empty = (Ascent::new(&[ROW_COLUMN]), Ascent::new(&[ROW_COLUMN]));
        let ascent = std::mem::replace(&mut self.ascent, empty);
        self.merge.watch.finish(self.partition, ascent)
    }

    /// Answer rows `from..` with the households in the window, the cursor
    /// at `at`: `found` gets each row's (window batch, row), or [`NONE`];
    /// `failed` whether a present key has no household.
    fn pass(
        &self,
        keys: &[ArrayRef],
        from: usize,
        at: &mut (usize, usize),
        found: &mut Vec<(usize, usize)>,
        failed: &mut BooleanBufferBuilder,
    ) -> Pass {
        let Some(row_keys) = keys
            .iter()
            .map(|k| Key::of(k.as_ref()))
            .collect::<Option<Vec<_>>>()
        else {
            return Pass::OutOfOrder;
        };
        let Some(window) = self.window_keys() else {
            return Pass::OutOfOrder;
        };
        let nulls = NullBuffer::union_many(keys.iter().map(|k| k.nulls()));
        let rows = keys.first().map_or(0, |k| k.len());
        let bound = self.bound.as_ref().and_then(|b| Key::of(b.as_ref()));
        let below_bound = |i: usize| {
            bound
                .as_ref()
                .is_some_and(|b| b.compare(0, &row_keys[0], i) == Ordering::Greater)
        };
        // Household (b, t) of the window against row i.
        let compare = |(b, t): (usize, usize), i: usize| compare_rows(&window[b], t, &row_keys, i);
        for i in from..rows {
            if nulls.as_ref().is_some_and(|n| n.is_null(i)) {
                found.push(NONE);
                failed.append(false);
                continue;
            }
            // Step past every household below the row.
            let order = loop {
                let (b, t) = *at;
                if b == self.window.len() {
                    if !self.exhausted {
                        return Pass::NeedTarget(i);
                    }
                    break Ordering::Greater;
                }
                if t == self.window[b].num_rows() {
                    *at = (b + 1, 0);
                    continue;
                }
                match compare((b, t), i) {
                    Ordering::Less => *at = (b, t + 1),
                    other => break other,
                }
            };
            if order == Ordering::Equal {
                found.push(*at);
                failed.append(false);
                continue;
            }
            // No household has the key, unless it is one already passed:
            // the household before the cursor must lie below the row (or,
            // before the first, the row not below the partition's first
            // key, from which the households were read).
            match before(&self.window, *at) {
                Some(before) if compare(before, i) != Ordering::Less => return Pass::OutOfOrder,
                None if below_bound(i) => return Pass::OutOfOrder,
                _ => {}
            }
            found.push(NONE);
            failed.append(true);
        }
        Pass::Done
    }

    /// The window's key columns as [`Key`]s, per batch.
    fn window_keys(&self) -> Option<Vec<Vec<Key<'_>>>> {
        self.window
            .iter()
            .map(|b| {
                self.merge
                    .target_keys
                    .iter()
                    .map(|k| b.column_by_name(k).and_then(|c| Key::of(c.as_ref())))
                    .collect()
            })
            .collect()
    }

    /// Drop the window's batches before the one holding the household
    /// before the cursor.
    fn forget_passed(&mut self) {
        let keep = match before(&self.window, self.at) {
            Some((b, _)) => b,
            None => self.at.0,
        };
        if keep > 0 {
            self.window.drain(..keep);
            self.at.0 -= keep;
        }
    }

    /// Read the next household batch into the window, checking that the
    /// keys go on strictly ascending with none null (`target_ascent`).
    async fn pull(&mut self) -> DfResult<()> {
        let Some(target) = self.target.as_mut() else {
            return Err(self.merge.watch.give_up());
        };
        let Some(batch) = target.next().await.transpose()? else {
            self.exhausted = true;
            return Ok(());
        };
        if batch.num_rows() == 0 {
            return Ok(());
        }
        self.target_ascent.push(&batch).map_err(external)?;
        if !self.target_ascent.ascending {
            return Err(self.merge.watch.give_up());
        }
        self.window.push(batch);
        Ok(())
    }

    /// `batch` with the flag and handed-over columns, under the plan's
    /// schema.
    fn assemble(
        &self,
        batch: &RecordBatch,
        found: &[(usize, usize)],
        failed: BooleanBufferBuilder,
    ) -> DfResult<RecordBatch> {
        let mut failed = failed;
        let n = batch.num_rows();
        let none = (self.window.len(), 0);
        let found: Vec<(usize, usize)> = found
            .iter()
            .map(|&f| if f == NONE { none } else { f })
            .collect();
        let flag = BooleanArray::new(failed.finish(), None);
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.merge.schema.fields().len());
        for field in self.merge.schema.fields() {
            let name = field.name();
            let column: ArrayRef = if let Some(own) = batch.column_by_name(name) {
                own.clone()
            } else if *name == self.merge.flag {
                Arc::new(flag.clone())
            } else if name == DUP {
                Arc::new(BooleanArray::from(vec![false; n]))
            } else if name == DUP_N {
                new_null_array(field.data_type(), n)
            } else {
                // A handed-over column: from the window, null for none.
                let none = new_null_array(field.data_type(), 1);
                let mut sources: Vec<&dyn Array> = Vec::with_capacity(self.window.len() + 1);
                for b in &self.window {
                    sources.push(
                        b.column_by_name(name)
                            .ok_or_else(|| missing(name))?
                            .as_ref(),
                    );
                }
                sources.push(none.as_ref());
                interleave(&sources, &found)?
            };
            columns.push(column);
        }
        Ok(RecordBatch::try_new(self.merge.schema.clone(), columns)?)
    }
}

/// A row without a household in [`Cursor::pass`]'s answers.
const NONE: (usize, usize) = (usize::MAX, 0);

/// The household just before cursor `at` in `window`, if it holds one.
fn before(window: &[RecordBatch], at: (usize, usize)) -> Option<(usize, usize)> {
    let (mut b, t) = at;
    if t > 0 {
        return Some((b, t - 1));
    }
    while b > 0 {
        b -= 1;
        if let Some(last) = window[b].num_rows().checked_sub(1) {
            return Some((b, last));
        }
    }
    None
}

/// The stream of a partition whose plan could not start: its error.
pub(super) fn failed(schema: SchemaRef, e: DataFusionError) -> SendableRecordBatchStream {
    Box::pin(RecordBatchStreamAdapter::new(
        schema,
        futures::stream::once(async move { Err(e) }),
    ))
}

fn missing(column: &str) -> DataFusionError {
    DataFusionError::Plan(format!("streamed merge: no column `{column}`"))
}

#[cfg(test)]
mod tests;
