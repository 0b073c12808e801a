//! Typing and validation of raw tables: nothing is lost silently.
//!
//! Every table goes through the same three DataFusion plans:
//!
//! 1. **typed** — each declared column cast to its declared type
//!    (`try_cast`, empty text = null), absent optional columns added as
//!    nulls, extra columns kept; a value that cannot be read is remembered
//!    in a `__cast_<column>` column.
//! 2. **flagged** — every row check of DESIGN §2.4 as a SQL predicate, plus
//!    duplicate keys (an aggregate joined back, so *every* row sharing the
//!    key is flagged; skipped when the keys are strictly ascending in
//!    source order, `order::keys_ascending`) and references to other
//!    tables (anti-joins against the already accepted parent tables,
//!    `joins.rs`; a merge instead when both sides are in key order,
//!    `merge.rs`; streamed into a store, a merge of each partition with
//!    the household file, `streamed/`); `__bad` is their
//!    disjunction. In memory the typed rows are collected once and the
//!    joins run over `__row` and the columns they compare, their flags set
//!    beside the typed batches (`order::beside`): a join copies every
//!    column of the rows it streams.
//! 3. **rejects** (one row per fault: `table`, `row`, `key`, `column`,
//!    `problem`) and **accepted** (`NOT __bad`), in source order without a
//!    sort of the table (`order.rs`).
//!
//! Structural faults — a missing required column, a type that cannot be
//! cast at all — fail the load with [`Error::Schema`] naming the column.
//!
//! The checks themselves are listed per table in `checks.rs` (`checks_for`):
//! one line per fault, readable top to bottom. `__bad` is `any_true(check,
//! …)`, one pass over the checks' bitmaps, and region codes are checked by
//! `region_code_valid` and `village_code_valid`, one pass per value.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{Array, Int64Array, RecordBatch};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;

use crate::catalog::one_stream;
use crate::error::{contain_panics, Error, Result};
use crate::io::source::{numbered_parquet, RawRows, RawTable};
use crate::io::store::{self, BAD_COLUMN};
use crate::lines;
use crate::links;
use crate::schema::{self, TableSpec, ROW_COLUMN};
use crate::session;
use crate::table::{Linked, Loaded, StoredFile, Table, TableSummary};

mod checks;
#[cfg(test)]
mod fixtures;
mod joins;
mod merge;
mod order;
mod streamed;
mod turns;
mod waves;

pub(crate) use checks::code_list_columns;

use checks::{bad, checks_for, finite_numbers, key_is_unique, lit, q, txt, typed_projection};
use joins::{join_checks, join_columns, joins};
use order::{
    accepted_rows, bad_rows, beside, in_order, in_row_order, in_runs, keys_ascending,
    keys_ascending_streamed,
};
use streamed::streamed_merge;
use waves::Parents;

/// Where validation puts the validated tables.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Target<'a> {
    /// In memory.
    Memory,
    /// Into the store folder `dir`: `staged`, each table is validated in
    /// memory and its file written from the validated rows (tables side
    /// by side, as in memory); else streamed from the sources into the
    /// file, one table at a time (national scale).
    Store { dir: &'a Path, staged: bool },
}

