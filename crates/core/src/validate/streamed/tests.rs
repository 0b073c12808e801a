//! Tests of the streamed merge against the join plan, and of every way
//! it stops when keys are out of order.

use super::*;
use crate::validate::fixtures::{registry, typed};
use crate::validate::order::{in_order, in_row_order, in_runs, keys_ascending};
use datafusion::arrow::array::StringArray;
use datafusion::arrow::compute::concat_batches;
use datafusion::datasource::MemTable;

/// The merged rows of `rows` against `households` (as the target's
/// batches), collected in `__row` order, and whether the merge gave
/// up; beside them the join plan's rows.
async fn merged_and_joined(
    name: &str,
    rows: Vec<RecordBatch>,
    households: Vec<RecordBatch>,
) -> (DfResult<RecordBatch>, bool, RecordBatch) {
    let spec = crate::schema::table_spec(name).unwrap();
    let ctx = crate::session::context(in_order(crate::session::base_config()), None).unwrap();
    let linked_schema = households[0].schema();
    ctx.register_table(
        crate::links::linked_name("households"),
        Arc::new(MemTable::try_new(linked_schema, vec![households]).unwrap()),
    )
    .unwrap();
    let typed_name = format!("__typed_{name}");
    let n = rows.iter().map(|b| b.num_rows()).sum();
    let distinct = key_is_unique(spec) && keys_ascending(&rows, spec.key).unwrap();
    ctx.register_table(
        typed_name.as_str(),
        in_runs(rows[0].schema(), rows, n, 2).unwrap(),
    )
    .unwrap();
    let merged = streamed_merge(&ctx, spec, &typed_name)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{name}: a merge applies"));
    let collected = match in_row_order(&ctx, ctx.read_table(merged.provider.clone()).unwrap()).await
    {
        Ok((schema, batches)) => Ok(concat_batches(&schema, &batches).unwrap()),
        Err(e) => Err(DataFusionError::Execution(e.to_string())),
    };
    // Given up, or read to the end with keys not in order throughout.
    let gave_up = merged.watch.gave_up() || !merged.watch.held().unwrap();
    let sql = joins(
        spec,
        &typed_name,
        format!("SELECT * FROM {typed_name}"),
        distinct,
    )
    .sql;
    let (schema, joined) = in_row_order(&ctx, ctx.sql(&sql).await.unwrap())
        .await
        .unwrap();
    (
        collected,
        gave_up,
        concat_batches(&schema, &joined).unwrap(),
    )
}

/// The households' linked rows (key and link columns) in file order.
fn linked(households: &crate::table::Table) -> Vec<RecordBatch> {
    households.linked.as_ref().unwrap().batches.clone()
}

/// `batches` cut into batches of `n` rows.
fn sliced(batches: &[RecordBatch], n: usize) -> Vec<RecordBatch> {
    let mut out = Vec::new();
    for b in batches {
        let mut offset = 0;
        while offset < b.num_rows() {
            let len = n.min(b.num_rows() - offset);
            out.push(b.slice(offset, len));
            offset += len;
        }
    }
    out
}

#[tokio::test]
async fn merged_rows_equal_the_join_plans() {
    let (tables, households) = registry().await;
    // Batches of households and rows of every size against each other,
    // so the cursor crosses batch boundaries mid-run.
    for (name, rows, targets) in [
        ("members", 8192, 8192),
        ("members", 13, 7),
        ("assistance", 8192, 8192),
        ("assistance", 5, 1),
        ("assistance", 1, 11),
    ] {
        let (merged, gave_up, joined) = merged_and_joined(
            name,
            sliced(&typed(&tables, name), rows),
            sliced(&linked(&households), targets),
        )
        .await;
        let merged = merged.unwrap();
        assert!(!gave_up, "{name}");
        assert_eq!(merged.schema(), joined.schema(), "{name}");
        assert_eq!(merged.num_rows(), joined.num_rows(), "{name}");
        for (i, field) in joined.schema().fields().iter().enumerate() {
            assert_eq!(
                merged.column(i).as_ref(),
                joined.column(i).as_ref(),
                "{name}.{}",
                field.name()
            );
        }
        // Both answers occur: orphans flagged, the others linked.
        let flag = merged.column_by_name("__ref0").unwrap();
        let failed = flag.as_any().downcast_ref::<BooleanArray>().unwrap();
        assert!(failed.true_count() > 0, "{name}: orphans");
        let village = merged.column_by_name("__village").unwrap();
        assert!(village.len() - village.null_count() > failed.true_count());
    }
}

/// Household ids of `batches` (column `household_id`) with the first
/// and last row's values swapped.
fn swapped(batches: &[RecordBatch]) -> Vec<RecordBatch> {
    let all = concat_batches(&batches[0].schema(), batches).unwrap();
    let at = all.schema().index_of("household_id").unwrap();
    let ids = all
        .column(at)
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    let mut values: Vec<Option<&str>> = ids.iter().collect();
    let last = values.len() - 1;
    values.swap(0, last);
    let mut columns = all.columns().to_vec();
    columns[at] = Arc::new(StringArray::from(values));
    vec![RecordBatch::try_new(all.schema(), columns).unwrap()]
}

#[tokio::test]
async fn keys_out_of_order_stop_the_merge() {
    let (tables, households) = registry().await;
    // Rows out of order: the last household's row comes first, so the
    // first household's row, moved last, lies below the cursor.
    let (merged, gave_up, _) = merged_and_joined(
        "assistance",
        swapped(&typed(&tables, "assistance")),
        linked(&households),
    )
    .await;
    assert!(merged.is_err() && gave_up, "rows out of order");
    // Members sharing a key (a person twice): the merge said no key
    // is shared, so it does not hold.
    let members = typed(&tables, "members");
    let all = concat_batches(&members[0].schema(), &members).unwrap();
    let twice = concat_batches(
        &all.schema(),
        &[all.slice(0, 2), all.slice(1, all.num_rows() - 1)],
    )
    .unwrap();
    let (_, gave_up, _) = merged_and_joined("members", vec![twice], linked(&households)).await;
    assert!(gave_up, "a shared key");
    // Halves swapped and rows numbered anew: each partition (a half)
    // ascends in `__row` and in key and finds its households, but the
    // second's keys lie below the first's — only the partitions in
    // turn show that the keys are not proven distinct.
    let n = all.num_rows();
    let half = n.div_ceil(2);
    let swapped_halves = concat_batches(
        &all.schema(),
        &[all.slice(half, n - half), all.slice(0, half)],
    )
    .unwrap();
    let mut columns = swapped_halves.columns().to_vec();
    let at = all.schema().index_of(ROW_COLUMN).unwrap();
    columns[at] = Arc::new(datafusion::arrow::array::Int64Array::from_iter_values(
        1..=n as i64,
    ));
    let renumbered = RecordBatch::try_new(all.schema(), columns).unwrap();
    let (merged, gave_up, _) =
        merged_and_joined("members", vec![renumbered], linked(&households)).await;
    assert!(merged.is_ok(), "each partition merges");
    assert!(gave_up, "partitions out of order");
    // Households out of order.
    let (merged, gave_up, _) = merged_and_joined(
        "assistance",
        typed(&tables, "assistance"),
        swapped(&linked(&households)),
    )
    .await;
    assert!(merged.is_err() && gave_up, "households out of order");
}
