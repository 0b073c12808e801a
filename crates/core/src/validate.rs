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
//!    key is flagged) and references to other tables (anti-joins against the
//!    already accepted parent tables); `__bad` is their disjunction.
//! 3. **rejects** (one row per fault: `table`, `row`, `key`, `column`,
//!    `problem`) and **accepted** (`NOT __bad`).
//!
//! Structural faults — a missing required column, a type that cannot be
//! cast at all — fail the load with [`Error::Schema`] naming the column.
//!
//! The checks themselves are listed per table in `checks_for`: one line
//! per fault, readable top to bottom.

use std::collections::BTreeMap;
use std::sync::Arc;

use std::path::Path;

use datafusion::arrow::array::{Array, BooleanArray, Int64Array, RecordBatch};
use datafusion::arrow::compute::can_cast_types;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;

use crate::codes::{self, valid_code_sql};
use crate::dataset::{
    Dataset, Linked, OpenOptions, RawRows, RawTable, Table, TableSummary, ROW_COLUMN,
};
use crate::error::{Error, Result};
use crate::lines;
use crate::links;
use crate::schema::{self, TableSpec};
use crate::store::{self, StoredFile, BAD_COLUMN};

/// One row check: the column it concerns, a SQL predicate over the typed
/// columns that is true for a faulty row, and a SQL expression giving the
/// problem text.
#[derive(Debug, Clone)]
pub(crate) struct Check {
    pub column: String,
    pub predicate: String,
    pub problem: String,
}

impl Check {
    fn new(column: &str, predicate: impl Into<String>, problem: impl Into<String>) -> Self {
        Check {
            column: column.to_string(),
            predicate: predicate.into(),
            problem: problem.into(),
        }
    }
}

/// A reference from columns of this table to a key of an accepted table.
#[derive(Debug, Clone)]
struct Reference {
    column: &'static str,
    /// (expression over this table, column of the target) pairs.
    on: Vec<(String, &'static str)>,
    /// SQL of the target key set.
    target: String,
    /// Only rows meeting this predicate are checked (others are reported by
    /// a more precise check, e.g. a malformed code).
    only_if: String,
    problem: String,
    /// Columns of the target handed over to the checked row (its link
    /// columns, [`crate::links`]); null when the reference fails.
    carry: &'static [&'static str],
}

/// Double-quote an identifier for SQL.
pub(crate) fn q(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Single-quote a string literal for SQL.
pub(crate) fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn sql_type(t: &DataType) -> &'static str {
    match t {
        DataType::Int32 => "INT",
        DataType::Int64 => "BIGINT",
        DataType::Float64 => "DOUBLE",
        DataType::Boolean => "BOOLEAN",
        DataType::Date32 => "DATE",
        _ => "VARCHAR",
    }
}

fn type_name(t: &DataType) -> &'static str {
    match t {
        DataType::Int32 => "int32",
        DataType::Int64 => "int64",
        DataType::Float64 => "float64",
        DataType::Boolean => "bool",
        DataType::Date32 => "date",
        _ => "utf8",
    }
}

fn is_text(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
        || matches!(t, DataType::Dictionary(_, v) if is_text(v))
}

fn txt(column: &str) -> String {
    format!("CAST({} AS VARCHAR)", q(column))
}

fn one_of(column: &str, values: &[&str]) -> Check {
    let list = values.iter().map(|v| lit(v)).collect::<Vec<_>>().join(", ");
    Check::new(
        column,
        format!("{c} IS NOT NULL AND {c} NOT IN ({list})", c = q(column)),
        format!(
            "concat('unknown value ''', {c}, ''' (expected {})')",
            values.join(", "),
            c = q(column)
        ),
    )
}

fn not_negative(column: &str) -> Check {
    Check::new(
        column,
        format!("{} < 0", q(column)),
        format!("concat('negative value ', {})", txt(column)),
    )
}

