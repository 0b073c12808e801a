//! The registry's tables (DESIGN §2.2): column names, Arrow types, which
//! tables and columns are required, key columns, and the allowed values of
//! the coded columns.
//!
//! ```
//! use tuopin::schema::{table_spec, TABLES};
//! let hh = table_spec("households").unwrap();
//! assert_eq!(hh.key, &["household_id", "year"]);
//! assert!(hh.required);
//! assert_eq!(TABLES.len(), 7);
//! ```

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

/// One declared column of a table.
#[derive(Debug, Clone)]
pub struct ColumnSpec {
    /// Column name.
    pub name: &'static str,
    /// Arrow type the loader casts to.
    pub data_type: DataType,
    /// Whether the column must be present in the input. Optional columns
    /// that are absent are added as all-null (unknown) columns.
    pub required: bool,
    /// Whether a value may be null.
    pub nullable: bool,
}

/// One declared table.
#[derive(Debug, Clone, Copy)]
pub struct TableSpec {
    /// Table name (also the file stem: `households.parquet`).
    pub name: &'static str,
    /// Whether a dataset must have it.
    pub required: bool,
    /// Key columns; their text joined by `/` is the `key` of a reject.
    pub key: &'static [&'static str],
    /// Declared columns in order.
    pub columns: &'static [ColumnSpec],
}

impl TableSpec {
    /// The declared Arrow schema (without extra columns).
    pub fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.columns
                .iter()
                .map(|c| Field::new(c.name, c.data_type.clone(), true))
                .collect::<Vec<_>>(),
        ))
    }

    /// The spec of column `name`, if declared.
    pub fn column(&self, name: &str) -> Option<&ColumnSpec> {
        self.columns.iter().find(|c| c.name == name)
    }
}

const fn req(name: &'static str, data_type: DataType) -> ColumnSpec {
    ColumnSpec {
        name,
        data_type,
        required: true,
        nullable: false,
    }
}

const fn opt(name: &'static str, data_type: DataType) -> ColumnSpec {
    ColumnSpec {
        name,
        data_type,
        required: false,
        nullable: true,
    }
}

use DataType::{Boolean as B, Date32 as D, Float64 as F, Int32 as I, Int64 as L, Utf8 as S};

/// `regions`: one row per administrative unit.
pub const REGIONS: TableSpec = TableSpec {
    name: "regions",
    required: true,
    key: &["code"],
    columns: &[
        req("code", S),
        req("name", S),
        opt("rural_population", L),
        opt("poor_village", B),
        opt("poor_county", S),
        opt("western", B),
        opt("exit_year", I),
    ],
};

/// `households`: one row per household per registry year.
pub const HOUSEHOLDS: TableSpec = TableSpec {
    name: "households",
    required: true,
    key: &["household_id", "year"],
    columns: &[
        req("household_id", S),
        req("year", I),
        req("village_code", S),
        req("size", I),
        req("category", S),
        req("status", S),
        opt("identified_year", I),
        opt("exit_year", I),
        opt("primary_cause", S),
        opt("wage_income", F),
        opt("business_income", F),
        opt("property_income", F),
        opt("transfer_income", F),
        opt("business_expense", F),
        opt("safe_housing", B),
        opt("dropouts", I),
        opt("medical_enrolled", I),
        opt("pension_eligible", I),
        opt("pension_enrolled", I),
        opt("safe_water", B),
        opt("electricity", B),
        opt("exit_proposed", B),
        opt("village_reviewed_on", D),
        opt("township_audited_on", D),
        opt("county_approved_on", D),
    ],
};

/// `members`: one row per person per year.
pub const MEMBERS: TableSpec = TableSpec {
    name: "members",
    required: false,
    key: &["person_id", "year"],
    columns: &[
        req("household_id", S),
        req("year", I),
        req("person_id", S),
        opt("relation", S),
        opt("sex", S),
        opt("birth_year", I),
        opt("id_number", S),
        opt("education", S),
        opt("in_school", B),
        opt("health", S),
        opt("labor", S),
        opt("migrant_months", I),
    ],
};

/// `poverty_lines`: yuan per person per year.
pub const POVERTY_LINES: TableSpec = TableSpec {
    name: "poverty_lines",
    required: false,
    key: &["year"],
    columns: &[
        req("year", I),
        req("poverty_line", F),
        opt("monitoring_line", F),
    ],
};

/// `assistance` (社会帮扶): who helps which household how.
pub const ASSISTANCE: TableSpec = TableSpec {
    name: "assistance",
    required: false,
    key: &["household_id", "year", "helper_id", "measure"],
    columns: &[
        req("household_id", S),
        req("year", I),
        req("helper_id", S),
        req("helper_type", S),
        req("measure", S),
    ],
};

/// `funds` (项目资金): project money attached to a region of any level.
pub const FUNDS: TableSpec = TableSpec {
    name: "funds",
    required: false,
    key: &["project_id"],
    columns: &[
        req("project_id", S),
        req("year", I),
        req("region_code", S),
        req("source", S),
        req("sector", S),
        req("allocated", F),
        req("disbursed", F),
        opt("households_benefited", I),
    ],
};

/// `assessments` (第三方评估): third-party exit assessment sample.
pub const ASSESSMENTS: TableSpec = TableSpec {
    name: "assessments",
    required: false,
    key: &["year", "village_code", "household_id"],
    columns: &[
        req("year", I),
        req("village_code", S),
        opt("household_id", S),
        req("sample", S),
        req("finding", S),
        opt("recognized", B),
    ],
};

