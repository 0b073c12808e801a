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
//!   `county_facts` ([`crate::facts`]);
//! - `__regions_in_order`, every region numbered in output order (level,
//!   then code), computed on first use and kept ([`REGIONS_IN_ORDER`]).

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use futures::FutureExt;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::Schema;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{DataFusionError, Result as DfResult};
use datafusion::datasource::{MemTable, TableType, ViewTable};
use datafusion::execution::session_state::SessionState;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{col, Expr, LogicalPlan, TableProviderFilterPushDown};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::physical_plan::{collect, ExecutionPlan, SendableRecordBatchStream};
use datafusion::prelude::SessionContext;

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

/// The regions numbered in output order: `level`, `code`, `name`, `cv`
/// (the code as a number), `rank` (of the level) and `seq` (rank·10^12 +
/// cv), one ordered partition sorted by `seq` (see [`LazyTable`]). A plan
/// that joins to it on its probe side keeps this order, so results listed
/// by level and code need no sort of their own wide rows (the index,
/// [`crate::mpi`]).
pub(crate) const REGIONS_IN_ORDER: &str = "__regions_in_order";

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
    // One stream of the ledger's batches, not a MemTable: DataFusion splits
    // a MemTable's one partition across the cores, and the ledger came out
    // of `Engine::rejects` with the tables' batches interleaved.
    ctx.register_table(
        "rejects",
        one_stream(schema::rejects_schema(), rejects.to_vec())?,
    )?;
    Ok(())
}

/// `batches` as a table of one stream, read in their order: DataFusion
/// splits a MemTable's one partition across the cores and reorders its
/// batches.
pub(crate) fn one_stream(
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
) -> Result<Arc<dyn TableProvider>> {
    let rows = Kept(schema.clone(), batches);
    Ok(Arc::new(StreamingTable::try_new(
        schema,
        vec![Arc::new(rows)],
    )?))
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
/// registered; `with_members`: the dataset has `members`. Each view is
/// planned when a query first names it ([`LazyView`]): planning all four
/// took 50–70 ms at every engine start (two of them wide), most of what
/// reopening a store cost, for views most commands never read.
pub(crate) fn register_views(ctx: &SessionContext, with_members: bool) -> Result<()> {
    let sql = [
        facts::household_facts_sql(),
        facts::region_facts_sql(),
        facts::unit_facts_sql(Level::Village, with_members),
        facts::unit_facts_sql(Level::County, with_members),
    ];
    for (name, sql) in VIEWS.iter().zip(sql) {
        ctx.register_table(*name, Arc::new(LazyView::new(ctx, name, sql)))?;
    }
    let regions = LazyView::new(ctx, REGIONS_IN_ORDER, facts::regions_in_order_sql());
    ctx.register_table(REGIONS_IN_ORDER, Arc::new(LazyTable::new(regions, "seq")))?;
    Ok(())
}

/// A table computed by a query the first time it is scanned, then kept:
/// its rows in one partition, in the order of the query (which sorts on
/// `order`), declared sorted on `order` — so DataFusion neither sorts it
/// again nor splits it across cores. For small derived tables every call
/// would otherwise recompute (the numbered regions: a window and a sort
/// of every region row, planned and run on every index call).
struct LazyTable {
    query: LazyView,
    order: &'static str,
    batches: tokio::sync::OnceCell<Vec<RecordBatch>>,
}

impl std::fmt::Debug for LazyTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyTable")
            .field("name", &self.query.name)
            .field("computed", &self.batches.initialized())
            .finish()
    }
}

impl LazyTable {
    fn new(query: LazyView, order: &'static str) -> LazyTable {
        LazyTable {
            query,
            order,
            batches: tokio::sync::OnceCell::new(),
        }
    }

