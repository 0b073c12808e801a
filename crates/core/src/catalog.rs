//! The catalog: the one place that registers tables and views on a
//! session, and turns a validated [`Table`] into a DataFusion table
//! provider (its batches, or a view over its store file).
//!
//! What an engine session holds, so any SQL can use it:
//! - every base table of DESIGN §2.2 under its name (an optional table the
//!   dataset lacks is registered empty, so SQL over it works);
//! - `__<table>_linked` for the tables with link columns ([`crate::links`]);
//! - `rejects`, the ledger;
//! - the views `household_facts`, `region_facts`, `village_facts` and
//!   `county_facts` ([`crate::facts`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::datasource::MemTable;
use datafusion::prelude::{DataFrame, SessionContext};

use crate::codes::Level;
use crate::error::Result;
use crate::facts;
use crate::io::store;
use crate::links;
use crate::schema;
use crate::table::Table;

/// Names of the views [`register_views`] adds.
pub(crate) const VIEWS: [&str; 4] = [
    "household_facts",
    "region_facts",
    "village_facts",
    "county_facts",
];

/// Register `tables` (split into `partitions`), empty stand-ins for the
/// optional tables they lack, and the `rejects` ledger on `ctx`.
pub(crate) fn register_tables(
    ctx: &SessionContext,
    tables: &BTreeMap<String, Table>,
    rejects: &[RecordBatch],
    partitions: usize,
) -> Result<()> {
    for (name, table) in tables {
        ctx.register_table(name.as_str(), provider(ctx, table, partitions)?)?;
        if let Some(linked) = linked_provider(ctx, table, partitions)? {
            ctx.register_table(links::linked_name(name), linked)?;
        }
    }
    for spec in schema::TABLES.iter() {
        if !tables.contains_key(spec.name) {
            // Absent optional tables are empty, so SQL over them works.
            let empty = |schema| -> Result<Arc<MemTable>> {
                Ok(Arc::new(MemTable::try_new(schema, vec![vec![]])?))
            };
            ctx.register_table(spec.name, empty(spec.schema())?)?;
            if !links::columns(spec.name).is_empty() {
                let schema = links::linked_schema(spec.name, &spec.schema());
                ctx.register_table(links::linked_name(spec.name), empty(schema)?)?;
            }
        }
    }
    ctx.register_table(
        "rejects",
        Arc::new(MemTable::try_new(
            schema::rejects_schema(),
            vec![rejects.to_vec()],
        )?),
    )?;
    Ok(())
}

/// Every table and view name registered on `ctx`'s default schema.
pub(crate) fn registered_names(ctx: &SessionContext) -> BTreeSet<String> {
    let state = ctx.state();
    let options = &state.config().options().catalog;
    ctx.catalog(&options.default_catalog)
        .and_then(|c| c.schema(&options.default_schema))
        .map(|s| s.table_names().into_iter().collect())
        .unwrap_or_default()
}

/// Register the facts views ([`VIEWS`]) on `ctx`, whose tables are
/// registered; `with_members`: the dataset has `members`.
pub(crate) async fn register_views(ctx: &SessionContext, with_members: bool) -> Result<()> {
    let sql = [
        facts::household_facts_sql(),
        facts::region_facts_sql(),
        facts::unit_facts_sql(Level::Village, with_members),
        facts::unit_facts_sql(Level::County, with_members),
    ];
    for (name, sql) in VIEWS.iter().zip(sql) {
        let plan = ctx.state().create_logical_plan(&sql).await?;
        let df = DataFrame::new(ctx.state(), plan);
        ctx.register_table(*name, df.into_view())?;
    }
    Ok(())
}

/// `table` as a table provider of `ctx`: its batches split round-robin
/// into `partitions` partitions, or the accepted view of its store file.
pub(crate) fn provider(
    ctx: &SessionContext,
    table: &Table,
    partitions: usize,
) -> Result<Arc<dyn TableProvider>> {
    provider_of(ctx, &table.schema, &table.batches, table, partitions)
}

/// `table` with its link columns ([`crate::links`]) as a table provider,
/// like [`provider`]; `None` for a table without links.
pub(crate) fn linked_provider(
    ctx: &SessionContext,
    table: &Table,
    partitions: usize,
) -> Result<Option<Arc<dyn TableProvider>>> {
    table
        .linked
        .as_ref()
        .map(|l| provider_of(ctx, &l.schema, &l.batches, table, partitions))
        .transpose()
}

/// `schema` of `table` as a provider: `batches` split round-robin into
/// `partitions` partitions, or those columns of its store file.
fn provider_of(
    ctx: &SessionContext,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    table: &Table,
    partitions: usize,
) -> Result<Arc<dyn TableProvider>> {
    if let Some(stored) = &table.stored {
        return store::accepted_view(ctx, stored, schema);
    }
    let n = partitions.max(1);
    let mut parts: Vec<Vec<_>> = vec![Vec::new(); n];
    let mut i = 0;
    for batch in batches {
        // Large batches are sliced so every partition gets work.
        let rows = batch.num_rows();
        let chunk = 64 * 1024;
        let mut offset = 0;
        while offset < rows {
            let len = chunk.min(rows - offset);
            parts[i % n].push(batch.slice(offset, len));
            i += 1;
            offset += len;
        }
    }
    Ok(Arc::new(MemTable::try_new(schema.clone(), parts)?))
}
