//! The national system's consistency checks (DESIGN §8), as warnings:
//! [`Engine::quality`]. A row that fails one stays in the dataset (it is
//! valid data, only implausible); each check that fires gives one row
//! `table`, `key` (as in rejects), `check`, `detail`.
//!
//! | check | table | fires when |
//! |---|---|---|
//! | `exited_below_line` | households | status exited, per-capita net income below the poverty line |
//! | `exited_with_dropouts` | households | status exited, dropouts > 0 |
//! | `exited_unsafe_housing` | households | status exited, safe_housing false |
//! | `illness_all_healthy` | households | primary cause illness, every member healthy |
//! | `schooling_no_student` | households | primary cause schooling, no member in school |
//! | `disability_none_disabled` | households | primary cause disability, no member disabled |
//! | `wage_without_worker` | households | wage income > 0, every member with migrant_months 0 and labor none or lost |
//! | `income_out_of_range` | households | per-capita net income ≤ 0 or > 100,000 |
//! | `duplicate_id_number` | members | the member's id_number is also a member's of another household that year |
//!
//! A null never fires a check: members whose checked value is null are
//! ignored, and a household without such members is not judged. One SQL
//! plan (a union of one branch per check), like every other analysis.
//!
//! ```no_run
//! # async fn run(engine: tuopin::Engine) -> tuopin::Result<()> {
//! let warnings = engine.quality(2016).await?.collect().await?;
//! # Ok(()) }
//! ```

use datafusion::prelude::DataFrame;

use crate::engine::Engine;
use crate::error::Result;

/// The checks, in output order: name, then (for the household checks)
/// the condition over `f` (the household facts joined with the member
/// summary `m`) and the detail text.
const HOUSEHOLD_CHECKS: &[(&str, &str, &str)] = &[
    (
        "exited_below_line",
        "f.status = 'exited' AND f.per_capita_net_income < f.poverty_line",
        "concat('exited with per-capita net income ', CAST(round(f.per_capita_net_income, 2) AS VARCHAR), ' below the poverty line ', CAST(f.poverty_line AS VARCHAR))",
    ),
    (
        "exited_with_dropouts",
        "f.status = 'exited' AND f.dropouts > 0",
        "concat('exited with ', CAST(f.dropouts AS VARCHAR), ' dropout(s)')",
    ),
    (
        "exited_unsafe_housing",
        "f.status = 'exited' AND NOT f.safe_housing",
        "'exited with unsafe housing'",
    ),
    (
        "illness_all_healthy",
        "f.primary_cause = 'illness' AND m.all_healthy",
        "concat('cause illness, but all ', CAST(m.health_known AS VARCHAR), ' member(s) with a known health status are healthy')",
    ),
    (
        "schooling_no_student",
        "f.primary_cause = 'schooling' AND NOT m.any_student",
        "concat('cause schooling, but none of ', CAST(m.school_known AS VARCHAR), ' member(s) is in school')",
    ),
    (
        "disability_none_disabled",
        "f.primary_cause = 'disability' AND NOT m.any_disabled",
        "concat('cause disability, but none of ', CAST(m.health_known AS VARCHAR), ' member(s) is disabled')",
    ),
    (
        "wage_without_worker",
        "f.wage_income > 0 AND m.no_worker",
        "concat('wage income ', CAST(f.wage_income AS VARCHAR), ', but no member works (no migrant months, labour none or lost)')",
    ),
    (
        "income_out_of_range",
        "f.per_capita_net_income <= 0 OR f.per_capita_net_income > 100000",
        "concat('per-capita net income ', CAST(round(f.per_capita_net_income, 2) AS VARCHAR), ' outside (0, 100000]')",
    ),
];

/// The members check, after the household checks.
const DUPLICATE_ID_NUMBER: &str = "duplicate_id_number";

/// Names of every check, in output order.
pub fn check_names() -> impl Iterator<Item = &'static str> {
    HOUSEHOLD_CHECKS
        .iter()
        .map(|(name, _, _)| *name)
        .chain([DUPLICATE_ID_NUMBER])
}