/// NaN or ±infinity in a floating-point column (a value no metric can
/// use; it would otherwise poison every sum it enters).
fn not_finite(column: &str) -> Check {
    Check::new(
        column,
        format!(
            "(isnan({c}) OR abs({c}) = CAST('inf' AS DOUBLE))",
            c = q(column)
        ),
        format!("concat('not a finite number: ', {})", txt(column)),
    )
}

/// [`not_finite`] for every floating-point column of the table.
fn finite_numbers(spec: &TableSpec) -> Vec<Check> {
    spec.schema()
        .fields()
        .iter()
        .filter(|f| matches!(f.data_type(), DataType::Float64 | DataType::Float32))
        .map(|f| not_finite(f.name()))
        .collect()
}

fn malformed_code(column: &str) -> Check {
    Check::new(
        column,
        format!(
            "{c} IS NOT NULL AND NOT {}",
            valid_code_sql(&q(column)),
            c = q(column)
        ),
        format!("concat('malformed region code ''', {}, '''')", q(column)),
    )
}

fn not_village_code(column: &str) -> Check {
    Check::new(
        column,
        format!(
            "{c} IS NOT NULL AND {} AND substr({c}, 10, 3) = '000'",
            valid_code_sql(&q(column)),
            c = q(column)
        ),
        format!(
            "concat('region code ''', {}, ''' is not a village code')",
            q(column)
        ),
    )
}

fn village_code_sql(column: &str) -> String {
    format!(
        "({} AND substr({column}, 10, 3) <> '000')",
        valid_code_sql(column)
    )
}

const VILLAGES: &str =
    "SELECT DISTINCT code AS __k FROM regions WHERE substr(code, 10, 3) <> '000'";

/// The row checks of `spec` (DESIGN §2.4), besides missing values, cast
/// failures, duplicate keys and references, which are derived from the
/// table spec.
pub(crate) fn checks_for(spec: &TableSpec) -> Vec<Check> {
    use schema::*;
    match spec.name {
        "regions" => vec![
            malformed_code("code"),
            not_negative("rural_population"),
            one_of("poor_county", POOR_COUNTY),
        ],
        "households" => vec![
            malformed_code("village_code"),
            not_village_code("village_code"),
            Check::new(
                "size",
                "size < 1",
                "concat('size ', CAST(size AS VARCHAR), ' is below 1')",
            ),
            one_of("category", CATEGORIES),
            one_of("status", STATUSES),
            Check::new(
                "exit_year",
                "status = 'exited' AND exit_year IS NULL",
                "'exit_year missing for an exited household'",
            ),
            one_of("primary_cause", CAUSES),
            not_negative("wage_income"),
            not_negative("business_income"),
            not_negative("property_income"),
            not_negative("transfer_income"),
            not_negative("business_expense"),
            not_negative("dropouts"),
            not_negative("medical_enrolled"),
            Check::new(
                "medical_enrolled",
                "medical_enrolled > size",
                "concat('medical_enrolled ', CAST(medical_enrolled AS VARCHAR), ' exceeds size ', CAST(size AS VARCHAR))",
            ),
            not_negative("pension_eligible"),
            Check::new(
                "pension_eligible",
                "pension_eligible > size",
                "concat('pension_eligible ', CAST(pension_eligible AS VARCHAR), ' exceeds size ', CAST(size AS VARCHAR))",
            ),
            not_negative("pension_enrolled"),
            Check::new(
                "pension_enrolled",
                "pension_enrolled > pension_eligible",
                "concat('pension_enrolled ', CAST(pension_enrolled AS VARCHAR), ' exceeds pension_eligible ', CAST(pension_eligible AS VARCHAR))",
            ),
        ],
        "members" => vec![
            one_of("relation", RELATIONS),
            one_of("sex", SEXES),
            Check::new(
                "birth_year",
                "birth_year > year OR birth_year < year - 130",
                "concat('implausible birth_year ', CAST(birth_year AS VARCHAR))",
            ),
            Check::new(
                "id_number",
                "id_number IS NOT NULL AND NOT id_number_valid(id_number)",
                "'malformed ID number (length, digits or GB 11643 check digit)'",
            ),
            one_of("health", HEALTH),
            one_of("labor", LABOR),
            Check::new(
                "migrant_months",
                "migrant_months < 0 OR migrant_months > 12",
                "concat('migrant_months ', CAST(migrant_months AS VARCHAR), ' outside 0..12')",
            ),
        ],
        "poverty_lines" => vec![
            Check::new(
                "poverty_line",
                "poverty_line <= 0",
                "concat('poverty_line ', CAST(poverty_line AS VARCHAR), ' is not positive')",
            ),
            Check::new(
                "monitoring_line",
                "monitoring_line < poverty_line",
                "'monitoring_line is below poverty_line'",
            ),
        ],
        "assistance" => vec![
            one_of("helper_type", HELPER_TYPES),
            one_of("measure", MEASURES),
        ],
        "funds" => vec![
            malformed_code("region_code"),
            one_of("source", FUND_SOURCES),
            one_of("sector", SECTORS),
            not_negative("allocated"),
            not_negative("disbursed"),
            not_negative("households_benefited"),
        ],
        "assessments" => vec![
            malformed_code("village_code"),
            not_village_code("village_code"),
            one_of("sample", SAMPLES),
            one_of("finding", FINDINGS),
        ],
        _ => vec![],
    }
}

