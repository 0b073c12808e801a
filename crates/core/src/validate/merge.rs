//! Reference checks as a merge (DESIGN §2.4), when both sides are in key
//! order.
//!
//! A member's or an assistance row's household must be an accepted
//! household of that year. As a hash join that check builds a hash table
//! of every household key and probes it once per row: a random access
//! into a table of 1.15 M text keys at 1.2 M households, the largest cost
//! of validating `members`. Registries are commonly exported in household
//! order (the generator's are), and so are accepted households when their
//! keys were proven ascending (`order::keys_ascending`). Then the check is
//! a merge: one cursor walks the household keys while the rows' keys walk
//! past it, each row compared with the household under the cursor.
//!
//! Nothing is assumed: the target keys are checked to be strictly
//! ascending before the merge, and a row whose key lies below the cursor's
//! last household (the rows are not in order after all) ends the merge
//! with `None` — the caller then runs the hash-join plan, as for any other
//! order. The merge answers exactly what the join answers: the same
//! `__ref<i>` flag (a present key that no target row has) and the same
//! handed-over link columns (null for a failed reference).
//!
//! ```text
//! households   H1 H2 H4 H5            (strictly ascending)
//! members      H1 H1 H2 H3 H4 H4 H5   (never below the cursor's last)
//! matches      0  0  1  -  2  2  3    (`-`: H3 is no household: flagged)
//! ```

use std::cmp::Ordering;
use std::sync::Arc;

use datafusion::arrow::array::BooleanBufferBuilder;
use datafusion::arrow::array::OffsetSizeTrait;
use datafusion::arrow::array::{
    new_empty_array, new_null_array, Array, ArrayRef, BooleanArray, Date32Array, Int32Array,
    Int64Array, LargeStringArray, RecordBatch, StringArray, UInt32Array, UInt32Builder,
};
use datafusion::arrow::buffer::{BooleanBuffer, NullBuffer};
use datafusion::arrow::compute::{concat, take};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::prelude::SessionContext;

use super::checks::{key_is_unique, references_for, Reference};
use super::joins::{reference_flag, DUP, DUP_N};
use super::order::{collect_in_order, keys_ascending};
use crate::error::Result;
use crate::schema::{TableSpec, ROW_COLUMN};

/// The flag batches of `spec`'s duplicate-key and reference checks over
/// its typed `rows` (in `__row` order), under `flags_schema` (`__row`,
/// then the flags `joins::joins` adds, in its order), found by merges
/// instead of joins; `None` when a check needs its join: a key not proven
/// distinct (`distinct` false), a reference over an expression or with a
/// condition, a key type the merge does not compare, keys out of order.
pub(super) async fn merged_flags(
    ctx: &SessionContext,
    spec: &TableSpec,
    rows: &[RecordBatch],
    distinct: bool,
    flags_schema: &SchemaRef,
) -> Result<Option<Vec<RecordBatch>>> {
    if key_is_unique(spec) && !distinct {
        return Ok(None);
    }
    let references = references_for(spec);
    if references.is_empty() || !references.iter().all(mergeable) {
        return Ok(None);
    }
    // Per reference: the matched target row of each row, per batch, and
    // the target's handed-over columns.
    let mut found = Vec::with_capacity(references.len());
    for r in &references {
        let (_, target) = collect_in_order(ctx.sql(&r.target).await?).await?;
        let keys: Vec<&str> = r.on.iter().map(|(_, t)| *t).collect();
        if !keys_ascending(&target, &keys)? {
            return Ok(None);
        }
        let target_keys = concatenated(&target, &keys)?;
        let columns: Vec<&str> = r.on.iter().map(|(c, _)| c.as_str()).collect();
        let Some(matches) = merge(rows, &columns, &target_keys)? else {
            return Ok(None);
        };
        let carried = concatenated(&target, r.carry)?;
        found.push((matches, carried));
    }
    let mut out = Vec::with_capacity(rows.len());
    for (b, batch) in rows.iter().enumerate() {
        let n = batch.num_rows();
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(flags_schema.fields().len());
        for field in flags_schema.fields() {
            let name = field.name().as_str();
            let column: ArrayRef = if name == ROW_COLUMN {
                match batch.column_by_name(ROW_COLUMN) {
                    Some(c) => c.clone(),
                    None => return Ok(None),
                }
            } else if name == DUP {
                Arc::new(BooleanArray::new(BooleanBuffer::new_unset(n), None))
            } else if name == DUP_N {
                new_null_array(&DataType::Int64, n)
            } else if let Some(i) = (0..found.len()).find(|&i| name == reference_flag(i)) {
                Arc::new(found[i].0[b].failed.clone())
            } else {
                // A handed-over column: from the reference that carries it.
                let Some((r, (matches, carried))) = references
                    .iter()
                    .zip(&found)
                    .find(|(r, _)| r.carry.contains(&name))
                else {
                    return Ok(None);
                };
                let at = r.carry.iter().position(|c| *c == name).unwrap_or(0);
                take(carried[at].as_ref(), &matches[b].rows, None)?
            };
            // What the plan declares, or the plan's answer.
            let fits = column.data_type() == field.data_type()
                && (field.is_nullable() || column.null_count() == 0);
            if !fits {
                return Ok(None);
            }
            columns.push(column);
        }
        out.push(RecordBatch::try_new(flags_schema.clone(), columns)?);
    }
    Ok(Some(out))
}