impl Engine {
    /// The consistency warnings of `year`'s snapshot (see [`crate::quality`]):
    /// `table`, `key`, `check`, `detail`, ordered by check then key.
    pub async fn quality(&self, year: i32) -> Result<DataFrame> {
        self.check_year(year).await?;
        let facts = self.household_facts_of(year).await?;
        self.sql(&quality_sql(&facts, year, self.has_table("members")))
            .await
    }
}

/// SQL of the checks over the household facts query `facts` of `year`.
fn quality_sql(facts: &str, year: i32, with_members: bool) -> String {
    // Per household, over the members whose checked value is known; a
    // flag is null when no member's value is known (the check does not
    // judge the household).
    let members = if with_members {
        format!(
            "SELECT household_id, \
               count(health) AS health_known, \
               bool_and(health = 'healthy') AS all_healthy, \
               bool_or(health = 'disabled') AS any_disabled, \
               count(in_school) AS school_known, \
               bool_or(in_school) AS any_student, \
               bool_and(migrant_months = 0 AND labor IN ('none', 'lost')) AS no_worker \
             FROM members WHERE year = {year} GROUP BY household_id"
        )
    } else {
        "SELECT CAST(NULL AS VARCHAR) AS household_id, CAST(0 AS BIGINT) AS health_known, \
           CAST(NULL AS BOOLEAN) AS all_healthy, CAST(NULL AS BOOLEAN) AS any_disabled, \
           CAST(0 AS BIGINT) AS school_known, CAST(NULL AS BOOLEAN) AS any_student, \
           CAST(NULL AS BOOLEAN) AS no_worker WHERE false"
            .to_string()
    };
    // One pass over the households: every check's flag and detail side
    // by side, only for households where some check fires; then one row
    // per check that fires (a cross join with the few flagged rows).
    let n = HOUSEHOLD_CHECKS.len();
    let flags = HOUSEHOLD_CHECKS
        .iter()
        .enumerate()
        .map(|(i, (_, when, detail))| format!("coalesce({when}, false) AS c{i}, {detail} AS d{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let any = (0..n)
        .map(|i| format!("c{i}"))
        .collect::<Vec<_>>()
        .join(" OR ");
    let names = HOUSEHOLD_CHECKS
        .iter()
        .enumerate()
        .map(|(i, (name, _, _))| format!("({i}, '{name}')"))
        .collect::<Vec<_>>()
        .join(", ");
    let pick = |prefix: &str| {
        let arms: String = (0..n)
            .map(|i| format!(" WHEN {i} THEN {prefix}{i}"))
            .collect();
        format!("CASE k.column1{arms} END")
    };
    let mut branches = vec![format!(
        "SELECT 'households' AS \"table\", fm.key, k.column2 AS \"check\", {detail} AS detail \
         FROM (SELECT * FROM ( \
             SELECT concat_ws('/', f.household_id, CAST(f.year AS VARCHAR)) AS key, {flags} \
             FROM f LEFT JOIN m ON m.household_id = f.household_id) \
           WHERE {any}) fm \
         CROSS JOIN (VALUES {names}) k \
         WHERE {flag}",
        detail = pick("fm.d"),
        flag = pick("fm.c"),
    )];
    if with_members {
        // Every member row whose id number another household also has.
        branches.push(format!(
            "SELECT 'members' AS \"table\", \
               concat_ws('/', x.person_id, CAST(x.year AS VARCHAR)) AS key, \
               '{DUPLICATE_ID_NUMBER}' AS \"check\", \
               concat('id number ', x.id_number, ' in ', CAST(d.households AS VARCHAR), \
                 ' households of ', CAST(x.year AS VARCHAR)) AS detail \
             FROM members x JOIN ( \
               SELECT id_number, count(DISTINCT household_id) AS households \
               FROM members WHERE year = {year} AND id_number IS NOT NULL \
               GROUP BY id_number HAVING count(DISTINCT household_id) > 1) d \
             ON d.id_number = x.id_number \
             WHERE x.year = {year}"
        ));
    }
    let order = check_names()
        .enumerate()
        .map(|(i, c)| format!(" WHEN '{c}' THEN {i}"))
        .collect::<String>();
    format!(
        "WITH f AS ({facts}), m AS ({members}) \
         SELECT * FROM ({union}) q ORDER BY CASE \"check\"{order} END, key",
        union = branches.join(" UNION ALL ")
    )
}