    /// The rows, computed on the first call with `state`.
    async fn batches(&self, state: &dyn Session) -> DfResult<&Vec<RecordBatch>> {
        self.batches
            .get_or_try_init(|| async {
                let plan = self.query.view()?.logical_plan().clone();
                let plan = state.create_physical_plan(&plan).await?;
                collect(plan, state.task_ctx()).await
            })
            .await
    }
}

#[async_trait]
impl TableProvider for LazyTable {
    fn schema(&self) -> SchemaRef {
        self.query.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let schema = self.schema();
        let rows = Kept(schema.clone(), self.batches(state).await?.clone());
        StreamingTable::try_new(schema, vec![Arc::new(rows)])?
            .with_sort_order(vec![col(self.order).sort(true, false)])
            .scan(state, projection, filters, limit)
            .await
    }
}

/// Kept batches as a partition's stream.
#[derive(Debug)]
struct Kept(SchemaRef, Vec<RecordBatch>);

impl PartitionStream for Kept {
    fn schema(&self) -> &SchemaRef {
        &self.0
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let batches = self.1.clone().into_iter().map(Ok);
        Box::pin(RecordBatchStreamAdapter::new(
            self.0.clone(),
            futures::stream::iter(batches),
        ))
    }
}

/// A view over SQL that is planned the first time anything asks for it
/// (its schema, when a query names it), then behaves as DataFusion's
/// [`ViewTable`] of that plan. It holds the session weakly (the session's
/// catalog holds the view), and plans with the session's state of that
/// moment. A view that cannot be planned has an empty schema and fails
/// its scans with the planning error, naming the view.
struct LazyView {
    name: &'static str,
    sql: String,
    /// The session's state now, or `None` once the session has ended.
    session: Box<dyn Fn() -> Option<SessionState> + Send + Sync>,
    view: OnceLock<std::result::Result<ViewTable, String>>,
}

impl std::fmt::Debug for LazyView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyView")
            .field("name", &self.name)
            .field("planned", &self.view.get().is_some())
            .finish()
    }
}

impl LazyView {
    fn new(ctx: &SessionContext, name: &'static str, sql: String) -> LazyView {
        LazyView {
            name,
            sql,
            session: {
                let session = ctx.state_weak_ref();
                Box::new(move || Some(session.upgrade()?.read().clone()))
            },
            view: OnceLock::new(),
        }
    }

    /// The planned view, planned on the first call.
    fn view(&self) -> DfResult<&ViewTable> {
        let view = self.view.get_or_init(|| {
            let state = (self.session)().ok_or_else(|| "its session has ended".to_string())?;
            // Planning is async because a catalog may wait; this crate's
            // (in-memory schemas) never does, so one poll completes it.
            let plan = state
                .create_logical_plan(&self.sql)
                .now_or_never()
                .ok_or_else(|| "planning it waited on its catalog".to_string())?
                .map_err(|e| e.to_string())?;
            Ok(ViewTable::new(plan, Some(self.sql.clone())))
        });
        view.as_ref()
            .map_err(|e| DataFusionError::Plan(format!("view {}: {e}", self.name)))
    }
}

#[async_trait]
impl TableProvider for LazyView {
    fn schema(&self) -> SchemaRef {
        match self.view() {
            Ok(view) => view.schema(),
            Err(_) => Arc::new(Schema::empty()),
        }
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    fn get_logical_plan(&self) -> Option<Cow<'_, LogicalPlan>> {
        Some(Cow::Borrowed(self.view().ok()?.logical_plan()))
    }