/// Whether a reference can be checked by a merge: plain columns compared
/// (no expression such as `region_parent(code)`) and no condition.
pub(super) fn mergeable(r: &Reference) -> bool {
    r.only_if == "true" && r.on.iter().all(|(c, _)| !c.contains('('))
}

/// A key column the merge compares: text by its bytes and integers by
/// value, exactly as SQL `=` and the `order::keys_ascending` kernels do.
/// (Floats are left to the join: a total order tells -0.0 from 0.0, `=`
/// does not.)
pub(super) enum Key<'a> {
    Text(&'a [i32], &'a [u8]),
    LargeText(&'a [i64], &'a [u8]),
    Int32(&'a [i32]),
    Int64(&'a [i64]),
}

impl<'a> Key<'a> {
    /// Whether the merge compares columns of type `t` (those [`Key::of`]
    /// takes).
    pub(super) fn compares(t: &DataType) -> bool {
        Key::of(new_empty_array(t).as_ref()).is_some()
    }

    /// The column as a key, if its type is one the merge compares.
    pub(super) fn of(column: &'a dyn Array) -> Option<Self> {
        let any = column.as_any();
        match column.data_type() {
            DataType::Utf8 => any
                .downcast_ref::<StringArray>()
                .map(|a| Key::Text(a.value_offsets(), a.value_data())),
            DataType::LargeUtf8 => any
                .downcast_ref::<LargeStringArray>()
                .map(|a| Key::LargeText(a.value_offsets(), a.value_data())),
            DataType::Int32 | DataType::Date32 => any
                .downcast_ref::<Int32Array>()
                .map(|a| Key::Int32(a.values()))
                .or_else(|| {
                    any.downcast_ref::<Date32Array>()
                        .map(|a| Key::Int32(a.values()))
                }),
            DataType::Int64 => any
                .downcast_ref::<Int64Array>()
                .map(|a| Key::Int64(a.values())),
            _ => None,
        }
    }

    /// Value `t` of this column against value `i` of `other` (same type).
    #[inline]
    pub(super) fn compare(&self, t: usize, other: &Key<'_>, i: usize) -> Ordering {
        fn bytes<'b, O: OffsetSizeTrait>(o: &[O], d: &'b [u8], i: usize) -> &'b [u8] {
            &d[o[i].as_usize()..o[i + 1].as_usize()]
        }
        match (self, other) {
            (Key::Text(o, d), Key::Text(p, e)) => bytes(o, d, t).cmp(bytes(p, e, i)),
            (Key::LargeText(o, d), Key::LargeText(p, e)) => bytes(o, d, t).cmp(bytes(p, e, i)),
            (Key::Int32(a), Key::Int32(b)) => a[t].cmp(&b[i]),
            (Key::Int64(a), Key::Int64(b)) => a[t].cmp(&b[i]),
            // Types are checked equal before a merge.
            _ => Ordering::Less,
        }
    }
}

