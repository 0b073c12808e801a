//! The checks of DESIGN §2.4 as SQL: one [`Check`] per row fault (a
//! predicate true for a faulty row, and the problem text), the references
//! to other accepted tables, and the typing projection that reads every
//! declared column as its declared type. Listed per table in
//! `checks_for`, one line per fault, readable top to bottom.

use datafusion::arrow::compute::can_cast_types;
use datafusion::arrow::datatypes::{DataType, SchemaRef};

use crate::codes::valid_code_sql;
use crate::error::{Error, Result};
use crate::io::exports::ColumnMap;
use crate::links;
use crate::schema::{self, TableSpec, ROW_COLUMN};

/// One row check: the column it concerns, a SQL predicate over the typed
/// columns that is true for a faulty row, and a SQL expression giving the
/// problem text.
#[derive(Debug, Clone)]
pub(crate) struct Check {
    pub column: String,
    pub predicate: String,
    pub problem: String,
    /// A check of the column against a code list ([`one_of`]): such a
    /// column is read from Parquet as a dictionary ([`code_list_columns`]).
    pub code_list: bool,
}

impl Check {
    pub(super) fn new(
        column: &str,
        predicate: impl Into<String>,
        problem: impl Into<String>,
    ) -> Self {
        Check {
            column: column.to_string(),
            predicate: predicate.into(),
            problem: problem.into(),
            code_list: false,
        }
    }
}

/// A reference from columns of this table to a key of an accepted table.
#[derive(Debug, Clone)]
pub(super) struct Reference {
    pub column: &'static str,
    /// (expression over this table, column of the target) pairs.
    pub on: Vec<(String, &'static str)>,
    /// The accepted table the target reads, which must be validated first
    /// (`None`: the table's own rows, e.g. a region's parent).
    pub parent: Option<&'static str>,
    /// SQL of the target key set.
    pub target: String,
    /// Only rows meeting this predicate are checked (others are reported by
    /// a more precise check, e.g. a malformed code).
    pub only_if: String,
    pub problem: String,
    /// Columns of the target handed over to the checked row (its link
    /// columns, [`crate::links`]); null when the reference fails.
    pub carry: &'static [&'static str],
}

impl Reference {
    /// The columns of this table the reference reads: the column of each
    /// `on` expression (`code` of `region_parent(code)`). `only_if` reads
    /// no others (a unit test checks it).
    pub fn columns(&self) -> impl Iterator<Item = &str> + '_ {
        self.on.iter().map(|(expr, _)| bare_column(expr))
    }
}

/// The column an `on` expression reads: `expr` itself, or the argument of
/// a one-argument function call.
fn bare_column(expr: &str) -> &str {
    match (expr.find('('), expr.rfind(')')) {
        (Some(open), Some(close)) if open < close => &expr[open + 1..close],
        _ => expr,
    }
}

pub(crate) use crate::sql::{quote_identifier as q, quote_literal as lit};

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

/// The `export_value` kind of a typed column.
fn form_kind(t: &DataType) -> &'static str {
    match t {
        DataType::Boolean => "bool",
        DataType::Date32 => "date",
        _ => "number",
    }
}

/// `text` (an SQL expression) with each exported label of `labels` read
/// as its value (the label trimmed; other text unchanged).
fn relabelled(text: &str, labels: &[(&str, &str)]) -> String {
    if labels.is_empty() {
        return text.to_string();
    }
    let pairs: String = labels
        .iter()
        .map(|(label, value)| format!(", {}, {}", lit(label), lit(value)))
        .collect();
    format!("relabel({text}{pairs})")
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

pub(super) fn txt(column: &str) -> String {
    format!("CAST({} AS VARCHAR)", q(column))
}

fn one_of(column: &str, values: &[&str]) -> Check {
    let list = values.iter().map(|v| lit(v)).collect::<Vec<_>>().join(", ");
    Check {
        code_list: true,
        ..Check::new(
            column,
            format!("not_in_list({}, {list})", q(column)),
            format!(
                "concat('unknown value ''', {}, ''' (expected {})')",
                txt(column),
                values.join(", ")
            ),
        )
    }
}

/// The columns of `spec` checked against a code list. Validation reads
/// them from Parquet as dictionaries of text, so that blank values,
/// exported labels and the code list are looked at once per distinct
/// value (`functions::text`) rather than once per row; they are text
/// again in the validated table (`validate::as_text`).
pub(crate) fn code_list_columns(spec: &TableSpec) -> Vec<String> {
    checks_for(spec)
        .into_iter()
        .filter(|c| c.code_list)
        .map(|c| c.column)
        .collect()
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
pub(super) fn finite_numbers(spec: &TableSpec) -> Vec<Check> {
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
            "{c} IS NOT NULL AND {} AND NOT {}",
            valid_code_sql(&q(column)),
            village_code_sql(&q(column)),
            c = q(column)
        ),
        format!(
            "concat('region code ''', {}, ''' is not a village code')",
            q(column)
        ),
    )
}