    fn get_table_definition(&self) -> Option<&str> {
        Some(&self.sql)
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        self.view()?.supports_filters_pushdown(filters)
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        self.view()?.scan(state, projection, filters, limit).await
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::Int64Array;
    use datafusion::arrow::datatypes::{DataType, Field};

    fn planned(view: &LazyView) -> bool {
        view.view.get().is_some()
    }

    /// A session with table `t` (x = 1, 2, 3).
    fn session() -> SessionContext {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(Int64Array::from(vec![1, 2, 3]))],
        )
        .unwrap();
        let ctx = SessionContext::new();
        let table = MemTable::try_new(schema, vec![vec![batch]]).unwrap();
        ctx.register_table("t", Arc::new(table)).unwrap();
        ctx
    }

    #[tokio::test]
    async fn a_view_is_planned_when_first_named() {
        let ctx = session();
        let view = Arc::new(LazyView::new(&ctx, "v", "SELECT x * 10 AS y FROM t".into()));
        ctx.register_table("v", view.clone()).unwrap();
        assert!(!planned(&view), "registering does not plan");
        let batches = ctx
            .sql("SELECT sum(y) AS s FROM v WHERE y > 10")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        assert!(planned(&view));
        let s = batches[0]
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        assert_eq!(s.value(0), 50);
        assert_eq!(view.schema().field(0).name(), "y");
        assert_eq!(view.table_type(), TableType::View);
    }

    #[tokio::test]
    async fn the_facts_views_cost_nothing_until_named_and_then_name_their_error() {
        // No tables at all: eager planning would fail here; lazy views
        // register, and a query naming one fails with the view's name
        // (when it runs: a view that cannot be planned has no columns).
        let ctx = SessionContext::new();
        register_views(&ctx, true).unwrap();
        let query = ctx.sql("SELECT * FROM village_facts").await.unwrap();
        let err = query.collect().await.unwrap_err();
        assert!(err.to_string().contains("view village_facts:"), "{err}");
    }

    #[tokio::test]
    async fn a_lazy_table_is_computed_once_in_order_and_never_sorted_again() {
        let ctx = session();
        let query = LazyView::new(&ctx, "l", "SELECT 4 - x AS k FROM t ORDER BY k".into());
        let table = Arc::new(LazyTable::new(query, "k"));
        ctx.register_table("l", table.clone()).unwrap();
        assert!(!table.batches.initialized(), "registering computes nothing");
        let ordered = "SELECT k FROM l ORDER BY k";
        let rows = |batches: Vec<RecordBatch>| -> Vec<i64> {
            batches
                .iter()
                .flat_map(|b| {
                    let k = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
                    k.values().to_vec()
                })
                .collect()
        };
        let first = ctx.sql(ordered).await.unwrap().collect().await.unwrap();
        assert_eq!(rows(first), [1, 2, 3]);
        assert!(table.batches.initialized());
        // Kept: a changed source does not change it.
        ctx.deregister_table("t").unwrap();
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
        let other = RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(vec![0]))]);
        let other = MemTable::try_new(schema, vec![vec![other.unwrap()]]).unwrap();
        ctx.register_table("t", Arc::new(other)).unwrap();
        let again = ctx.sql(ordered).await.unwrap().collect().await.unwrap();
        assert_eq!(rows(again), [1, 2, 3]);
        // Declared sorted on `k`, in one partition: ordering by it adds no
        // sort and no merge to the plan.
        let plan = ctx
            .sql(ordered)
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        let shown = datafusion::physical_plan::displayable(plan.as_ref())
            .indent(false)
            .to_string();
        assert!(!shown.contains("SortExec"), "{shown}");
        assert!(!shown.contains("SortPreservingMergeExec"), "{shown}");
        assert_eq!(plan.properties().partitioning.partition_count(), 1);
    }

    #[tokio::test]
    async fn a_view_holds_no_session() {
        // The catalog holds the view, the view does not hold the session
        // (no cycle keeping an engine's tables alive): once the session is
        // gone, a view left over cannot plan, and says so by name.
        let ctx = session();
        let view = LazyView::new(&ctx, "v", "SELECT x FROM t".into());
        drop(ctx);
        assert_eq!(view.schema().fields().len(), 0);
        let state = SessionContext::new().state();
        let err = view.scan(&state, None, &[], None).await.unwrap_err();
        assert!(
            err.to_string().contains("view v: its session has ended"),
            "{err}"
        );
    }
}