/// Row `t` of the key columns `a` against row `i` of `b` (same types),
/// column by column.
#[inline]
pub(super) fn compare_rows(a: &[Key<'_>], t: usize, b: &[Key<'_>], i: usize) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        match x.compare(t, y, i) {
            Ordering::Equal => continue,
            other => return other,
        }
    }
    Ordering::Equal
}

/// Columns `names` of `batches`, each concatenated into one array.
fn concatenated(batches: &[RecordBatch], names: &[&str]) -> Result<Vec<ArrayRef>> {
    names
        .iter()
        .map(|name| {
            let parts = batches
                .iter()
                .map(|b| {
                    b.column_by_name(name).map(|c| c.as_ref()).ok_or_else(|| {
                        datafusion::error::DataFusionError::Plan(format!(
                            "merged reference: no column `{name}`"
                        ))
                    })
                })
                .collect::<std::result::Result<Vec<&dyn Array>, _>>()?;
            if parts.is_empty() {
                return Ok(new_null_array(&DataType::Null, 0));
            }
            Ok(concat(&parts)?)
        })
        .collect()
}

/// What the merge found for one batch of rows.
struct Matched {
    /// The target row each row matches; null for a null key or a key no
    /// target row has.
    rows: UInt32Array,
    /// `__ref<i>`: the key is present (no column null) and no target row
    /// has it.
    failed: BooleanArray,
}

/// The target rows of `rows` (key `columns`) in `target` (key columns,
/// strictly ascending, no nulls), per batch. `None` when a key lies below
/// the cursor's last target row (the rows are not in key order) or a key
/// column is of a type the merge does not compare ([`Key::of`]).
///
/// The rows are merged as contiguous runs of batches, one per core, each
/// with its own cursor started by a binary search for its first key: a
/// row's match depends only on the target and on the rows before it in
/// its run, so the runs need not follow one another.
fn merge(
    rows: &[RecordBatch],
    columns: &[&str],
    target: &[ArrayRef],
) -> Result<Option<Vec<Matched>>> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    merge_in_runs(rows, columns, target, cores)
}

/// [`merge`] with the batches in up to `runs` runs.
fn merge_in_runs(
    rows: &[RecordBatch],
    columns: &[&str],
    target: &[ArrayRef],
    runs: usize,
) -> Result<Option<Vec<Matched>>> {
    if u32::try_from(target.first().map_or(0, |t| t.len())).is_err()
        || columns.len() != target.len()
    {
        return Ok(None);
    }
    let Some(target_keys) = target
        .iter()
        .map(|t| Key::of(t.as_ref()))
        .collect::<Option<Vec<_>>>()
    else {
        return Ok(None);
    };
    let per = rows.len().div_ceil(runs.max(1)).max(1);
    let target_keys = &target_keys;
    let runs: Vec<Result<Option<Vec<Matched>>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = rows
            .chunks(per)
            .map(|run| scope.spawn(move || merge_run(run, columns, target, target_keys)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|p| Err(crate::error::Error::from_panic(p.as_ref())))
            })
            .collect()
    });
    let mut out = Vec::with_capacity(rows.len());
    for run in runs {
        match run? {
            Some(matched) => out.extend(matched),
            None => return Ok(None),
        }
    }
    Ok(Some(out))
}

