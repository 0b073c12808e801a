//! Household links: what validation already knows about the household a
//! member or an assistance row belongs to, kept so metrics need no join.
//!
//! Validation checks every `members` and `assistance` row against the
//! accepted households (a join on `household_id, year`). That join also
//! hands over three facts of the household, stored with the row as hidden
//! *link columns*:
//!
//! | column      | type    | value                                             |
//! |-------------|---------|---------------------------------------------------|
//! | `__hid`     | BIGINT  | the household's row number in its source (unique) |
//! | `__village` | BIGINT  | its village code as an integer                    |
//! | `__poor`    | BOOLEAN | its status is `poor` or `returned`                |
//!
//! `households` itself carries `__row` (its source row number), which is
//! what `__hid` points at.
//!
//! The link columns are not part of a table's public schema: `members`,
//! `assistance` and `households` are registered with their declared columns
//! only, and each also as `__<table>_linked` (declared columns, then link
//! columns) for the engine's own plans. The migrants and assisted-poor
//! counts of [`crate::metrics`] read the linked tables: an integer group-by
//! instead of a join of 68 M members and a semi-join of 18 M assistance
//! rows on the text household key at national scale (BENCHMARKS.md).
//!
//! Links are facts of the validated dataset: a table registered later
//! under the same name (through [`crate::Engine::context`]) does not update
//! them.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::dataset::ROW_COLUMN;

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
        "members" | "assistance" => &[HOUSEHOLD_ROW, VILLAGE, POOR],
        _ => &[],
    }
}

/// The name under which `table` is registered with its link columns.
pub fn linked_name(table: &str) -> String {
    format!("__{table}_linked")
}

/// SQL of the household side of a member's or an assistance row's
/// reference check: the key, then the link columns it hands over.
pub(crate) fn households_target() -> String {
    format!(
        "SELECT household_id, year, {ROW_COLUMN} AS {HOUSEHOLD_ROW}, \
           CAST(village_code AS BIGINT) AS {VILLAGE}, \
           status IN ('poor', 'returned') AS {POOR} \
         FROM {}",
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
        assert_eq!(columns("members"), &["__hid", "__village", "__poor"]);
        assert_eq!(columns("assistance"), columns("members"));
        assert!(columns("regions").is_empty());
        assert!(columns("funds").is_empty());
    }

    #[test]
    fn linked_schema_appends_typed_link_columns() {
        let base = Schema::new(vec![Field::new("household_id", DataType::Utf8, true)]);
        let s = linked_schema("members", &base);
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