/// Whether the code in `column` is a well-formed village code (its last
/// segment non-zero).
fn village_code_sql(column: &str) -> String {
    format!("village_code_valid({column})")
}

/// A reference from `column` to the accepted regions, on the codes as
/// numbers (`region_code_number`: 12 digits read directly; the join hashes
/// and compares integers, not text). Checked only where `only_if` holds,
/// which makes the code 12 digits, so the numbers are equal exactly when
/// the codes are; `villages` checks and limits the targets to village
/// codes.
fn region_reference(column: &'static str, villages: bool) -> Reference {
    let checked = format!("t.{column}");
    let (filter, what, only_if) = if villages {
        (
            " WHERE village_code_valid(code)",
            "village",
            village_code_sql(&checked),
        )
    } else {
        ("", "region", valid_code_sql(&checked))
    };
    Reference {
        column,
        on: vec![(format!("region_code_number({column})"), "__k")],
        parent: Some("regions"),
        target: format!("SELECT DISTINCT region_code_number(code) AS __k FROM regions{filter}"),
        only_if,
        problem: format!("concat('unknown {what} ', {column})"),
        carry: &[],
    }
}

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
pub(super) fn references_for(spec: &TableSpec) -> Vec<Reference> {
    // Accepted households have unique keys, so each row meets at most one
    // and takes over its link columns.
    let household = || {
        Reference {
        column: "household_id",
        on: vec![("household_id".into(), "household_id"), ("year".into(), "year")],
        parent: Some("households"),
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
            parent: None,
            target: "SELECT DISTINCT code AS __k FROM __typed_regions".into(),
            only_if: valid_code_sql("t.code"),
            problem: "concat('parent region ', region_parent(code), ' not in regions')".into(),
            carry: &[],
        }],
        "households" | "assessments" => vec![region_reference("village_code", true)],
        "members" | "assistance" => vec![household()],
        "funds" => vec![region_reference("region_code", false)],
        _ => vec![],
    }
}

/// The tables `spec`'s references read, which are validated before it.
pub(super) fn parents(spec: &TableSpec) -> Vec<&'static str> {
    references_for(spec)
        .into_iter()
        .filter_map(|r| r.parent)
        .collect()
}

/// `__bad`: whether any check is true, `any_true(check, …)` — one pass
/// over the checks' bitmaps, where `(check) IS TRUE OR …` compared every
/// row of every check (and `coalesce(check, false)` was rewritten by the
/// optimizer into `check IS NOT NULL AND check`, evaluating it twice).
pub(super) fn bad(checks: &[Check]) -> String {
    if checks.is_empty() {
        return "false".into();
    }
    let flags: Vec<String> = checks
        .iter()
        .map(|c| format!("({})", c.predicate))
        .collect();
    format!("any_true({})", flags.join(", "))
}

/// Whether duplicate keys are a fault for this table.
pub(super) fn key_is_unique(spec: &TableSpec) -> bool {
    !matches!(spec.name, "assistance" | "assessments")
}

/// Prefix the column of a join expression ([`bare_column`]) with `t.`.
pub(super) fn qualify(expr: &str) -> String {
    let column = bare_column(expr);
    match expr.find('(') {
        Some(open) if column != expr => format!("{}(t.{})", &expr[..open], q(column)),
        _ => format!("t.{}", q(expr)),
    }
}

/// A raw table's typing projection ([`typed_projection`]).
pub(super) struct Typed {
    /// The projection.
    pub sql: String,
    /// The missing-value and cast checks it implies.
    pub checks: Vec<Check>,
    /// The names of the accepted table's columns.
    pub columns: Vec<String>,
    /// The columns it keeps as the raw column of that name is, or null
    /// where that is blank (a store may copy their source chunks).
    pub kept: Vec<String>,
}