/// The key columns `columns` of `batch` as merge keys, if each has the
/// type of its target column and is one the merge compares.
fn batch_keys<'a>(
    batch: &'a RecordBatch,
    columns: &[&str],
    target: &[ArrayRef],
) -> Option<(Vec<&'a dyn Array>, Vec<Key<'a>>)> {
    let mut arrays = Vec::with_capacity(columns.len());
    for (name, t) in columns.iter().zip(target) {
        match batch.column_by_name(name) {
            Some(c) if c.data_type() == t.data_type() => arrays.push(c.as_ref()),
            _ => return None,
        }
    }
    let keys = arrays
        .iter()
        .map(|c| Key::of(*c))
        .collect::<Option<Vec<_>>>()?;
    Some((arrays, keys))
}

/// Where a run's cursor starts: the first target row not below the run's
/// first key (0 when every key of the run is null).
fn first_cursor(
    rows: &[RecordBatch],
    columns: &[&str],
    target: &[ArrayRef],
    target_keys: &[Key<'_>],
) -> Option<usize> {
    let targets = target.first().map_or(0, |t| t.len());
    for batch in rows {
        let (arrays, keys) = batch_keys(batch, columns, target)?;
        let nulls = NullBuffer::union_many(arrays.iter().map(|c| c.nulls()));
        let first = (0..batch.num_rows()).find(|&i| nulls.as_ref().is_none_or(|n| n.is_valid(i)));
        if let Some(i) = first {
            let (mut lo, mut hi) = (0, targets);
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                if compare_rows(target_keys, mid, &keys, i) == Ordering::Less {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            return Some(lo);
        }
    }
    Some(0)
}

/// [`merge`] over one run of batches.
fn merge_run(
    rows: &[RecordBatch],
    columns: &[&str],
    target: &[ArrayRef],
    target_keys: &[Key<'_>],
) -> Result<Option<Vec<Matched>>> {
    let targets = target.first().map_or(0, |t| t.len());
    let mut out = Vec::with_capacity(rows.len());
    // The cursor: every target row before it is below the current key.
    let Some(mut at) = first_cursor(rows, columns, target, target_keys) else {
        return Ok(None);
    };
    for batch in rows {
        let Some((columns_of_batch, keys)) = batch_keys(batch, columns, target) else {
            return Ok(None);
        };
        // Target row `t` against row `i` of this batch.
        let compare = |t: usize, i: usize| compare_rows(target_keys, t, &keys, i);
        // Rows with a null in any key column.
        let nulls = NullBuffer::union_many(columns_of_batch.iter().map(|c| c.nulls()));
        let mut matched = UInt32Builder::with_capacity(batch.num_rows());
        let mut failed = BooleanBufferBuilder::new(batch.num_rows());
        for i in 0..batch.num_rows() {
            if nulls.as_ref().is_some_and(|n| n.is_null(i)) {
                matched.append_null();
                failed.append(false);
                continue;
            }
            let start = at;
            let against = |t: usize| {
                if t < targets {
                    compare(t, i)
                } else {
                    Ordering::Greater
                }
            };
            let mut order = against(at);
            while order == Ordering::Less {
                at += 1;
                order = against(at);
            }
            // A key no target row at or after the cursor has, reached
            // without a step: it must still lie above the row before the
            // cursor, else it may equal one already passed. (A hit needs
            // no such check: target keys are distinct.)
            if order != Ordering::Equal
                && at == start
                && at > 0
                && compare(at - 1, i) != Ordering::Less
            {
                return Ok(None);
            }
            let hit = order == Ordering::Equal;
            // `at < targets <= u32::MAX` on a hit, checked above.
            matched.append_option(hit.then_some(at as u32));
            failed.append(!hit);
        }
        out.push(Matched {
            rows: matched.finish(),
            failed: BooleanArray::new(failed.finish(), None),
        });
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int32Array, StringArray};
    use datafusion::arrow::datatypes::{Field, Schema};

    fn keys(rows: &[(Option<&str>, Option<i32>)]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, true),
            Field::new("year", DataType::Int32, true),
        ]));
        let ids: StringArray = rows.iter().map(|r| r.0).collect();
        let years: Int32Array = rows.iter().map(|r| r.1).collect();
        RecordBatch::try_new(schema, vec![Arc::new(ids), Arc::new(years)]).unwrap()
    }

    fn target(rows: &[(&str, i32)]) -> Vec<ArrayRef> {
        let b = keys(
            &rows
                .iter()
                .map(|r| (Some(r.0), Some(r.1)))
                .collect::<Vec<_>>(),
        );
        b.columns().to_vec()
    }

    fn matches(rows: &[RecordBatch], t: &[ArrayRef]) -> Option<Vec<Option<u32>>> {
        merge(rows, &["id", "year"], t).unwrap().map(|m| {
            m.iter()
                .flat_map(|a| a.rows.iter().collect::<Vec<_>>())
                .collect()
        })
    }

    #[test]
    fn each_row_finds_its_target_row_or_none() {
        let t = target(&[("H1", 2016), ("H2", 2016), ("H2", 2017), ("H4", 2016)]);
        let y = Some(2016);
        let rows = [
            keys(&[
                (Some("H0"), y),          // below the first target
                (Some("H1"), y),          // 0
                (Some("H1"), y),          // 0 again (a run of members)
                (Some("H2"), Some(2015)), // between targets: none
                (None, y),                // null key: none, cursor kept
            ]),
            keys(&[
                (Some("H2"), Some(2017)), // 2, across a batch boundary
                (Some("H3"), y),          // between: none
                (Some("H4"), None),       // null year
                (Some("H4"), y),          // 3
                (Some("H9"), y),          // after the last: none
            ]),
        ];
        assert_eq!(
            matches(&rows, &t),
            Some(vec![
                None,
                Some(0),
                Some(0),
                None,
                None,
                Some(2),
                None,
                None,
                Some(3),
                None
            ])
        );
        // Flagged: a present key without a match (not the null keys).
        let failed: Vec<bool> = merge(&rows, &["id", "year"], &t)
            .unwrap()
            .unwrap()
            .iter()
            .flat_map(|m| m.failed.iter().flatten().collect::<Vec<_>>())
            .collect();
        assert_eq!(
            failed,
            [true, false, false, true, false, false, true, false, false, true]
        );
        // No target rows: nothing matches.
        assert_eq!(matches(&rows[..1], &target(&[])).map(|m| m.len()), Some(5));
    }

    #[test]
    fn rows_out_of_key_order_end_the_merge() {
        let t = target(&[("H1", 2016), ("H2", 2016), ("H3", 2016)]);
        let y = Some(2016);
        // H1 after H2 would be reported missing: the merge gives up.
        assert_eq!(
            matches(&[keys(&[(Some("H2"), y), (Some("H1"), y)])], &t),
            None
        );
        // Across batches too, within a run.
        let across = [keys(&[(Some("H3"), y)]), keys(&[(Some("H2"), y)])];
        let in_one_run = merge_in_runs(&across, &["id", "year"], &t, 1).unwrap();
        assert!(in_one_run.is_none());
        // Each run has its own cursor, started at its first key: runs out
        // of order with one another still get the join's answers.
        let rows_of = |m: Vec<Matched>| -> Vec<Option<u32>> {
            m.iter()
                .flat_map(|m| m.rows.iter().collect::<Vec<_>>())
                .collect()
        };
        let in_two_runs = merge_in_runs(&across, &["id", "year"], &t, 2).unwrap();
        assert_eq!(in_two_runs.map(rows_of), Some(vec![Some(2), Some(1)]));
        let missing = [
            keys(&[(Some("H4"), y)]),
            keys(&[(None, y), (Some("H0"), y)]),
        ];
        let found = merge_in_runs(&missing, &["id", "year"], &t, 2).unwrap();
        assert_eq!(found.map(rows_of), Some(vec![None, None, None]));
        // A row below the one before it but above every target row the
        // cursor passed still gets the join's answer: H15 lies between
        // H1 and H2, so no household has it, whatever the order.
        assert_eq!(
            matches(&[keys(&[(Some("H2"), y), (Some("H15"), y)])], &t),
            Some(vec![Some(1), None])
        );
        // Equal keys in a row are in order.
        assert!(matches(&[keys(&[(Some("H2"), y), (Some("H2"), y)])], &t).is_some());
        // A column of another type than the target's: not merged.
        let other = vec![
            t[0].clone(),
            Arc::new(StringArray::from(vec!["a", "b", "c"])) as ArrayRef,
        ];
        assert_eq!(matches(&[keys(&[(Some("H2"), y)])], &other), None);
    }
    /// Members and assistance of a faulty registry (orphans, null and
    /// malformed keys): the merge gives exactly the flags and handed-over
    /// link columns of the join plan, row for row.
    #[tokio::test]
    async fn merged_flags_equal_the_join_plans() {
        use crate::catalog::linked_provider;
        use crate::validate::fixtures::{registry, typed};
        use crate::validate::joins::{join_columns, joins};
        use crate::validate::order::{in_order, in_row_order, keys_ascending};
        use datafusion::arrow::compute::concat_batches;
        use datafusion::datasource::MemTable;

        let (tables, households) = registry().await;
        let ctx = crate::session::context(in_order(crate::session::base_config()), None).unwrap();
        ctx.register_table(
            crate::links::linked_name("households"),
            linked_provider(&ctx, &households, 2).unwrap().unwrap(),
        )
        .unwrap();
        for name in ["members", "assistance"] {
            let spec = crate::schema::table_spec(name).unwrap();
            let typed = typed(&tables, name);
            let schema = typed[0].schema();
            let typed_name = format!("__typed_{name}");
            ctx.register_table(
                typed_name.as_str(),
                Arc::new(MemTable::try_new(schema.clone(), vec![typed.clone()]).unwrap()),
            )
            .unwrap();
            let rows_sql = format!("SELECT {} FROM {typed_name}", join_columns(spec).join(", "));
            let distinct = key_is_unique(spec) && keys_ascending(&typed, spec.key).unwrap();
            let joins = joins(spec, &typed_name, rows_sql, distinct);
            let df = ctx.sql(&joins.flags_sql()).await.unwrap();
            let planned = df.schema().inner().clone();
            let (_, joined) = in_row_order(&ctx, df).await.unwrap();
            let merged = merged_flags(&ctx, spec, &typed, distinct, &planned)
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("{name}: in order, so merged"));
            let joined = concat_batches(&joined[0].schema(), &joined).unwrap();
            let merged = concat_batches(&planned, &merged).unwrap();
            assert_eq!(merged.num_rows(), joined.num_rows(), "{name}");
            for field in planned.fields() {
                let (a, b) = (
                    merged.column_by_name(field.name()).unwrap(),
                    joined.column_by_name(field.name()).unwrap(),
                );
                assert_eq!(a.as_ref(), b.as_ref(), "{name}.{}", field.name());
            }
            // The registry exercises both answers.
            let failed = merged
                .column_by_name("__ref0")
                .and_then(|c| {
                    c.as_any()
                        .downcast_ref::<BooleanArray>()
                        .map(|a| a.true_count())
                })
                .unwrap();
            let linked = merged.column_by_name("__village").unwrap();
            assert!(failed > 0, "{name}: some rows have no household");
            assert!(
                linked.len() - linked.null_count() > failed,
                "{name}: most rows have one"
            );
            ctx.deregister_table(typed_name.as_str()).unwrap();
        }
    }
}
