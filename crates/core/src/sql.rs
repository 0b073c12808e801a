//! What user SQL may do (DESIGN §11). [`crate::Engine::sql`] runs read-only
//! queries: DDL (`CREATE`, `DROP`), DML (`INSERT`, `COPY … TO`) and other
//! statements (`SET`, transactions) are refused with a clear error unless
//! the caller opts in with [`SqlOptions::allow_write`]
//! ([`crate::Engine::sql_with`]; CLI `tuopin sql --allow-write`; Python
//! `eng.sql(q, allow_write=True)`). Even then the names tuopin registers
//! (base tables, facts views, `rejects`, internal tables) cannot be
//! created over, replaced, dropped or written to — later results could
//! otherwise silently change.
//!
//! ```
//! use tuopin::SqlOptions;
//! assert!(!SqlOptions::default().allow_write);
//! let writes = SqlOptions { allow_write: true };
//! assert!(writes.allow_write);
//! ```

use std::collections::BTreeSet;

/// An identifier double-quoted for SQL (`"` doubled inside).
///
/// ```
/// assert_eq!(tuopin::sql::quote_identifier("a\"b"), "\"a\"\"b\"");
/// ```
pub fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A string literal single-quoted for SQL (`'` doubled inside).
///
/// ```
/// assert_eq!(tuopin::sql::quote_literal("a'b"), "'a''b'");
/// ```
pub fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::TableReference;
use datafusion::logical_expr::{DdlStatement, LogicalPlan};
use datafusion::prelude::SQLOptions;

use crate::error::{Error, Result};

/// How [`crate::Engine::sql_with`] may run a statement.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SqlOptions {
    /// Allow DDL, DML, `COPY` and other statements (default: refused).
    /// Registered names stay protected whatever this says.
    pub allow_write: bool,
}

/// Check `plan` (of `query`) against `options` and the `protected` names.
pub(crate) fn check(
    query: &str,
    plan: &LogicalPlan,
    options: SqlOptions,
    protected: &BTreeSet<String>,
) -> Result<()> {
    let allow = options.allow_write;
    let sql_options = SQLOptions::new()
        .with_allow_ddl(allow)
        .with_allow_dml(allow)
        .with_allow_statements(allow);
    if let Err(e) = sql_options.verify_plan(plan) {
        return Err(Error::ReadOnly {
            query: short(query),
            message: format!(
                "{} (SQL is read-only; allow writing with Engine::sql_with, \
                 `tuopin sql --allow-write` or eng.sql(..., allow_write=True))",
                e.strip_backtrace()
            ),
        });
    }
    let mut touched = Vec::new();
    plan.apply_with_subqueries(|node| {
        touched.extend(target(node));
        Ok(TreeNodeRecursion::Continue)
    })?;
    for name in touched {
        if protected.contains(name.table()) && name.schema().is_none_or(|s| s == "public") {
            return Err(Error::ReadOnly {
                query: short(query),
                message: format!(
                    "`{}` is registered by tuopin and cannot be created, replaced, dropped or written",
                    name.table()
                ),
            });
        }
    }
    Ok(())
}

/// The table or view a DDL or DML node creates, replaces, drops or writes.
fn target(node: &LogicalPlan) -> Option<TableReference> {
    match node {
        LogicalPlan::Ddl(ddl) => match ddl {
            DdlStatement::CreateExternalTable(c) => Some(c.name.clone()),
            DdlStatement::CreateMemoryTable(c) => Some(c.name.clone()),
            DdlStatement::CreateView(c) => Some(c.name.clone()),
            DdlStatement::DropTable(d) => Some(d.name.clone()),
            DdlStatement::DropView(d) => Some(d.name.clone()),
            _ => None,
        },
        LogicalPlan::Dml(dml) => Some(dml.table_name.clone()),
        _ => None,
    }
}

/// The query as an error names it: its first 80 characters.
fn short(query: &str) -> String {
    let q = query.trim();
    match q.char_indices().nth(80) {
        Some((i, _)) => format!("{}…", &q[..i]),
        None => q.to_string(),
    }
}
