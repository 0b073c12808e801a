//! Validated rows in source order, without sorting the table: the
//! validation session's joins keep the order of the checked rows
//! ([`in_order`]), the sources come as contiguous runs of rows ([`runs`]),
//! and the order is checked, not assumed ([`in_row_order`] sorts when it
//! was not kept). The accepted rows are then a filter of the flagged ones
//! ([`accepted_rows`]).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, Int64Array, RecordBatch};
use datafusion::arrow::compute::filter;
use datafusion::arrow::compute::kernels::cmp;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::datasource::MemTable;
use datafusion::prelude::{DataFrame, SessionConfig, SessionContext};

use super::{batch_schema, collect_table};
use crate::error::{Error, Result};
use crate::io::source::row_order;
use crate::io::store::BAD_COLUMN;
use crate::schema::ROW_COLUMN;

/// The validation session: joins keep the checked rows in source order.
/// Each check's join builds its key set once (`CollectLeft`, no
/// repartitioning by key) and streams the rows through it, partition by
/// partition, and no round-robin repartitioning shuffles them; the
/// sources' partitions are contiguous runs of rows. So the flagged rows
/// come out in `__row` order and the accepted table needs no sort of the
/// whole table (that sort was a third of validation). Nothing relies on it
/// blindly: [`keys_ascending`] checks the order and a sort follows if needed.
///
/// Store files are scanned whole, one partition per file, not split into
/// byte ranges: a file written in `__row` order says so in its metadata,
/// and DataFusion carries that order through a reference join (assistance
/// hands on the household's row as `__hid`), so the streamed store file
/// is asked for in `(__row, __hid)` order. Split, the household scan lost
/// its order and DataFusion sorted the 19 M assistance rows to restore it
/// — a spilling sort at national scale that, under a 3 GiB limit beside
/// the 1.5 GB household key set, failed two runs in five. Whole, the key
/// set is read on one core (it is built on one anyway) and the rows are
/// merged in order, not sorted.
pub(super) fn in_order(config: SessionConfig) -> SessionConfig {
    config
        .with_repartition_joins(false)
        .with_round_robin_repartition(false)
        .with_repartition_file_scans(false)
}

/// `batches` (`rows` rows in all) as up to `n` partitions of contiguous
/// rows, in order — so a plan over them runs on `n` cores and each
/// partition keeps its rows' order.
pub(super) fn runs(batches: Vec<RecordBatch>, rows: usize, n: usize) -> Vec<Vec<RecordBatch>> {
    let per = rows.div_ceil(n.max(1)).max(1);
    let mut out: Vec<Vec<RecordBatch>> = vec![Vec::new()];
    let mut filled = 0;
    for batch in batches {
        let mut offset = 0;
        while offset < batch.num_rows() {
            if filled == per {
                out.push(Vec::new());
                filled = 0;
            }
            let take = (per - filled).min(batch.num_rows() - offset);
            if let Some(run) = out.last_mut() {
                run.push(batch.slice(offset, take));
            }
            filled += take;
            offset += take;
        }
    }
    out
}

/// `batches` (`rows` rows, in `__row` order) as a table of up to `n`
/// partitions of contiguous rows ([`runs`]), declared sorted on `__row`.
pub(super) fn in_runs(
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    rows: usize,
    n: usize,
) -> Result<Arc<MemTable>> {
    Ok(Arc::new(
        MemTable::try_new(schema, runs(batches, rows, n))?.with_sort_order(vec![vec![row_order()]]),
    ))
}

/// Collect a DataFrame partition by partition, the partitions one after
/// the other (rather than as their batches arrive), with a schema that
/// matches the batches exactly.
///
/// Each partition runs on its own task and yields to the scheduler after
/// every batch. Without the yield, the partitions of a plan with a shared
/// (`CollectLeft`) build side ran on one core: the partition that built
/// the key set wakes the others when it is done, a task woken from a
/// worker goes to that worker's LIFO slot (which idle workers cannot
/// steal), and the waking partition then streams to its end without
/// returning to the scheduler — so the woken one waited for it.
pub(super) async fn collect_in_order(df: DataFrame) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    use futures::StreamExt;
    let plan_schema: SchemaRef = df.schema().inner().clone();
    let streams = df.execute_stream_partitioned().await?;
    let mut tasks = tokio::task::JoinSet::new();
    for (i, mut stream) in streams.into_iter().enumerate() {
        tasks.spawn(async move {
            let mut out = Vec::new();
            while let Some(batch) = stream.next().await {
                out.push(batch?);
                tokio::task::yield_now().await;
            }
            Ok::<_, datafusion::error::DataFusionError>((i, out))
        });
    }
    let mut parts = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        parts.push(finished(joined)??);
    }
    parts.sort_by_key(|(i, _)| *i);
    batch_schema(
        plan_schema,
        parts.into_iter().flat_map(|(_, b)| b).collect(),
    )
}

