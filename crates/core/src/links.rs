//! Household links: what validation already knows about the household a
//! member or an assistance row belongs to, kept so metrics need no join.
//!
//! Validation checks every `members` and `assistance` row against the
//! accepted households (a join on `household_id, year`). That join also
//! hands over facts of the household, stored with the row as hidden *link
//! columns*:
//!
//! | column      | type    | value                                             | on |
//! |-------------|---------|---------------------------------------------------|----|
//! | `__village` | BIGINT  | the household's village code as an integer        | members, assistance |
//! | `__hid`     | BIGINT  | its row number in its source (unique)             | assistance |
//! | `__poor`    | BOOLEAN | its status is `poor` or `returned`                | assistance |
//!
//! `households` itself carries `__row` (its source row number), which is
//! what `__hid` points at. Each table carries only what a metric reads: the
//! household side of the check is held in a hash table while every member
//! streams past it, and each column there costs memory at national scale.
//!
//! The link columns are not part of a table's public schema: `members`,
//! `assistance` and `households` are registered with their declared columns
//! only, and each also as `__<table>_linked` (declared columns, then link
//! columns) for the engine's own plans. The migrants and assisted-poor
//! counts of the metrics read the linked tables: an integer group-by
//! instead of a join of 68 M members and a semi-join of 18 M assistance
//! rows on the text household key at national scale (BENCHMARKS.md).
//!
//! Links are facts of the validated dataset: a table registered later
//! under the same name (through [`crate::Engine::context`]) does not update
//! them.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::schema::{POOR as POOR_SQL, ROW_COLUMN};

/// The household's source row number, on a member or an assistance row.
pub const HOUSEHOLD_ROW: &str = "__hid";
/// The household's village code as an integer.
pub const VILLAGE: &str = "__village";
/// Whether the household is poor (`poor` or `returned`).
pub const POOR: &str = "__poor";

/// The link columns of `table`, in order (none for most tables).
pub fn columns(table: &str) -> &'static [&'static str] {
    match table {
        "households" => &[ROW_COLUMN],
        "members" => &[VILLAGE],
        "assistance" => &[HOUSEHOLD_ROW, VILLAGE, POOR],
        _ => &[],
    }
}

/// The SQL expression over `households` of a member's or assistance row's
/// link column `link`.
///
/// The village code through `region_code_number` (12 ASCII digits read
/// directly; `TRY_CAST` parsed every code, twice per load), which is null,
/// never an error, for text that is not a code: over a store DataFusion may
/// evaluate a pushed-down predicate (a hash join's dynamic filter) in the
/// Parquet scan before the view's `NOT __bad`, i.e. on rejected rows. On
/// accepted rows, whose codes are 12 digits, it equals `CAST(… AS BIGINT)`.
pub(crate) fn household_expr(link: &str) -> String {
    match link {
        HOUSEHOLD_ROW => ROW_COLUMN.to_string(),
        VILLAGE => "region_code_number(village_code)".to_string(),
        _ => POOR_SQL.to_string(),
    }
}

/// The name under which `table` is registered with its link columns.
pub fn linked_name(table: &str) -> String {
    format!("__{table}_linked")
}

/// SQL of the household side of the reference check of `table` (members
/// or assistance): the key, then the link columns it hands over.
pub(crate) fn households_target(table: &str) -> String {
    let links: String = columns(table)
        .iter()
        .map(|c| format!(", {} AS {c}", household_expr(c)))
        .collect();
    format!(
        "SELECT household_id, year{links} FROM {}",
        linked_name("households")
    )
}

/// `schema` followed by the link columns of `table` (for a table the
/// dataset does not supply, registered empty).
pub(crate) fn linked_schema(table: &str, schema: &Schema) -> SchemaRef {
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    for c in columns(table) {
        let t = if *c == POOR {
            DataType::Boolean
        } else {
            DataType::Int64
        };
        fields.push(Field::new(*c, t, true));
    }
    Arc::new(Schema::new(fields))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_households_and_their_dependants_have_links() {
        assert_eq!(columns("households"), &["__row"]);
        assert_eq!(columns("members"), &["__village"]);
        assert_eq!(columns("assistance"), &["__hid", "__village", "__poor"]);
        assert!(columns("regions").is_empty());
        assert!(columns("funds").is_empty());
    }

    #[test]
    fn the_household_side_selects_only_the_carried_links() {
        assert_eq!(
            households_target("members"),
            "SELECT household_id, year, region_code_number(village_code) AS __village \
             FROM __households_linked"
        );
        let a = households_target("assistance");
        assert!(a.contains(", __row AS __hid, "), "{a}");
        assert!(
            a.contains(", status IN ('poor', 'returned') AS __poor "),
            "{a}"
        );
    }

    #[test]
    fn linked_schema_appends_typed_link_columns() {
        let base = Schema::new(vec![Field::new("household_id", DataType::Utf8, true)]);
        let s = linked_schema("assistance", &base);
        let got: Vec<(&str, &DataType)> = s
            .fields()
            .iter()
            .map(|f| (f.name().as_str(), f.data_type()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("household_id", &DataType::Utf8),
                ("__hid", &DataType::Int64),
                ("__village", &DataType::Int64),
                ("__poor", &DataType::Boolean),
            ]
        );
        assert_eq!(linked_schema("regions", &base).fields().len(), 1);
    }
}