/// Validate raw tables (in load order) into accepted tables, the rejects
/// ledger and the load summary; into a store ([`Target::Store`]) the
/// accepted tables are kept there ([`crate::io::store`]). `memory_limit`
/// bounds the validation plans (duplicate keys and references spill past
/// it).
pub(crate) async fn validate(
    raws: Vec<RawTable>,
    into: Target<'_>,
    memory_limit: Option<usize>,
) -> Result<Loaded> {
    let ctx = session::context(in_order(session::base_config()), memory_limit)?;

    // A table's references read its parents, validated before it
    // (`waves.rs`). In memory (and staged into a store) every table starts
    // at once and waits for its parents only before its references, so
    // both cores stay busy. Streamed into a store the tables run one at a
    // time, wave by wave: at national scale each holds the household key
    // set in a hash table. Results are reported in load order either way.
    let side_by_side = matches!(into, Target::Memory | Target::Store { staged: true, .. });
    let specs: Vec<&'static TableSpec> = raws.iter().map(|r| r.spec).collect();
    let order: Vec<&'static str> = specs.iter().map(|s| s.name).collect();
    let waves = waves::waves(&specs)?;
    let gate = Parents::new(order.clone());
    let validated = |raw: RawTable| {
        let (ctx, gate) = (&ctx, &gate);
        async move {
            let (name, v) = validate_named(ctx, raw, into, gate).await?;
            gate.validated(ctx, name, &v.0)?;
            Ok::<_, Error>((name, v))
        }
    };
    let mut done: BTreeMap<&'static str, Validated> = BTreeMap::new();
    if side_by_side {
        let all = futures::future::try_join_all(raws.into_iter().map(validated)).await?;
        done.extend(all);
    } else {
        let mut raws: Vec<Option<RawTable>> = raws.into_iter().map(Some).collect();
        for i in waves.into_iter().flatten() {
            if let Some(raw) = raws[i].take() {
                let (name, v) = validated(raw).await?;
                done.insert(name, v);
            }
        }
    }
    let mut tables = BTreeMap::new();
    let mut rejects = Vec::new();
    let mut summary = Vec::new();
    for name in order {
        if let Some((table, rej, sum)) = done.remove(name) {
            tables.insert(sum.table.clone(), table);
            rejects.extend(rej);
            summary.push(sum);
        }
    }
    if !tables.contains_key("poverty_lines") {
        let builtin = lines::builtin_table()?;
        summary.push(TableSummary {
            table: "poverty_lines".into(),
            source: "built-in".into(),
            rows: builtin.num_rows(),
            accepted: builtin.num_rows(),
            rejected: 0,
            notes: Vec::new(),
        });
        tables.insert("poverty_lines".into(), builtin);
    }
    let rejects = rejects
        .into_iter()
        .filter(|b: &RecordBatch| b.num_rows() > 0)
        .collect();
    Ok(Loaded {
        tables,
        rejects,
        summary,
    })
}

/// Where a table's flagged rows (every row with its `__bad` flag) went.
enum Flagged {
    /// Collected, in source order.
    InMemory {
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
    },
    /// Written to the store file.
    Stored(StoredFile),
}

/// A validated table: accepted rows, its rejects, its summary line.
type Validated = (Table, Vec<RecordBatch>, TableSummary);

/// [`validate_table`] with a panic in a reader contained and an error
/// naming the table and its source; the result with the table's name.
async fn validate_named(
    ctx: &SessionContext,
    raw: RawTable,
    into: Target<'_>,
    parents: &Parents,
) -> Result<(&'static str, Validated)> {
    let (name, source) = (raw.spec.name, raw.source.clone());
    let validated = contain_panics(validate_table(ctx, raw, into, parents))
        .await
        .map_err(|e| e.in_table(name, &source))?;
    Ok((name, validated))
}