/// The result of a finished task: its panic resumed here, a cancelled
/// task as an error.
fn finished<T>(joined: std::result::Result<T, tokio::task::JoinError>) -> Result<T> {
    match joined {
        Ok(value) => Ok(value),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(Error::Query(
            datafusion::error::DataFusionError::ExecutionJoin(Box::new(e)),
        )),
    }
}

/// The flagged rows of `df` in source (`__row`) order: as they come when
/// the plan kept it (the rule, see [`in_order`]), else sorted.
pub(super) async fn in_row_order(
    ctx: &SessionContext,
    df: DataFrame,
) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let (schema, batches) = collect_in_order(df).await?;
    if keys_ascending(&batches, &[ROW_COLUMN])? {
        return Ok((schema, batches));
    }
    let unsorted = ctx.read_table(Arc::new(MemTable::try_new(schema, vec![batches])?))?;
    collect_table(unsorted.sort(vec![row_order()])?).await
}

/// The accepted rows (`NOT __bad`) of the flagged `batches`, with
/// `columns`, in the batches' order — a filter kernel per batch.
pub(super) fn accepted_rows(
    schema: &SchemaRef,
    batches: &[RecordBatch],
    columns: &[&str],
) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    use datafusion::arrow::compute::{filter_record_batch, not};
    let indices = columns
        .iter()
        .map(|c| schema.index_of(c))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let bad = schema.index_of(BAD_COLUMN)?;
    let out_schema = Arc::new(schema.project(&indices)?);
    let mut out = Vec::with_capacity(batches.len());
    for b in batches {
        let flags = b
            .column(bad)
            .as_any()
            .downcast_ref::<BooleanArray>()
            .filter(|f| f.null_count() == 0)
            .ok_or_else(|| {
                Error::Query(datafusion::error::DataFusionError::Internal(format!(
                    "`{BAD_COLUMN}` is not a non-null boolean column"
                )))
            })?;
        let kept = filter_record_batch(&b.project(&indices)?, &not(flags)?)?;
        if kept.num_rows() > 0 {
            out.push(kept);
        }
    }
    Ok((out_schema, out))
}