/// References to already accepted tables.
fn references_for(spec: &TableSpec) -> Vec<Reference> {
    // Accepted households have unique keys, so each row meets at most one
    // and takes over its link columns.
    let household = || {
        Reference {
        column: "household_id",
        on: vec![("household_id".into(), "household_id"), ("year".into(), "year")],
        target: links::households_target(spec.name),
        only_if: "true".into(),
        problem: "concat('unknown household ', household_id, ' in ', CAST(year AS VARCHAR), ' (not an accepted household of that year)')".into(),
        carry: links::columns(spec.name),
    }
    };
    match spec.name {
        "regions" => vec![Reference {
            column: "code",
            on: vec![("region_parent(code)".into(), "__k")],
            target: "SELECT DISTINCT code AS __k FROM __typed_regions".into(),
            only_if: valid_code_sql("t.code"),
            problem: "concat('parent region ', region_parent(code), ' not in regions')".into(),
            carry: &[],
        }],
        "households" => vec![Reference {
            column: "village_code",
            on: vec![("village_code".into(), "__k")],
            target: VILLAGES.into(),
            only_if: village_code_sql("t.village_code"),
            problem: "concat('unknown village ', village_code)".into(),
            carry: &[],
        }],
        "members" | "assistance" => vec![household()],
        "funds" => vec![Reference {
            column: "region_code",
            on: vec![("region_code".into(), "__k")],
            target: "SELECT DISTINCT code AS __k FROM regions".into(),
            only_if: valid_code_sql("t.region_code"),
            problem: "concat('unknown region ', region_code)".into(),
            carry: &[],
        }],
        "assessments" => vec![Reference {
            column: "village_code",
            on: vec![("village_code".into(), "__k")],
            target: VILLAGES.into(),
            only_if: village_code_sql("t.village_code"),
            problem: "concat('unknown village ', village_code)".into(),
            carry: &[],
        }],
        _ => vec![],
    }
}

/// Whether duplicate keys are a fault for this table.
fn key_is_unique(spec: &TableSpec) -> bool {
    !matches!(spec.name, "assistance" | "assessments")
}

