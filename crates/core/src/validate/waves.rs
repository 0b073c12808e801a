//! The order tables are validated in.
//!
//! A table's references read its parent tables (a member's household, a
//! household's village), so a parent is validated before its children.
//! [`waves`] groups the loaded tables by that order: each wave holds the
//! tables whose parents are in earlier waves (or not loaded at all).
//!
//! In memory (and staged into a store) every table starts at once and
//! waits for its parents only before its references ([`Parents::wait`]):
//! the members' rows are typed and checked while the households' own
//! checks run, so both cores stay busy across what were the waves'
//! boundaries. Streamed into a store the waves run one table at a time
//! (at national scale each holds the household key set), and the wait
//! returns at once.
//!
//! ```text
//! households  read ─ typed ─ flags ─ flagged ─ done ┐
//! members     read ──── typed ──────── (wait) ──────┴─ flags ─ flagged
//! ```

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use tokio::sync::watch;

use super::checks::parents;
use super::order::runs;
use crate::catalog::{linked_provider, provider};
use crate::error::{Error, Result};
use crate::links;
use crate::schema::TableSpec;
use crate::table::Table;

/// The tables `specs` (in load order) as waves of indices into `specs`:
/// each wave's parents are all in earlier waves or not loaded. An error
/// names the tables when their references go round in a circle.
pub(super) fn waves(specs: &[&'static TableSpec]) -> Result<Vec<Vec<usize>>> {
    let loaded: Vec<&str> = specs.iter().map(|s| s.name).collect();
    let mut placed: BTreeSet<&str> = BTreeSet::new();
    let mut pending: Vec<usize> = (0..specs.len()).collect();
    let mut out = Vec::new();
    while !pending.is_empty() {
        let (ready, rest): (Vec<usize>, Vec<usize>) = pending.into_iter().partition(|&i| {
            parents(specs[i])
                .iter()
                .all(|p| placed.contains(p) || !loaded.contains(p))
        });
        if ready.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "tables {:?} reference each other",
                rest.iter().map(|&i| specs[i].name).collect::<Vec<_>>()
            )));
        }
        placed.extend(ready.iter().map(|&i| specs[i].name));
        out.push(ready);
        pending = rest;
    }
    Ok(out)
}

/// The tables validated so far, for tables that wait for their parents.
pub(super) struct Parents {
    loaded: Vec<&'static str>,
    done: watch::Sender<BTreeSet<&'static str>>,
}

impl Parents {
    /// No table validated yet, of the `loaded` ones.
    pub(super) fn new(loaded: Vec<&'static str>) -> Self {
        Parents {
            loaded,
            done: watch::Sender::new(BTreeSet::new()),
        }
    }

    /// Wait until every loaded parent of `spec` is validated and
    /// registered ([`Parents::validated`]).
    pub(super) async fn wait(&self, spec: &TableSpec) -> Result<()> {
        let needed: Vec<&str> = parents(spec)
            .into_iter()
            .filter(|p| self.loaded.contains(p))
            .collect();
        let mut done = self.done.subscribe();
        done.wait_for(|d| needed.iter().all(|p| d.contains(p)))
            .await
            .map_err(|e| Error::InvalidArgument(format!("parent tables never came: {e}")))?;
        Ok(())
    }

    /// Register validated `table` as `name` (and its link columns) for
    /// the tables whose references read it, and let them go on.
    pub(super) fn validated(
        &self,
        ctx: &SessionContext,
        name: &'static str,
        table: &Table,
    ) -> Result<()> {
        let (own, linked) = if table.stored.is_some() {
            (provider(ctx, table, 1)?, linked_provider(ctx, table, 1)?)
        } else {
            let n = ctx.state().config().target_partitions();
            let linked = table.linked.as_ref();
            (
                in_runs_of(&table.schema, &table.batches, n)?,
                linked
                    .map(|l| in_runs_of(&l.schema, &l.batches, n))
                    .transpose()?,
            )
        };
        ctx.register_table(name, own)?;
        if let Some(linked) = linked {
            ctx.register_table(links::linked_name(name), linked)?;
        }
        self.done.send_modify(|d| {
            d.insert(name);
        });
        Ok(())
    }
}

/// A validated table's rows in memory as the tables that reference it
/// read them: contiguous runs, one per core (`n`). A plan over them (such
/// as a merge's household side) runs on every core, and collected run by
/// run the rows keep their order, which the merges need. (A stored table
/// is read from its file.)
fn in_runs_of(
    schema: &SchemaRef,
    batches: &[RecordBatch],
    n: usize,
) -> Result<Arc<dyn TableProvider>> {
    let rows = batches.iter().map(|b| b.num_rows()).sum();
    let parts = runs(batches.to_vec(), rows, n);
    Ok(Arc::new(MemTable::try_new(schema.clone(), parts)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::table_spec;

    fn names(specs: &[&'static TableSpec], waves: &[Vec<usize>]) -> Vec<Vec<&'static str>> {
        waves
            .iter()
            .map(|w| w.iter().map(|&i| specs[i].name).collect())
            .collect()
    }

    #[test]
    fn parents_come_in_earlier_waves() {
        let specs: Vec<&'static TableSpec> = ["members", "households", "regions", "funds"]
            .into_iter()
            .filter_map(table_spec)
            .collect();
        let w = waves(&specs).unwrap();
        assert_eq!(
            names(&specs, &w),
            vec![
                vec!["regions"],
                vec!["households", "funds"],
                vec!["members"]
            ]
        );
        // A parent not loaded holds nobody back.
        let alone: Vec<&'static TableSpec> =
            ["members"].into_iter().filter_map(table_spec).collect();
        assert_eq!(
            names(&alone, &waves(&alone).unwrap()),
            vec![vec!["members"]]
        );
    }

    #[tokio::test]
    async fn a_table_waits_for_its_loaded_parents_only() {
        let members = table_spec("members").unwrap();
        let gate = Parents::new(vec!["members", "households"]);
        // Not yet: households is loaded and not validated.
        let early =
            tokio::time::timeout(std::time::Duration::from_millis(20), gate.wait(members)).await;
        assert!(early.is_err());
        gate.done.send_modify(|d| {
            d.insert("households");
        });
        gate.wait(members).await.unwrap();
        // Without households in the load, members waits for nothing.
        Parents::new(vec!["members"]).wait(members).await.unwrap();
    }
}