/// The `rows` (under `schema`) with the columns of `flags` (under
/// `flags_schema`, every column but `__row`) beside them, batch by batch.
/// Both are in `__row` order and hold the same rows; that is checked, row
/// by row. A flag batch spanning a row batch is sliced (no copy); a row
/// batch spanning flag batches gets their pieces concatenated.
pub(super) fn beside(
    schema: &SchemaRef,
    rows: Vec<RecordBatch>,
    flags_schema: &SchemaRef,
    flags: &[RecordBatch],
) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    use datafusion::arrow::compute::concat;
    use datafusion::arrow::datatypes::Schema;
    let mismatch = |what: String| {
        Error::Query(datafusion::error::DataFusionError::Internal(format!(
            "flags beside the typed rows: {what}"
        )))
    };
    let row_at = schema.index_of(ROW_COLUMN)?;
    let flag_row_at = flags_schema.index_of(ROW_COLUMN)?;
    let added: Vec<usize> = (0..flags_schema.fields().len())
        .filter(|&i| i != flag_row_at)
        .collect();
    let out_schema = Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .cloned()
            .chain(added.iter().map(|&i| flags_schema.fields()[i].clone()))
            .collect::<Vec<_>>(),
    ));
    // (flag batch, first row not yet used)
    let (mut at, mut offset) = (0usize, 0usize);
    let mut out = Vec::with_capacity(rows.len());
    for batch in rows.into_iter().filter(|b| b.num_rows() > 0) {
        let mut wanted = batch.num_rows();
        let mut pieces: Vec<RecordBatch> = Vec::new();
        while wanted > 0 {
            let flag = flags
                .get(at)
                .ok_or_else(|| mismatch("fewer flags than rows".into()))?;
            let n = (flag.num_rows() - offset).min(wanted);
            pieces.push(flag.slice(offset, n));
            (offset, wanted) = (offset + n, wanted - n);
            if offset == flag.num_rows() {
                (at, offset) = (at + 1, 0);
            }
        }
        let columns: Vec<Arc<dyn Array>> = if let [piece] = pieces.as_slice() {
            piece.columns().to_vec()
        } else {
            (0..flags_schema.fields().len())
                .map(|i| {
                    let parts: Vec<&dyn Array> =
                        pieces.iter().map(|p| p.column(i).as_ref()).collect();
                    concat(&parts)
                })
                .collect::<std::result::Result<_, _>>()?
        };
        match (
            int64_values(batch.column(row_at)),
            int64_values(&columns[flag_row_at]),
        ) {
            (Some(a), Some(b)) if a == b => {}
            (a, _) => {
                return Err(mismatch(format!(
                    "rows differ in the batch from `{ROW_COLUMN}` {:?}",
                    a.and_then(|v| v.first().copied())
                )))
            }
        }
        let mut all = batch.columns().to_vec();
        all.extend(added.iter().map(|&i| columns[i].clone()));
        out.push(RecordBatch::try_new(out_schema.clone(), all)?);
    }
    if at < flags.len() && flags[at..].iter().map(|f| f.num_rows()).sum::<usize>() > offset {
        return Err(mismatch("more flags than rows".into()));
    }
    Ok((out_schema, out))
}

/// Whether the `key` columns of `batches`, read in row order, are never
/// null and strictly ascending (compared as a tuple, column by column):
/// then no two rows share a key and the duplicate-key aggregate, a hash
/// table of every key, has nothing to find. Registries are commonly
/// exported in key order (the generator's are), so this pass of
/// vectorised comparisons of each row with the next often stands in for
/// it; any other order, or a null key, answers `false` and the aggregate
/// runs.
pub(super) fn keys_ascending(batches: &[RecordBatch], key: &[&str]) -> Result<bool> {
    let mut ascent = Ascent::new(key);
    for batch in batches {
        ascent.push(batch)?;
    }
    Ok(ascent.ascending)
}

/// [`keys_ascending`] over the rows of `df` (`__row` and the key
/// columns), streamed: each partition is read on its own task and checked
/// as it comes, so nothing is held, and the partitions must then follow
/// one another — in `__row` (the sources' partitions are contiguous runs
/// of rows, [`in_order`]) and in key. Stops at the first row out of order.
pub(super) async fn keys_ascending_streamed(df: DataFrame, key: &[&str]) -> Result<bool> {
    use futures::StreamExt;
    let streams = df.execute_stream_partitioned().await?;
    let mut tasks = tokio::task::JoinSet::new();
    for (i, mut stream) in streams.into_iter().enumerate() {
        let (mut rows, mut keys) = (Ascent::new(&[ROW_COLUMN]), Ascent::new(key));
        tasks.spawn(async move {
            while let Some(batch) = stream.next().await {
                let batch = batch?;
                rows.push(&batch)?;
                keys.push(&batch)?;
                if !(rows.ascending && keys.ascending) {
                    break;
                }
                tokio::task::yield_now().await;
            }
            Ok::<_, Error>((i, rows, keys))
        });
    }
    let mut parts = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (i, rows, keys) = finished(joined)??;
        if !(rows.ascending && keys.ascending) {
            // The other partitions are stopped as the set is dropped.
            return Ok(false);
        }
        parts.push((i, rows, keys));
    }
    parts.sort_by_key(|(i, _, _)| *i);
    let parts: Vec<(Ascent, Ascent)> = parts.into_iter().map(|(_, r, k)| (r, k)).collect();
    in_sequence(&parts)
}