/// Every table, in load order (a table's references come before it).
pub const TABLES: [TableSpec; 7] = [
    REGIONS,
    POVERTY_LINES,
    HOUSEHOLDS,
    MEMBERS,
    ASSISTANCE,
    FUNDS,
    ASSESSMENTS,
];

/// The spec of table `name`.
pub fn table_spec(name: &str) -> Option<&'static TableSpec> {
    TABLES.iter().find(|t| t.name == name)
}

/// Household categories.
pub const CATEGORIES: &[&str] = &["general", "dibao", "tekun"];
/// Household statuses.
pub const STATUSES: &[&str] = &["poor", "exited", "returned"];
/// Primary causes of poverty.
pub const CAUSES: &[&str] = &[
    "illness",
    "disability",
    "schooling",
    "disaster",
    "land",
    "water",
    "skills",
    "labor",
    "capital",
    "transport",
    "motivation",
    "other",
];
/// Poor-county designations.
pub const POOR_COUNTY: &[&str] = &["national", "provincial"];
/// Member relations to the head.
pub const RELATIONS: &[&str] = &["head", "spouse", "child", "parent", "grandchild", "other"];
/// Member sexes.
pub const SEXES: &[&str] = &["M", "F"];
/// Member health.
pub const HEALTH: &[&str] = &["healthy", "chronic", "serious", "disabled"];
/// Member labour capacity.
pub const LABOR: &[&str] = &["normal", "skilled", "weak", "lost", "none"];
/// Helper types.
pub const HELPER_TYPES: &[&str] = &["cadre", "enterprise", "organization", "individual"];
/// Assistance measures.
pub const MEASURES: &[&str] = &[
    "industry",
    "employment",
    "relocation",
    "ecological",
    "education",
    "health",
    "social_security",
    "other",
];
/// Fund sources.
pub const FUND_SOURCES: &[&str] = &["central", "provincial", "municipal", "county", "social"];
/// Fund sectors.
pub const SECTORS: &[&str] = &[
    "industry",
    "infrastructure",
    "education",
    "health",
    "housing",
    "relocation",
    "other",
];
/// Assessment samples.
pub const SAMPLES: &[&str] = &["exited", "poor", "non_registered"];
/// Assessment findings.
pub const FINDINGS: &[&str] = &["ok", "mistaken_exit", "missed"];

/// Schema of the `rejects` table.
pub fn rejects_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("table", S, false),
        Field::new("row", L, false),
        Field::new("key", S, true),
        Field::new("column", S, false),
        Field::new("problem", S, false),
        Field::new("file", S, true),
    ]))
}

/// Name of the 1-based source row number that loading adds to every table
/// (reserved: a source may not have a column of that name).
pub(crate) const ROW_COLUMN: &str = "__row";

/// A poor household, as a SQL predicate over `households`: status `poor`
/// or `returned` (DESIGN §4). The one definition used by validation (the
/// `__poor` link) and every metric.
pub(crate) const POOR: &str = "status IN ('poor', 'returned')";

/// Columns `household_facts` adds to a household's row (DESIGN §2.3).
pub(crate) const HOUSEHOLD_DERIVED: &[&str] = &[
    "net_income",
    "per_capita_net_income",
    "poverty_line",
    "monitoring_line",
    "township_code",
    "county_code",
    "city_code",
    "province_code",
];

/// Columns `region_facts`, `village_facts` and `county_facts` add to a
/// region's row: its level and roll-up codes, the year, every metric of
/// DESIGN §4 (checked against the metrics table by a test) and the
/// assessment rates with their sample sizes and intervals.
pub(crate) const REGION_DERIVED: &[&str] = &[
    "level",
    "year",
    "province_code",
    "city_code",
    "county_code",
    "township_code",
    "village_code",
    "registered_households",
    "registered_population",
    "poor_households",
    "poor_population",
    "exited_households",
    "exited_population",
    "returned_households",
    "poverty_incidence",
    "mean_income",
    "median_income",
    "fgt0",
    "fgt1",
    "fgt2",
    "poor_villages",
    "poor_villages_remaining",
    "poor_counties",
    "poor_counties_remaining",
    "migrant_workers",
    "assisted_share",
    "funds_allocated",
    "funds_disbursed",
    "disbursement_rate",
    "mistaken_exit_rate",
    "mistaken_exit_rate_n",
    "mistaken_exit_rate_low",
    "mistaken_exit_rate_high",
    "missed_rate",
    "missed_rate_n",
    "missed_rate_low",
    "missed_rate_high",
    "recognition_rate",
    "recognition_rate_n",
    "recognition_rate_low",
    "recognition_rate_high",
];

/// Whether an input column `name` of `table` would clash with a derived or
/// internal column (DESIGN §11): the `__` prefix is tuopin's, and the
/// facts views add the names above. Such a column is renamed on loading
/// (see [`source_name`]).
pub(crate) fn reserved_column(table: &str, name: &str) -> bool {
    name.starts_with("__")
        || match table {
            "households" => HOUSEHOLD_DERIVED.contains(&name),
            "regions" => REGION_DERIVED.contains(&name),
            _ => false,
        }
}

/// The name an input column that clashes is kept under: `source_<name>`,
/// numbered past any name `taken` (`source_<name>_2`, …).
pub(crate) fn source_name(name: &str, taken: &dyn Fn(&str) -> bool) -> String {
    let base = format!("source_{name}");
    let mut candidate = base.clone();
    let mut n = 2;
    while taken(&candidate) {
        candidate = format!("{base}_{n}");
        n += 1;
    }
    candidate
}