/// Validate raw tables (in load order) into a [`Dataset`]; with a store
/// folder the accepted tables are kept there ([`crate::store`]).
pub(crate) async fn validate(raws: Vec<RawTable>, options: &OpenOptions) -> Result<Dataset> {
    let ctx = SessionContext::new_with_config_rt(
        crate::engine::base_config(),
        crate::engine::runtime_env(options.memory_limit)?,
    );
    let store = options.store.as_deref();
    ctx.register_udf(codes::id_number_valid_udf());
    ctx.register_udf(codes::region_parent_udf());

    let mut tables = BTreeMap::new();
    let mut rejects = Vec::new();
    let mut summary = Vec::new();
    for raw in raws {
        let (table, rej, sum) = validate_table(&ctx, raw, store).await?;
        ctx.register_table(sum.table.as_str(), provider(&ctx, &table, 1)?)?;
        if let Some(linked) = linked_provider(&ctx, &table, 1)? {
            ctx.register_table(links::linked_name(&sum.table), linked)?;
        }
        tables.insert(sum.table.clone(), table);
        rejects.extend(rej);
        summary.push(sum);
    }
    if !tables.contains_key("poverty_lines") {
        let builtin = lines::builtin_table()?;
        summary.push(TableSummary {
            table: "poverty_lines".into(),
            source: "built-in".into(),
            rows: builtin.num_rows(),
            accepted: builtin.num_rows(),
            rejected: 0,
        });
        tables.insert("poverty_lines".into(), builtin);
    }
    let rejects = rejects
        .into_iter()
        .filter(|b: &RecordBatch| b.num_rows() > 0)
        .collect();
    Ok(Dataset {
        tables,
        rejects,
        summary,
    })
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

async fn validate_table(
    ctx: &SessionContext,
    raw: RawTable,
    store: Option<&Path>,
) -> Result<(Table, Vec<RecordBatch>, TableSummary)> {
    let spec = raw.spec;
    let name = spec.name;
    let raw_name = format!("__raw_{name}");
    let typed_name = format!("__typed_{name}");
    let flagged_name = format!("__flagged_{name}");
    let partitions = ctx.state().config().target_partitions();
    let (raw_provider, raw_schema, rows): (Arc<dyn TableProvider>, SchemaRef, usize) =
        match raw.rows {
            RawRows::Memory { batches, schema } => {
                let rows = batches.iter().map(|b| b.num_rows()).sum();
                let table = MemTable::try_new(schema.clone(), vec![batches])?;
                (Arc::new(table), schema, rows)
            }
            RawRows::Parquet(path) => {
                let batch_size = ctx.state().config().batch_size();
                store::numbered_parquet(name, &path, partitions, batch_size)?
            }
        };
    ctx.register_table(raw_name.as_str(), raw_provider)?;

    // 1. typed
    let (typed_sql, mut checks, output_columns) =
        typed_projection(spec, &raw.source, &raw_schema, &raw_name)?;
    ctx.register_table(typed_name.as_str(), ctx.sql(&typed_sql).await?.into_view())?;

    // 2. flagged: row checks, duplicate keys, references.
    checks.extend(finite_numbers(spec));
    checks.extend(checks_for(spec));
    // Each join puts the key set on the left (the hash table) and the
    // checked rows on the right, streamed: a large table is never held in a
    // hash table, whatever statistics its source has (a streamed Parquet
    // source has none). The duplicate-key join is the outermost, so its
    // aggregate (a pass over every row, spilling under the memory limit)
    // runs and frees its memory before the references' key sets (at
    // national scale, 26 M households) are built; the other way round,
    // the aggregate ran beside the household hash table.
    let mut rows_sql = format!("SELECT * FROM {typed_name}");
    let mut reference_checks = Vec::new();
    for (i, r) in references_for(spec).into_iter().enumerate() {
        let alias = format!("ref{i}");
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
        rows_sql = format!(
            "SELECT t.*, ({present} AND coalesce({}, false) AND {alias}.{} IS NULL) AS __ref{i}{carried} \
             FROM ({}) {alias} RIGHT JOIN ({rows_sql}) t ON {on}",
            r.only_if,
            q(r.on[0].1),
            r.target
        );
        reference_checks.push(Check::new(r.column, format!("__ref{i}"), r.problem));
    }
    if key_is_unique(spec) {
        let keys = spec.key.iter().map(|k| q(k)).collect::<Vec<_>>().join(", ");
        let on = spec
            .key
            .iter()
            .map(|k| format!("t.{c} = dup.{c}", c = q(k)))
            .collect::<Vec<_>>()
            .join(" AND ");
        rows_sql = format!(
            "SELECT t.*, (dup.__n IS NOT NULL) AS __dup, dup.__n AS __dup_n \
             FROM (SELECT {keys}, count(*) AS __n FROM {typed_name} GROUP BY {keys} HAVING count(*) > 1) dup \
             RIGHT JOIN ({rows_sql}) t ON {on}"
        );
        checks.push(Check::new(
            spec.key.last().copied().unwrap_or_default(),
            "__dup",
            format!(
                "concat('duplicate key (', CAST(__dup_n AS VARCHAR), ' rows share {})')",
                spec.key.join(", ")
            ),
        ));
    }
    checks.extend(reference_checks);
    let bad = checks
        .iter()
        .map(|c| format!("coalesce(({}), false)", c.predicate))
        .collect::<Vec<_>>()
        .join(" OR ");
    let flagged_sql = format!("SELECT *, ({bad}) AS {BAD_COLUMN} FROM ({rows_sql})");
    let flagged_df = ctx.sql(&flagged_sql).await?;
    let mut stored = None;
    let rejected = match store {
        None => {
            let (flagged_schema, flagged) = collect_table(flagged_df).await?;
            let rejected = flagged
                .iter()
                .map(|b| {
                    b.column_by_name(BAD_COLUMN)
                        .and_then(|c| c.as_any().downcast_ref::<BooleanArray>())
                        .map(|a| a.true_count())
                        .unwrap_or(0)
                })
                .sum();
            ctx.register_table(
                flagged_name.as_str(),
                Arc::new(MemTable::try_new(flagged_schema, vec![flagged])?),
            )?;
            rejected
        }
        Some(dir) => {
            let file_schema: SchemaRef = flagged_df.schema().inner().clone();
            let path = store::stored_path(dir, name)?;
            store::write_flagged(flagged_df, &path).await?;
            let mut file = StoredFile {
                path,
                file_schema,
                rows: 0,
            };
            ctx.register_table(flagged_name.as_str(), store::flagged_provider(&file)?)?;
            let rejected = count(
                ctx,
                &format!("SELECT count(*) FROM {flagged_name} WHERE {BAD_COLUMN}"),
            )
            .await?;
            file.rows = rows - rejected;
            stored = Some(file);
            rejected
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
                    "SELECT {table} AS \"table\", {row} AS \"row\", {key} AS \"key\", {column} AS \"column\", CAST({problem} AS VARCHAR) AS problem, {i} AS __check FROM {bad_name} WHERE {pred}",
                    table = lit(name),
                    row = q(ROW_COLUMN),
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
                "SELECT \"table\", \"row\", \"key\", \"column\", problem FROM {found_name} ORDER BY \"row\", __check"
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
    let table = match stored {
        None => {
            let select = output_columns
                .iter()
                .map(String::as_str)
                .chain(link_columns.iter().copied())
                .map(q)
                .collect::<Vec<_>>()
                .join(", ");
            let df = ctx
                .sql(&format!(
                    "SELECT {select} FROM {flagged_name} WHERE NOT {BAD_COLUMN} ORDER BY {}",
                    q(ROW_COLUMN)
                ))
                .await?;
            let (linked_schema, linked) = collect_table(df).await?;
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
        Some(file) => Table {
            schema: store::accepted_schema(&file.file_schema, &output_columns)?,
            batches: Vec::new(),
            linked: store::stored_linked(&file.file_schema, name, &output_columns)?,
            stored: Some(file),
        },
    };
    for n in [raw_name, typed_name, flagged_name] {
        ctx.deregister_table(n.as_str())?;
    }
    let summary = TableSummary {
        table: name.to_string(),
        source: raw.source,
        rows,
        accepted: rows - rejected,
        rejected,
    };
    Ok((table, reject_batches, summary))
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
    let batches = df.collect().await?;
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

/// Prefix bare column references in a join expression with `t.`.
fn qualify(expr: &str) -> String {
    match expr.find('(') {
        Some(open) => {
            let inner = &expr[open + 1..expr.len() - 1];
            format!("{}(t.{})", &expr[..open], q(inner))
        }
        None => format!("t.{}", q(expr)),
    }
}

/// The typing projection of a raw table, the missing-value and cast checks
/// it implies, and the names of the accepted table's columns.
fn typed_projection(
    spec: &TableSpec,
    source: &str,
    raw: &SchemaRef,
    raw_name: &str,
) -> Result<(String, Vec<Check>, Vec<String>)> {
    let mut select = vec![q(ROW_COLUMN)];
    let mut checks = Vec::new();
    let mut output = Vec::new();
    for col in spec.columns {
        let target = &col.data_type;
        let c = q(col.name);
        output.push(col.name.to_string());
        let Ok(field) = raw.field_with_name(col.name) else {
            if col.required {
                return Err(Error::Schema {
                    table: spec.name.into(),
                    source_name: source.into(),
                    column: Some(col.name.into()),
                    message: "required column is missing".into(),
                });
            }
            select.push(format!("CAST(NULL AS {}) AS {c}", sql_type(target)));
            continue;
        };
        let source_type = field.data_type();
        let cast_col = format!("__cast_{}", col.name);
        let (typed, failed) = if source_type == target {
            (c.clone(), None)
        } else if is_text(source_type) {
            let text = format!("nullif(trim(CAST({c} AS VARCHAR)), '')");
            if target == &DataType::Utf8 {
                (format!("nullif(CAST({c} AS VARCHAR), '')"), None)
            } else {
                let typed = format!("try_cast({text} AS {})", sql_type(target));
                let failed =
                    format!("CASE WHEN {text} IS NOT NULL AND {typed} IS NULL THEN {text} END");
                (typed, Some(failed))
            }
        } else if can_cast_types(source_type, target) && !matches!(source_type, DataType::Null) {
            let typed = format!("try_cast({c} AS {})", sql_type(target));
            let failed = format!(
                "CASE WHEN {c} IS NOT NULL AND {typed} IS NULL THEN CAST({c} AS VARCHAR) END"
            );
            (typed, Some(failed))
        } else if matches!(source_type, DataType::Null) {
            (format!("CAST(NULL AS {})", sql_type(target)), None)
        } else {
            return Err(Error::Schema {
                table: spec.name.into(),
                source_name: source.into(),
                column: Some(col.name.into()),
                message: format!(
                    "type {source_type} cannot be cast to the declared {}",
                    type_name(target)
                ),
            });
        };
        select.push(format!("{typed} AS {c}"));
        if let Some(failed) = &failed {
            select.push(format!("{failed} AS {}", q(&cast_col)));
            checks.push(Check::new(
                col.name,
                format!("{} IS NOT NULL", q(&cast_col)),
                format!(
                    "concat('cannot read ''', {}, ''' as {}')",
                    q(&cast_col),
                    type_name(target)
                ),
            ));
        }
        if col.required {
            let not_cast = if failed.is_some() {
                format!(" AND {} IS NULL", q(&cast_col))
            } else {
                String::new()
            };
            checks.push(Check::new(
                col.name,
                format!("{c} IS NULL{not_cast}"),
                "'missing value'",
            ));
        }
    }
    for field in raw.fields() {
        let name = field.name();
        if name == ROW_COLUMN || spec.column(name).is_some() {
            continue;
        }
        select.push(q(name));
        output.push(name.clone());
    }
    let sql = format!("SELECT {} FROM {raw_name}", select.join(", "));
    Ok((sql, checks, output))
}