/// Whether partitions, each checked by an [`Ascent`] of `__row` and one
/// of its key (in partition order), ascended and follow one another in
/// both; partitions without rows are passed over.
pub(super) fn in_sequence(parts: &[(Ascent, Ascent)]) -> Result<bool> {
    let rows: Vec<&Ascent> = parts.iter().map(|(r, _)| r).collect();
    let keys: Vec<&Ascent> = parts.iter().map(|(_, k)| k).collect();
    Ok(follow_one_another(&rows)? && follow_one_another(&keys)?)
}

/// Whether partitions, each checked by an [`Ascent`] (in partition
/// order), ascended and follow one another; partitions without rows are
/// passed over.
pub(super) fn follow_one_another(parts: &[&Ascent]) -> Result<bool> {
    if !parts.iter().all(|a| a.ascending) {
        return Ok(false);
    }
    let parts: Vec<&Ascent> = parts.iter().copied().filter(|a| a.last.is_some()).collect();
    for pair in parts.windows(2) {
        if !pair[1].follows(pair[0])? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Columns checked for strict ascent batch by batch, in row order.
#[derive(Debug)]
pub(super) struct Ascent {
    columns: Vec<String>,
    /// The columns of the first and of the last row seen.
    first: Option<Vec<ArrayRef>>,
    last: Option<Vec<ArrayRef>>,
    /// False from the first null, missing column or row out of order on.
    pub ascending: bool,
}

impl Ascent {
    pub(super) fn new(columns: &[&str]) -> Self {
        Ascent {
            columns: columns.iter().map(|c| c.to_string()).collect(),
            first: None,
            last: None,
            ascending: !columns.is_empty(),
        }
    }

    /// Check the rows of `batch`, which follow the rows seen so far.
    pub(super) fn push(&mut self, batch: &RecordBatch) -> Result<()> {
        let n = batch.num_rows();
        if !self.ascending || n == 0 {
            return Ok(());
        }
        let mut columns = Vec::with_capacity(self.columns.len());
        for name in &self.columns {
            match batch.column_by_name(name) {
                Some(c) if c.null_count() == 0 => columns.push(c.clone()),
                _ => {
                    self.ascending = false;
                    return Ok(());
                }
            }
        }
        let rows = |offset: usize, len: usize| -> Vec<ArrayRef> {
            columns.iter().map(|c| c.slice(offset, len)).collect()
        };
        let head = rows(0, 1);
        self.ascending = match &self.last {
            Some(before) => pairwise_ascending(before, &head)?,
            None => true,
        } && (n == 1 || pairwise_ascending(&rows(0, n - 1), &rows(1, n - 1))?);
        self.first.get_or_insert(head);
        self.last = Some(rows(n - 1, 1));
        Ok(())
    }

    /// Whether this run's first row comes after `earlier`'s last.
    pub(super) fn follows(&self, earlier: &Ascent) -> Result<bool> {
        match (&earlier.last, &self.first) {
            (Some(before), Some(after)) => pairwise_ascending(before, after),
            _ => Ok(false),
        }
    }
}

/// Whether each row of `after` is greater than the same row of `before`,
/// as tuples of their columns (no nulls). A later column is compared only
/// where the earlier ones are equal, and not at all when the first one
/// already orders every row.
fn pairwise_ascending(before: &[ArrayRef], after: &[ArrayRef]) -> Result<bool> {
    let (Some(b), Some(a)) = (before.first(), after.first()) else {
        return Ok(false);
    };
    let greater = cmp::gt(a, b)?;
    if greater.true_count() == greater.len() || before.len() == 1 {
        return Ok(greater.true_count() == greater.len());
    }
    // Rows where the first column ties must be ordered by the rest.
    let tied = cmp::eq(a, b)?;
    let rest_ascending = {
        let keep = |cols: &[ArrayRef]| -> Result<Vec<ArrayRef>> {
            cols[1..].iter().map(|c| Ok(filter(c, &tied)?)).collect()
        };
        pairwise_ascending(&keep(before)?, &keep(after)?)?
    };
    Ok(rest_ascending && greater.true_count() + tied.true_count() == greater.len())
}

/// The values of an Int64 column without nulls.
fn int64_values(column: &dyn Array) -> Option<&[i64]> {
    column
        .as_any()
        .downcast_ref::<Int64Array>()
        .filter(|a| a.null_count() == 0)
        .map(|a| a.values().as_ref())
}

/// The number of flagged rows (`__bad` true) in `batches`.
pub(super) fn bad_rows(batches: &[RecordBatch]) -> usize {
    batches
        .iter()
        .map(|b| {
            b.column_by_name(BAD_COLUMN)
                .and_then(|c| c.as_any().downcast_ref::<BooleanArray>())
                .map(|a| a.true_count())
                .unwrap_or(0)
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int32Array, Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    fn rows(values: &[i64]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new(ROW_COLUMN, DataType::Int64, false),
            Field::new("v", DataType::Utf8, true),
            Field::new(BAD_COLUMN, DataType::Boolean, false),
        ]));
        let text: Vec<String> = values.iter().map(|v| format!("r{v}")).collect();
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(values.to_vec())),
                Arc::new(StringArray::from(text)),
                Arc::new(BooleanArray::from(
                    values.iter().map(|v| v % 3 == 0).collect::<Vec<_>>(),
                )),
            ],
        )
        .unwrap()
    }

    fn row_numbers(batches: &[RecordBatch]) -> Vec<i64> {
        batches
            .iter()
            .flat_map(|b| {
                let a = b
                    .column_by_name(ROW_COLUMN)
                    .unwrap()
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .unwrap();
                a.values().to_vec()
            })
            .collect()
    }

    #[test]
    fn runs_split_rows_into_contiguous_partitions_in_order() {
        let batches = vec![
            rows(&[1, 2, 3]),
            rows(&[4, 5, 6, 7]),
            rows(&[8, 9, 10, 11, 12]),
        ];
        let parts = runs(batches, 12, 2);
        assert_eq!(parts.len(), 2);
        assert_eq!(row_numbers(&parts[0]), vec![1, 2, 3, 4, 5, 6]);
        assert_eq!(row_numbers(&parts[1]), vec![7, 8, 9, 10, 11, 12]);
        // More partitions than rows: one row each; none asked: one.
        assert_eq!(runs(vec![rows(&[1, 2])], 2, 5).len(), 2);
        assert_eq!(runs(vec![rows(&[1, 2])], 2, 0).len(), 1);
    }

    #[test]
    fn ascending_means_strictly_increasing_across_batches() {
        assert!(keys_ascending(&[rows(&[1, 2]), rows(&[5, 9])], &[ROW_COLUMN]).unwrap());
        assert!(keys_ascending(&[], &[ROW_COLUMN]).unwrap());
        assert!(!keys_ascending(&[rows(&[1, 2]), rows(&[2, 3])], &[ROW_COLUMN]).unwrap());
        assert!(!keys_ascending(&[rows(&[3, 4]), rows(&[1, 2])], &[ROW_COLUMN]).unwrap());
        assert!(!keys_ascending(&[rows(&[1, 3, 2])], &[ROW_COLUMN]).unwrap());
        // A missing column is not known to be in order.
        assert!(!keys_ascending(&[rows(&[1, 2])], &["nope"]).unwrap());
    }

    /// A batch of (id, year) keys; `None` is a null id.
    fn keys(rows: &[(Option<&str>, i32)]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, true),
            Field::new("year", DataType::Int32, false),
        ]));
        let ids: StringArray = rows.iter().map(|r| r.0).collect();
        let years: Int32Array = rows.iter().map(|r| Some(r.1)).collect();
        RecordBatch::try_new(schema, vec![Arc::new(ids), Arc::new(years)]).unwrap()
    }

    #[test]
    fn keys_ascending_proves_distinct_keys_only_when_each_row_is_above_the_last() {
        let key = ["id", "year"];
        let asc = |batches: &[RecordBatch]| keys_ascending(batches, &key).unwrap();
        let (a, b, c) = (Some("H1"), Some("H2"), Some("H3"));
        // In order within and across batches; empty batches change nothing.
        assert!(asc(&[
            keys(&[(a, 2016), (b, 2016)]),
            keys(&[]),
            keys(&[(c, 2016)])
        ]));
        assert!(asc(&[]));
        // Ties on the first column are ordered by the second.
        assert!(asc(&[keys(&[(a, 2016), (a, 2017), (b, 2015)])]));
        assert!(!asc(&[keys(&[(a, 2017), (a, 2016), (b, 2015)])]));
        // A repeated key, within a batch or across two, is not distinct.
        assert!(!asc(&[keys(&[(a, 2016), (b, 2016), (b, 2016)])]));
        assert!(!asc(&[
            keys(&[(a, 2016), (b, 2016)]),
            keys(&[(b, 2016), (c, 2016)])
        ]));
        // Out of order (text order: H10 < H2), across a batch boundary too.
        assert!(!asc(&[keys(&[(b, 2016), (Some("H10"), 2016)])]));
        assert!(!asc(&[keys(&[(c, 2016)]), keys(&[(a, 2016), (b, 2016)])]));
        // A null key or a missing column proves nothing.
        assert!(!asc(&[keys(&[(a, 2016), (None, 2016), (c, 2016)])]));
        assert!(!keys_ascending(&[keys(&[(a, 2016)])], &["id", "nope"]).unwrap());
        assert!(!keys_ascending(&[keys(&[(a, 2016)])], &[]).unwrap());
    }

    /// A batch of (`__row`, id) rows.
    fn numbered(rows: &[(i64, &str)]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new(ROW_COLUMN, DataType::Int64, false),
            Field::new("id", DataType::Utf8, false),
        ]));
        let numbers: Int64Array = rows.iter().map(|r| Some(r.0)).collect();
        let ids: StringArray = rows.iter().map(|r| Some(r.1)).collect();
        RecordBatch::try_new(schema, vec![Arc::new(numbers), Arc::new(ids)]).unwrap()
    }

    #[tokio::test]
    async fn streamed_partitions_must_each_ascend_and_follow_one_another() {
        let ctx = SessionContext::new();
        let check = |partitions: Vec<Vec<RecordBatch>>| {
            let ctx = ctx.clone();
            async move {
                let schema = numbered(&[]).schema();
                let table = MemTable::try_new(schema, partitions).unwrap();
                let df = ctx.read_table(Arc::new(table)).unwrap();
                keys_ascending_streamed(df, &["id"]).await.unwrap()
            }
        };
        let p = |rows: &[(i64, &str)]| vec![numbered(rows)];
        // Two runs of rows, each in order, the second after the first.
        assert!(check(vec![p(&[(1, "a"), (2, "b")]), p(&[(3, "c"), (4, "d")])]).await);
        // An empty partition between them changes nothing.
        assert!(check(vec![p(&[(1, "a")]), vec![], p(&[(2, "b")])]).await);
        // A key repeated across the boundary, or out of order in one part.
        assert!(!check(vec![p(&[(1, "a"), (2, "b")]), p(&[(3, "b"), (4, "d")])]).await);
        assert!(!check(vec![p(&[(1, "b"), (2, "a")]), p(&[(3, "c")])]).await);
        // Keys in order but the partitions not in row order: not proven.
        assert!(!check(vec![p(&[(3, "a")]), p(&[(1, "b")])]).await);
    }

    #[tokio::test]
    async fn rows_out_of_order_are_sorted_by_source_row() {
        let ctx = SessionContext::new();
        let batches = vec![rows(&[4, 5, 6]), rows(&[1, 2, 3])];
        let df = ctx
            .read_table(Arc::new(
                MemTable::try_new(batches[0].schema(), vec![batches]).unwrap(),
            ))
            .unwrap();
        let (_, sorted) = in_row_order(&ctx, df).await.unwrap();
        assert_eq!(row_numbers(&sorted), vec![1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn accepted_rows_are_the_unflagged_ones_in_order_with_the_columns_asked() {
        let batches = vec![rows(&[1, 2, 3, 4]), rows(&[5, 6, 7])];
        let (schema, kept) =
            accepted_rows(&batches[0].schema(), &batches, &["v", ROW_COLUMN]).unwrap();
        assert_eq!(
            schema
                .fields()
                .iter()
                .map(|f| f.name().as_str())
                .collect::<Vec<_>>(),
            vec!["v", ROW_COLUMN]
        );
        assert_eq!(row_numbers(&kept), vec![1, 2, 4, 5, 7]);
        let text: Vec<&str> = kept
            .iter()
            .flat_map(|b| {
                let a = b.column(0).as_any().downcast_ref::<StringArray>().unwrap();
                (0..a.len()).map(|i| a.value(i)).collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(text, vec!["r1", "r2", "r4", "r5", "r7"]);
    }
}
