//! The duplicate-key and reference checks as joins (DESIGN §2.4): each
//! adds flag columns to the checked rows — `__dup`/`__dup_n` for a key
//! shared by several rows, `__ref<i>` (and the columns a reference hands
//! over, [`crate::links`]) for a reference to no accepted row — and the
//! [`Check`]s that read them.

use super::checks::{key_is_unique, q, qualify, references_for, Check};
use crate::schema::{TableSpec, ROW_COLUMN};

/// The columns of the typed rows the duplicate-key and reference joins
/// read: `__row`, the key (when it must be unique) and the columns each
/// reference compares, quoted.
pub(super) fn join_columns(spec: &TableSpec) -> Vec<String> {
    let mut columns = vec![ROW_COLUMN.to_string()];
    if key_is_unique(spec) {
        columns.extend(spec.key.iter().map(|k| k.to_string()));
    }
    for r in references_for(spec) {
        columns.extend(r.columns().map(str::to_string));
    }
    let mut unique: Vec<String> = Vec::new();
    for c in columns {
        if !unique.contains(&c) {
            unique.push(c);
        }
    }
    unique.iter().map(|c| q(c)).collect()
}

/// The flag of a key shared by several rows, and how many share it.
pub(super) const DUP: &str = "__dup";
pub(super) const DUP_N: &str = "__dup_n";

/// The flag of reference `i` (a present key no target row has).
pub(super) fn reference_flag(i: usize) -> String {
    format!("__ref{i}")
}

/// The duplicate-key and reference joins of a table.
pub(super) struct Joins {
    /// The checked rows (`rows`) with each join's flag columns added.
    pub sql: String,
    /// The checks reading the flags: duplicate keys first, then each
    /// reference.
    pub checks: Vec<Check>,
    /// The columns the joins add, in order.
    pub flags: Vec<String>,
}

impl Joins {
    /// `__row` and the flag columns of the joined rows.
    pub fn flags_sql(&self) -> String {
        let flags: Vec<String> = self.flags.iter().map(|f| q(f)).collect();
        format!(
            "SELECT {}, {} FROM ({})",
            q(ROW_COLUMN),
            flags.join(", "),
            self.sql
        )
    }
}

/// The duplicate-key and reference joins over `rows` (SQL of the checked
/// rows, with at least [`join_columns`]); duplicates are counted over the
/// whole typed table `typed_name`, unless its keys are `distinct` already
/// (proven by `order::keys_ascending` or its streamed form): then `__dup`
/// is false on every row and no aggregate runs.
///
/// Each join puts the key set on the left (the hash table) and the
/// checked rows on the right, streamed: a large table is never held in a
/// hash table, whatever statistics its source has (a streamed Parquet
/// source has none). The duplicate-key join is the outermost, so its
/// aggregate (a pass over every row, spilling under the memory limit)
/// runs and frees its memory before the references' key sets (at
/// national scale, 26 M households) are built; the other way round, the
/// aggregate ran beside the household hash table.
pub(super) fn joins(spec: &TableSpec, typed_name: &str, rows: String, distinct: bool) -> Joins {
    let mut sql = rows;
    let mut flags = Vec::new();
    for (i, r) in references_for(spec).into_iter().enumerate() {
        let alias = format!("ref{i}");
        let flag = reference_flag(i);
        let on =
            r.on.iter()
                .map(|(expr, target)| format!("{} = {alias}.{}", qualify(expr), q(target)))
                .collect::<Vec<_>>()
                .join(" AND ");
        let present =
            r.on.iter()
                .map(|(expr, _)| format!("{} IS NOT NULL", qualify(expr)))
                .collect::<Vec<_>>()
                .join(" AND ");
        let carried: String = r
            .carry
            .iter()
            .map(|c| format!(", {alias}.{}", q(c)))
            .collect();
        sql = format!(
            "SELECT t.*, ({present} AND any_true({}) AND {alias}.{} IS NULL) AS {flag}{carried} \
             FROM ({}) {alias} RIGHT JOIN ({sql}) t ON {on}",
            r.only_if,
            q(r.on[0].1),
            r.target
        );
        flags.push(flag);
        flags.extend(r.carry.iter().map(|c| c.to_string()));
    }
    if key_is_unique(spec) {
        let keys = spec.key.iter().map(|k| q(k)).collect::<Vec<_>>().join(", ");
        let on = spec
            .key
            .iter()
            .map(|k| format!("t.{c} = dup.{c}", c = q(k)))
            .collect::<Vec<_>>()
            .join(" AND ");
        sql = if distinct {
            format!("SELECT t.*, false AS {DUP}, CAST(NULL AS BIGINT) AS {DUP_N} FROM ({sql}) t")
        } else {
            format!(
                "SELECT t.*, (dup.__n IS NOT NULL) AS {DUP}, dup.__n AS {DUP_N} \
                 FROM (SELECT {keys}, count(*) AS __n FROM {typed_name} GROUP BY {keys} HAVING count(*) > 1) dup \
                 RIGHT JOIN ({sql}) t ON {on}"
            )
        };
        flags.extend([DUP.to_string(), DUP_N.to_string()]);
    }
    Joins {
        sql,
        checks: join_checks(spec),
        flags,
    }
}

/// The checks reading the flags of [`joins`] (the same whether the flags
/// are joined or merged): duplicate keys first, then each reference.
pub(super) fn join_checks(spec: &TableSpec) -> Vec<Check> {
    let mut checks = Vec::new();
    if key_is_unique(spec) {
        checks.push(Check::new(
            spec.key.last().copied().unwrap_or_default(),
            DUP,
            format!(
                "concat('duplicate key (', CAST({DUP_N} AS VARCHAR), ' rows share {})')",
                spec.key.join(", ")
            ),
        ));
    }
    for (i, r) in references_for(spec).into_iter().enumerate() {
        checks.push(Check::new(r.column, reference_flag(i), r.problem));
    }
    checks
}
