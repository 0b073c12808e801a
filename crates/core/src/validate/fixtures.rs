//! Fixtures of the validation tests: a faulty registry of one year in
//! household order, its households validated, its rows numbered.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;

use crate::io::exports::ColumnMap;
use crate::io::source::{number_rows, numbered_schema};

/// A faulty registry of one year, in household order: the tables by
/// name, and its households validated in memory.
pub(super) async fn registry() -> (Vec<(&'static str, Vec<RecordBatch>)>, crate::table::Table) {
    let tables = crate::synth::generate_tables(&crate::GenerateOptions {
        households: 600,
        seed: 5,
        faults: 0.15,
        only_year: Some(2016),
        ..Default::default()
    })
    .unwrap();
    let map = Arc::new(ColumnMap::builtin());
    let raws = tables
        .iter()
        .filter(|(n, _)| ["regions", "households"].contains(n))
        .map(|(name, batches)| {
            let spec = crate::schema::table_spec(name).unwrap();
            crate::io::source::raw_from_batches(spec, "memory", batches.clone(), map.clone())
                .unwrap()
        })
        .collect();
    let mut loaded = crate::validate::validate(raws, crate::validate::Target::Memory, None)
        .await
        .unwrap();
    let households = loaded.tables.remove("households").unwrap();
    (tables, households)
}

/// `name`'s rows numbered from 1 as its typed rows are (`__row` first).
pub(super) fn typed(tables: &[(&'static str, Vec<RecordBatch>)], name: &str) -> Vec<RecordBatch> {
    let batches = &tables.iter().find(|(n, _)| *n == name).unwrap().1;
    let (schema, _) = numbered_schema(name, &batches[0].schema(), &ColumnMap::builtin());
    let mut next = 1;
    batches
        .iter()
        .map(|b| {
            let numbered = number_rows(b, &schema, next).unwrap();
            next += b.num_rows() as i64;
            numbered
        })
        .collect()
}