/// The typing projection of a raw table.
pub(super) fn typed_projection(
    spec: &TableSpec,
    source: &str,
    raw: &SchemaRef,
    raw_name: &str,
    map: &ColumnMap,
) -> Result<Typed> {
    let mut select = vec![q(ROW_COLUMN)];
    let mut checks = Vec::new();
    let mut output = Vec::new();
    let mut kept = Vec::new();
    let coded = code_list_columns(spec);
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
        let (typed, failed) = if is_text(source_type) {
            let text = format!("nullif(trim(CAST({c} AS VARCHAR)), '')");
            if target == &DataType::Utf8 {
                // Empty and blank text is null, whatever reader it came
                // through (DESIGN §11); other text is kept as it is, but
                // an exported label (DESIGN §8) becomes tuopin's value.
                // A dictionary of text stays one until the checks are done
                // (`code_list_columns`).
                let dictionary = matches!(source_type, DataType::Dictionary(..))
                    && coded.iter().any(|c| c == col.name);
                let as_text = if dictionary {
                    format!("null_if_blank({c})")
                } else {
                    format!("null_if_blank(CAST({c} AS VARCHAR))")
                };
                let labels = map.labels_of(col.name);
                if labels.is_empty() {
                    kept.push(col.name.to_string());
                }
                (relabelled(&as_text, &labels), None)
            } else {
                // Export forms (是/否, 2016年12月31日, 12,000 …) first.
                let plain = format!("export_value({text}, '{}')", form_kind(target));
                let typed = format!("try_cast({plain} AS {})", sql_type(target));
                let failed =
                    format!("CASE WHEN {text} IS NOT NULL AND {typed} IS NULL THEN {text} END");
                (typed, Some(failed))
            }
        } else if source_type == target {
            kept.push(col.name.to_string());
            (c.clone(), None)
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
        if is_text(field.data_type()) {
            // Extra text columns too: blank is null, and text is Utf8.
            select.push(format!(
                "null_if_blank(CAST({c} AS VARCHAR)) AS {c}",
                c = q(name)
            ));
        } else {
            select.push(q(name));
        }
        output.push(name.clone());
        kept.push(name.clone());
    }
    Ok(Typed {
        sql: format!("SELECT {} FROM {raw_name}", select.join(", ")),
        checks,
        columns: output,
        kept,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each reference names the table it reads, that table comes earlier
    /// in load order, and the reference's target SQL reads it — so the
    /// waves of `validate` never start a table before its parents.
    #[test]
    fn references_name_their_parents_which_load_first() {
        let position = |name: &str| schema::TABLES.iter().position(|t| t.name == name);
        for spec in &schema::TABLES {
            for r in references_for(spec) {
                match r.parent {
                    Some(p) => {
                        assert!(position(p) < position(spec.name), "{} → {p}", spec.name);
                        assert!(
                            r.target.contains(&format!("FROM {p}"))
                                || r.target.contains(&links::linked_name(p)),
                            "{}: {}",
                            spec.name,
                            r.target
                        );
                    }
                    None => assert!(r.target.contains(&format!("__typed_{}", spec.name))),
                }
            }
        }
        assert_eq!(parents(&schema::MEMBERS), vec!["households"]);
        assert_eq!(parents(&schema::HOUSEHOLDS), vec!["regions"]);
        assert!(parents(&schema::REGIONS).is_empty());
    }

    /// The narrow joins of validation read only the columns a reference
    /// names ([`Reference::columns`]): each `t.` column of its `only_if`
    /// predicate must be one of them, and each is a declared column.
    #[test]
    fn references_read_only_the_columns_they_name() {
        for spec in &schema::TABLES {
            for r in references_for(spec) {
                let columns: Vec<&str> = r.columns().collect();
                for c in &columns {
                    assert!(spec.column(c).is_some(), "{}: {c}", spec.name);
                }
                for (i, _) in r.only_if.match_indices("t.") {
                    let rest = &r.only_if[i + 2..];
                    let name: String = rest
                        .trim_start_matches('"')
                        .chars()
                        .take_while(|ch| ch.is_ascii_alphanumeric() || *ch == '_')
                        .collect();
                    assert!(columns.contains(&name.as_str()), "{}: {name}", spec.name);
                }
            }
        }
        assert_eq!(bare_column("region_parent(code)"), "code");
        assert_eq!(bare_column("household_id"), "household_id");
        assert_eq!(qualify("region_parent(code)"), "region_parent(t.\"code\")");
        assert_eq!(qualify("year"), "t.\"year\"");
    }
}