async fn validate_table(
    ctx: &SessionContext,
    raw: RawTable,
    into: Target<'_>,
    parents: &Parents,
) -> Result<Validated> {
    let spec = raw.spec;
    let name = spec.name;
    let raw_name = format!("__raw_{name}");
    let typed_name = format!("__typed_{name}");
    let flagged_name = format!("__flagged_{name}");
    let partitions = ctx.state().config().target_partitions();
    let mut notes = raw.notes;
    let (row_sql, file_sql) = part_columns(&raw.parts);
    // A Parquet source is streamed; a store file may copy its chunks.
    let mut chunks = None;
    let (raw_provider, raw_schema, rows): (Arc<dyn TableProvider>, SchemaRef, usize) = match raw
        .rows
    {
        RawRows::Memory { batches, schema } => {
            let rows = batches.iter().map(|b| b.num_rows()).sum();
            let table = in_runs(schema.clone(), batches, rows, partitions)?;
            (table, schema, rows)
        }
        RawRows::Parquet(path) => {
            let batch_size = ctx.state().config().batch_size();
            let coded = code_list_columns(spec);
            let numbered = numbered_parquet(name, &path, partitions, batch_size, &raw.map, &coded)?;
            notes.extend(numbered.notes);
            chunks = Some(numbered.chunks);
            (numbered.provider, numbered.schema, numbered.rows)
        }
    };
    ctx.register_table(raw_name.as_str(), raw_provider)?;

    // 1. typed
    let typed = typed_projection(spec, &raw.source, &raw_schema, &raw_name, &raw.map)?;
    let copying = chunks.and_then(|c| turns::Copying::of(c, &raw_schema, &typed.kept));
    let (typed_sql, mut checks, output_columns) = (typed.sql, typed.checks, typed.columns);
    checks.extend(finite_numbers(spec));
    checks.extend(checks_for(spec));
    let typed_df = ctx.sql(&typed_sql).await?;

    // 2. flagged: row checks, duplicate keys, references. In memory (and
    // staged into a store) the typed rows are collected once, in source
    // order, and the joins read only `__row` and the columns they compare:
    // a join copies every column of the rows it streams, so the flags are
    // found over a narrow projection and set beside the typed batches
    // (`order::beside`). Streamed into a store, one plan does it all.
    let narrow = matches!(into, Target::Memory | Target::Store { staged: true, .. });
    // Streamed through a merge or a watch of the key: its watch, and
    // `__bad` for the join plan if it does not hold.
    let mut streamed: Option<(Arc<streamed::Watch>, String)> = None;
    let (flagged_sql, joined_name) = if narrow {
        let (schema, typed) = in_row_order(ctx, typed_df).await?;
        ctx.register_table(
            typed_name.as_str(),
            in_runs(schema.clone(), typed.clone(), rows, partitions)?,
        )?;
        let columns = join_columns(spec);
        let rows_sql = format!("SELECT {} FROM {typed_name}", columns.join(", "));
        let distinct = key_is_unique(spec) && keys_ascending(&typed, spec.key)?;
        // The references read the parent tables.
        parents.wait(spec).await?;
        let joins = joins(spec, &typed_name, rows_sql, distinct);
        let flags_sql = joins.flags_sql();
        checks.extend(joins.checks);
        let joined = if joins.flags.is_empty() {
            None
        } else {
            // Keys in order on both sides: merged, not joined.
            let flags_df = ctx.sql(&flags_sql).await?;
            let planned: SchemaRef = flags_df.schema().inner().clone();
            let (flags_schema, flags) =
                match merge::merged_flags(ctx, spec, &typed, distinct, &planned).await? {
                    Some(flags) => (planned, flags),
                    None => in_row_order(ctx, flags_df).await?,
                };
            let (joined_schema, joined) = beside(&schema, typed, &flags_schema, &flags)?;
            let joined_name = format!("__joined_{name}");
            ctx.register_table(
                joined_name.as_str(),
                in_runs(joined_schema, joined, rows, partitions)?,
            )?;
            Some(joined_name)
        };
        let source = joined.as_deref().unwrap_or(&typed_name);
        (
            format!("SELECT *, ({}) AS {BAD_COLUMN} FROM {source}", bad(&checks)),
            joined,
        )
    } else {
        ctx.register_table(typed_name.as_str(), typed_df.into_view())?;
        parents.wait(spec).await?;
        // The duplicate-key and reference checks read the same flags
        // whether they are joined or merged.
        checks.extend(join_checks(spec));
        let bad = bad(&checks);
        // Household references by a merge when the keys are in order
        // (`streamed/`); the join plan when they are not.
        // Else the join plan, with the key watched as the rows pass when
        // it must be unique (`streamed/watch.rs`).
        if let Some(merged) = streamed_merge(ctx, spec, &typed_name).await? {
            let merged_name = format!("__merged_{name}");
            ctx.register_table(merged_name.as_str(), merged.provider)?;
            let sql = format!("SELECT *, ({bad}) AS {BAD_COLUMN} FROM {merged_name}");
            streamed = Some((merged.watch, bad));
            (sql, Some(merged_name))
        } else if let Some((rows, watch)) = streamed::watched(ctx, spec, &typed_name).await? {
            let watched_name = format!("__watched_{name}");
            ctx.register_table(watched_name.as_str(), rows)?;
            let sql = flagged_sql(spec, &watched_name, &bad, true);
            streamed = Some((watch, bad));
            (sql, Some(watched_name))
        } else {
            (joined_flagged(ctx, spec, &typed_name, &bad).await?, None)
        }
    };
    let flagged_df = as_text(ctx.sql(&flagged_sql).await?)?;
    let (rejected, flagged) = match into {
        Target::Memory => {
            let (schema, batches) = in_row_order(ctx, flagged_df).await?;
            let rejected = bad_rows(&batches);
            ctx.register_table(
                flagged_name.as_str(),
                Arc::new(MemTable::try_new(schema.clone(), vec![batches.clone()])?),
            )?;
            (rejected, Flagged::InMemory { schema, batches })
        }
        Target::Store { dir, staged } => {
            let path = store::stored_path(dir, name)?;
            // Staged, the flagged rows are counted in memory; streamed, the
            // written file is counted.
            let (file_schema, counted): (SchemaRef, Option<usize>) = if staged {
                // Validated on both cores in memory, then written: the
                // plan feeding the writer no longer waits for the checks.
                // Handed over as one stream in `__row` order, so the file
                // keeps the rows' order as a streamed one does, with no
                // merge of partitions (the writer encodes the columns in
                // parallel).
                let (schema, batches) = in_row_order(ctx, flagged_df).await?;
                let rejected = bad_rows(&batches);
                let validated = one_stream(schema.clone(), batches)?;
                store::write_flagged(ctx.read_table(validated)?, &path, true).await?;
                (schema, Some(rejected))
            } else {
                let mut schema = flagged_df.schema().inner().clone();
                let written = turns::write_in_turn(flagged_df, &path, copying.as_ref()).await;
                let redo = match (&written, &streamed) {
                    (Err(_), Some((watch, _))) => watch.gave_up(),
                    (Ok(()), Some((watch, _))) => !watch.held()?,
                    (_, None) => false,
                };
                match streamed {
                    // Keys out of order after all (the merge stopped, or
                    // the partitions do not follow one another): written
                    // again by the join plan.
                    Some((_, bad)) if redo => {
                        turns::discard(&path)?;
                        let sql = joined_flagged(ctx, spec, &typed_name, &bad).await?;
                        let joined = as_text(ctx.sql(&sql).await?)?;
                        schema = joined.schema().inner().clone();
                        turns::write_in_turn(joined, &path, copying.as_ref()).await?;
                    }
                    _ => written?,
                }
                (schema, None)
            };
            let mut file = StoredFile {
                path,
                file_schema,
                rows: 0,
            };
            ctx.register_table(flagged_name.as_str(), store::flagged_provider(&file)?)?;
            let rejected = match counted {
                Some(rejected) => rejected,
                None => {
                    count(
                        ctx,
                        &format!("SELECT count(*) FROM {flagged_name} WHERE {BAD_COLUMN}"),
                    )
                    .await?
                }
            };
            file.rows = rows - rejected;
            (rejected, Flagged::Stored(file))
        }
    };

    // 3. rejects and accepted
    let mut reject_batches = Vec::new();
    if rejected > 0 {
        let bad_name = format!("__bad_{name}");
        let (schema, bad_rows) = collect_table(
            ctx.sql(&format!("SELECT * FROM {flagged_name} WHERE {BAD_COLUMN}"))
                .await?,
        )
        .await?;
        ctx.register_table(
            bad_name.as_str(),
            Arc::new(MemTable::try_new(schema, vec![bad_rows])?),
        )?;
        let key = format!(
            "concat_ws('/', {})",
            spec.key
                .iter()
                .map(|k| txt(k))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let parts = checks
            .iter()
            .enumerate()
            .map(|(i, c)| {
                format!(
                    "SELECT {table} AS \"table\", {row} AS \"row\", {key} AS \"key\", {column} AS \"column\", CAST({problem} AS VARCHAR) AS problem, {file} AS \"file\", {at} AS __at, {i} AS __check FROM {bad_name} WHERE {pred}",
                    table = lit(name),
                    row = row_sql,
                    file = file_sql,
                    at = q(ROW_COLUMN),
                    column = lit(&c.column),
                    problem = c.problem,
                    pred = c.predicate
                )
            })
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        // Found first, sorted in a second plan over one partition: a sort
        // over the union itself is pushed into each of its ~25 branches,
        // and every branch's sorter reserves `sort_spill_reservation_bytes`
        // (10 MB) at once — more than a small memory limit holds.
        let found_name = format!("__found_{name}");
        let (found_schema, found) = collect_table(ctx.sql(&parts).await?).await?;
        ctx.register_table(
            found_name.as_str(),
            Arc::new(MemTable::try_new(found_schema, vec![found])?),
        )?;
        let sorted = ctx
            .sql(&format!(
                "SELECT \"table\", \"row\", \"key\", \"column\", problem, \"file\" FROM {found_name} ORDER BY __at, __check"
            ))
            .await?
            .collect()
            .await?;
        reject_batches = conform(sorted, &schema::rejects_schema())?;
        for n in [bad_name, found_name] {
            ctx.deregister_table(n.as_str())?;
        }
    }
    let link_columns = links::columns(name);
    let table = match flagged {
        Flagged::InMemory { schema, batches } => {
            let columns: Vec<&str> = output_columns
                .iter()
                .map(String::as_str)
                .chain(link_columns.iter().copied())
                .collect();
            let (linked_schema, linked) = accepted_rows(&schema, &batches, &columns)?;
            let own: Vec<usize> = (0..output_columns.len()).collect();
            let schema = Arc::new(linked_schema.project(&own)?);
            let batches = linked
                .iter()
                .map(|b| b.project(&own))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let mut table = Table::new(schema, batches);
            if !link_columns.is_empty() {
                table.linked = Some(Linked {
                    schema: linked_schema,
                    batches: linked,
                });
            }
            table
        }
        Flagged::Stored(file) => Table {
            schema: store::accepted_schema(&file.file_schema, &output_columns)?,
            batches: Vec::new(),
            linked: store::stored_linked(&file.file_schema, name, &output_columns)?,
            stored: Some(file),
        },
    };
    for n in [raw_name, typed_name, flagged_name]
        .into_iter()
        .chain(joined_name)
    {
        ctx.deregister_table(n.as_str())?;
    }
    let summary = TableSummary {
        table: name.to_string(),
        source: raw.source,
        rows,
        accepted: rows - rejected,
        rejected,
        notes,
    };
    Ok((table, reject_batches, summary))
}

/// The flagged rows of a streamed table by the join plan: `__bad` (over
/// the checks, [`checks::bad`]) beside the duplicate-key and reference
/// joins over `typed_name`. Keys in order are checked in a pass over the
/// key columns alone first, so the duplicate-key aggregate (a hash table
/// of every key at national scale) runs only when they are not.
async fn joined_flagged(
    ctx: &SessionContext,
    spec: &crate::schema::TableSpec,
    typed_name: &str,
    bad: &str,
) -> Result<String> {
    let distinct = key_is_unique(spec) && {
        let columns: Vec<String> = std::iter::once(ROW_COLUMN)
            .chain(spec.key.iter().copied())
            .map(q)
            .collect();
        let keys_sql = format!("SELECT {} FROM {typed_name}", columns.join(", "));
        keys_ascending_streamed(ctx.sql(&keys_sql).await?, spec.key).await?
    };
    Ok(flagged_sql(spec, typed_name, bad, distinct))
}

/// `__bad` (over the checks) beside the duplicate-key and reference joins
/// over `rows_name`, the key taken as `distinct` or not.
fn flagged_sql(
    spec: &crate::schema::TableSpec,
    rows_name: &str,
    bad: &str,
    distinct: bool,
) -> String {
    let joins = joins(
        spec,
        rows_name,
        format!("SELECT * FROM {rows_name}"),
        distinct,
    );
    format!("SELECT *, ({bad}) AS {BAD_COLUMN} FROM ({})", joins.sql)
}

/// The rejects ledger's `row` and `file` as SQL over `__row`: the row
/// itself and no file for a table read from one file; for a folder of
/// parts, the part's file and the row within it (DESIGN §8).
fn part_columns(parts: &[crate::io::source::Part]) -> (String, String) {
    let at = q(ROW_COLUMN);
    if parts.is_empty() {
        return (at, "CAST(NULL AS VARCHAR)".into());
    }
    let (mut row, mut file) = ("CASE".to_string(), "CASE".to_string());
    for (p, next) in parts
        .iter()
        .zip(parts.iter().skip(1).map(Some).chain([None]))
    {
        let when = match next {
            Some(n) => format!(" WHEN {at} < {}", n.first),
            None => " ELSE".to_string(),
        };
        let then = if next.is_some() { " THEN" } else { "" };
        row.push_str(&format!("{when}{then} {at} - {} + 1", p.first));
        file.push_str(&format!("{when}{then} {}", lit(&p.file)));
    }
    (format!("{row} END"), format!("{file} END"))
}

/// `df` with its dictionaries of text (code-list columns read from
/// Parquet as dictionaries, `checks::code_list_columns`) cast back to
/// utf8, the type of every text column of the validated tables (DESIGN
/// §2); the other columns as they are, in their order — an extra column
/// that came as a dictionary of numbers stays one, as before.
fn as_text(df: datafusion::prelude::DataFrame) -> Result<datafusion::prelude::DataFrame> {
    use datafusion::arrow::datatypes::DataType;
    use datafusion::common::Column;
    use datafusion::logical_expr::{cast, Expr};
    let dictionary =
        |t: &DataType| matches!(t, DataType::Dictionary(_, v) if **v == DataType::Utf8);
    if !df
        .schema()
        .fields()
        .iter()
        .any(|f| dictionary(f.data_type()))
    {
        return Ok(df);
    }
    let columns: Vec<Expr> = df
        .schema()
        .iter()
        .map(|(qualifier, field)| {
            let column = Expr::Column(Column::new(qualifier.cloned(), field.name()));
            if dictionary(field.data_type()) {
                cast(column, DataType::Utf8).alias(field.name())
            } else {
                column
            }
        })
        .collect();
    Ok(df.select(columns)?)
}

/// The single count of a `SELECT count(*) …` query.
async fn count(ctx: &SessionContext, sql: &str) -> Result<usize> {
    let batches = ctx.sql(sql).await?.collect().await?;
    let n = batches
        .first()
        .filter(|b| b.num_rows() == 1 && b.num_columns() == 1)
        .and_then(|b| {
            b.column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .map(|a| a.value(0))
        })
        .ok_or_else(|| Error::InvalidArgument(format!("no count from `{sql}`")))?;
    Ok(usize::try_from(n).unwrap_or(0))
}

/// Collect a DataFrame with a schema that matches its batches exactly
/// (plans may declare a column nullable that the batches do not, or the
/// reverse; MemTable insists they agree).
pub(crate) async fn collect_table(
    df: datafusion::prelude::DataFrame,
) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let plan_schema: SchemaRef = df.schema().inner().clone();
    batch_schema(plan_schema, df.collect().await?)
}

/// `batches` under the schema of the first of them (`plan_schema` when
/// there is none), every batch conformed to it.
pub(crate) fn batch_schema(
    plan_schema: SchemaRef,
    batches: Vec<RecordBatch>,
) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let schema = batches.first().map(|b| b.schema()).unwrap_or(plan_schema);
    let batches = conform(batches, &schema)?;
    Ok((schema, batches))
}

/// Rebuild `batches` under `schema` (same columns; types cast if needed).
pub(crate) fn conform(batches: Vec<RecordBatch>, schema: &SchemaRef) -> Result<Vec<RecordBatch>> {
    batches
        .into_iter()
        .map(|b| {
            if b.schema() == *schema {
                return Ok(b);
            }
            let columns = b
                .columns()
                .iter()
                .zip(schema.fields())
                .map(|(c, f)| {
                    if c.data_type() == f.data_type() {
                        Ok(c.clone())
                    } else {
                        datafusion::arrow::compute::cast(c, f.data_type())
                    }
                })
                .collect::<std::result::Result<Vec<_>, _>>()?;
            Ok(RecordBatch::try_new(schema.clone(), columns)?)
        })
        .collect()
}
