//! The facts views rules and SQL read (DESIGN §2.3, §3), all defined here:
//!
//! - `household_facts` — households + `net_income`, `per_capita_net_income`,
//!   the year's `poverty_line` and `monitoring_line`, and the roll-up codes
//!   `township_code` … `province_code` ([`household_facts_sql`]; one year
//!   with its lines as constants: [`household_facts_of_year_sql`]);
//! - `region_facts` — every region with its `level`, roll-up codes and
//!   inherited `western` ([`region_facts_sql`]);
//! - `village_facts` / `county_facts` — the region's row, its metrics for
//!   every year ([`crate::metrics`]) and the third-party assessment rates
//!   ([`unit_facts_sql`]).
//!
//! They are SQL text built from internal constants only; [`crate::catalog`]
//! registers them as views.

use crate::codes::{
    level_of_rank_sql, level_rank_int_sql, level_rank_sql, level_sql, roll_up_sql, Level,
};
use crate::metrics::metrics_sql;
use crate::sql::quote_identifier;

/// SQL of the `household_facts` view (DESIGN §2.3).
pub(crate) fn household_facts_sql() -> String {
    facts_select(
        "pl.poverty_line",
        "pl.monitoring_line",
        "FROM households h LEFT JOIN poverty_lines pl ON h.year = pl.year",
    )
}

/// SQL of the `household_facts` rows of one year whose poverty and
/// monitoring lines are already known ([`YearLines`]): the same columns as
/// the view, with the lines as constants instead of a join — every
/// household row of a year has the same lines, and a hash join probed once
/// per household was a tenth of an evaluation's time (BENCHMARKS.md).
pub(crate) fn household_facts_of_year_sql(year: i32, lines: YearLines) -> String {
    facts_select(
        &float_sql(lines.poverty_line),
        &float_sql(lines.monitoring_line),
        &format!("FROM households h WHERE h.year = {year}"),
    )
}

/// The `household_facts` projection over `from` (which names the
/// households `h`), with the year's lines given as SQL expressions.
fn facts_select(poverty_line: &str, monitoring_line: &str, from: &str) -> String {
    let derived = derived_columns(poverty_line, monitoring_line)
        .into_iter()
        .map(|(name, expr)| format!("{expr} AS {name}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!("SELECT h.*, {derived} {from}")
}

/// The columns `household_facts` adds to the households (name, SQL over
/// `h`), with the year's lines given as SQL expressions.
fn derived_columns(poverty_line: &str, monitoring_line: &str) -> Vec<(&'static str, String)> {
    let net = "(h.wage_income + h.business_income + h.property_income + h.transfer_income - h.business_expense)";
    vec![
        ("net_income", net.to_string()),
        ("per_capita_net_income", format!("{net} / h.size")),
        ("poverty_line", poverty_line.to_string()),
        (
            "monitoring_line",
            format!("coalesce({monitoring_line}, 1.5 * {poverty_line})"),
        ),
        (
            "township_code",
            roll_up_sql("h.village_code", Level::Township),
        ),
        ("county_code", roll_up_sql("h.village_code", Level::County)),
        ("city_code", roll_up_sql("h.village_code", Level::City)),
        (
            "province_code",
            roll_up_sql("h.village_code", Level::Province),
        ),
    ]
}

/// SQL of the `household_facts` columns `columns` only (each a column of
/// the view), for the rows of one year whose lines are known: what
/// [`household_facts_of_year_sql`] gives, without the columns a plan does
/// not read: planning and optimising a projection of every household
/// column cost the index (`Engine::mpi`), which reads a few, 2–4 ms of
/// its planning (BENCHMARKS.md).
pub(crate) fn household_facts_columns_of_year_sql(
    year: i32,
    lines: YearLines,
    columns: &[String],
) -> String {
    let derived = derived_columns(
        &float_sql(lines.poverty_line),
        &float_sql(lines.monitoring_line),
    );
    let items = columns
        .iter()
        .map(|c| match derived.iter().find(|(name, _)| name == c) {
            Some((name, expr)) => format!("{expr} AS {name}"),
            None => format!("h.{}", quote_identifier(c)),
        })
        .collect::<Vec<_>>()
        .join(", ");
    format!("SELECT {items} FROM households h WHERE h.year = {year}")
}

/// A DOUBLE literal that reads back as exactly `v` (Rust prints the
/// shortest decimal that round-trips; [`YearLines`] holds finite values
/// only), or a typed NULL.
fn float_sql(v: Option<f64>) -> String {
    match v {
        Some(v) => format!("CAST({v:?} AS DOUBLE)"),
        None => "CAST(NULL AS DOUBLE)".into(),
    }
}

/// The `poverty_lines` row of one year (both null when the year has none),
/// finite values only — see [`crate::Engine::year_lines`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct YearLines {
    /// `poverty_line` of the year.
    pub poverty_line: Option<f64>,
    /// `monitoring_line` of the year as stored (null = 1.5 × poverty line).
    pub monitoring_line: Option<f64>,
}

/// `region_facts`: every region with its `level`, its roll-up codes
/// (`province_code` … `village_code`, null below its own level) and
/// `western` inherited from the nearest unit above that sets it.
pub(crate) fn region_facts_sql() -> String {
    let codes = Level::ALL
        .iter()
        .map(|l| {
            format!(
                "CASE WHEN {rank} >= {lr} THEN {roll} END AS {col}",
                rank = level_rank_sql("level"),
                lr = l.rank(),
                roll = roll_up_sql("code", *l),
                col = l.code_column()
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let west = |alias: &str, l: Level| {
        format!(
            "LEFT JOIN regions {alias} ON {alias}.code = {}",
            roll_up_sql("r.code", l)
        )
    };
    format!(
        "SELECT *, {codes} FROM (\
           SELECT r.* EXCLUDE (western), {level} AS level, \
             coalesce(r.western, wt.western, wc.western, wci.western, wp.western) AS western \
           FROM regions r {} {} {} {})",
        west("wt", Level::Township),
        west("wc", Level::County),
        west("wci", Level::City),
        west("wp", Level::Province),
        level = level_sql("r.code"),
    )
}

/// z of a two-sided 95 % interval, Φ⁻¹(0.975) (DESIGN §9).
pub(crate) const WILSON_Z: f64 = 1.959963984540054;

/// The third-party assessment rates (三率一度) of `village_facts` and
/// `county_facts`; each has `<rate>_n`, `<rate>_low` and `<rate>_high`
/// beside it (DESIGN §9).
pub const ASSESSMENT_RATES: [&str; 3] = ["mistaken_exit_rate", "missed_rate", "recognition_rate"];

/// The assessment rates: name, successes and sample size (SQL aggregates
/// over `assessments`).
const RATES: [(&str, &str, &str); 3] = [
    (
        "mistaken_exit_rate",
        "sum(CASE WHEN sample = 'exited' AND finding = 'mistaken_exit' THEN 1 ELSE 0 END)",
        "sum(CASE WHEN sample = 'exited' THEN 1 ELSE 0 END)",
    ),
    (
        "missed_rate",
        "sum(CASE WHEN sample = 'non_registered' AND finding = 'missed' THEN 1 ELSE 0 END)",
        "sum(CASE WHEN sample = 'non_registered' THEN 1 ELSE 0 END)",
    ),
    (
        "recognition_rate",
        "sum(CASE WHEN recognized THEN 1 ELSE 0 END)",
        "count(recognized)",
    ),
];

/// `<rate>`, `<rate>_n` and the 95 % Wilson score interval
/// `<rate>_low`, `<rate>_high` from `a.<rate>_x` successes in `a.<rate>_n`
/// (null rate and bounds when n = 0; n = 0 for a region without
/// assessments): with p = x/n and k = z²/n, the centre is (p + k/2)/(1 + k)
/// and the half-width z·√(p(1−p)/n + k/(4n))/(1 + k).
fn rate_columns(name: &str) -> String {
    let (x, n) = (format!("a.{name}_x"), format!("a.{name}_n"));
    let z = WILSON_Z;
    let p = format!("(CAST({x} AS DOUBLE) / {n})");
    let k = format!("({z:?} * {z:?} / {n})");
    let centre = format!("(({p} + {k} / 2.0) / (1.0 + {k}))");
    let half = format!("({z:?} * sqrt({p} * (1.0 - {p}) / {n} + {k} / (4.0 * {n})) / (1.0 + {k}))");
    format!(
        "CASE WHEN {n} > 0 THEN {p} END AS {name}, \
         CAST(coalesce({n}, 0) AS BIGINT) AS {name}_n, \
         CASE WHEN {n} > 0 THEN greatest(0.0, {centre} - {half}) END AS {name}_low, \
         CASE WHEN {n} > 0 THEN least(1.0, {centre} + {half}) END AS {name}_high"
    )
}

/// `village_facts` / `county_facts`: the region's row (with inherited
/// `western`), its metrics for every year, and the third-party assessment
/// rates `mistaken_exit_rate` (mistaken_exit findings / exited samples),
/// `missed_rate` (missed findings / non_registered samples) and
/// `recognition_rate` (recognized / answered), each with its sample size
/// `<rate>_n` and 95 % Wilson interval `<rate>_low`, `<rate>_high` (DESIGN
/// §9: the rates come from a sample, so a rule can judge on a bound, e.g.
/// `mistaken_exit_rate_high < 0.02`).
pub(crate) fn unit_facts_sql(level: Level, with_members: bool) -> String {
    let metrics = metrics_sql("household_facts", None, Some(level), with_members);
    let code = roll_up_sql("village_code", level);
    let rates = RATES
        .iter()
        .map(|(name, _, _)| rate_columns(name))
        .collect::<Vec<_>>()
        .join(", ");
    let counts = RATES
        .iter()
        .map(|(name, x, n)| format!("{x} AS {name}_x, {n} AS {name}_n"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "SELECT r.* EXCLUDE (rural_population), m.* EXCLUDE (level, code, name), {rates} \
         FROM ({metrics}) m JOIN region_facts r ON r.code = m.code \
         LEFT JOIN ( \
           SELECT year, {code} AS code, {counts} \
           FROM assessments GROUP BY year, {code}) a ON a.code = m.code AND a.year = m.year"
    )
}

/// SQL of the regions in output order, `__regions_in_order`
/// ([`crate::catalog::REGIONS_IN_ORDER`]): each region with its level,
/// code as a number (`cv`), level rank and `seq` = rank · 10^12 + cv —
/// one BIGINT key, level and rank read from the code as a number —
/// sorted by `seq`.
pub(crate) fn regions_in_order_sql() -> String {
    format!(
        "SELECT {level_of_rank} AS level, code, name, cv, rank, rank * 1000000000000 + cv AS seq \
         FROM (SELECT code, name, cv, {rank_of} AS rank \
           FROM (SELECT code, name, region_code_number(code) AS cv FROM regions)) \
         ORDER BY seq",
        rank_of = level_rank_int_sql("cv"),
        level_of_rank = level_of_rank_sql("rank"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_rate_names_are_the_computed_rates() {
        let computed: Vec<&str> = RATES.iter().map(|(name, _, _)| *name).collect();
        assert_eq!(computed, ASSESSMENT_RATES);
    }

    /// The Wilson bounds of DESIGN §9, computed directly.
    fn wilson(x: f64, n: f64) -> (f64, f64) {
        let z = WILSON_Z;
        let p = x / n;
        let k = z * z / n;
        let centre = (p + k / 2.0) / (1.0 + k);
        let half = z * (p * (1.0 - p) / n + k / (4.0 * n)).sqrt() / (1.0 + k);
        ((centre - half).max(0.0), (centre + half).min(1.0))
    }

    #[test]
    fn wilson_bounds_by_hand() {
        // 1 mistaken exit in 40 sampled: 2.5 %, but the interval reaches
        // 12.9 % — not shown to be below 2 %.
        let (lo, hi) = wilson(1.0, 40.0);
        assert!((lo - 0.004_426_83).abs() < 1e-8, "{lo}");
        assert!((hi - 0.128_813_69).abs() < 1e-8, "{hi}");
        // x = 0: the lower bound is 0, the upper z²/(n + z²).
        let (lo, hi) = wilson(0.0, 10.0);
        assert_eq!(lo, 0.0);
        let z2 = WILSON_Z * WILSON_Z;
        assert!((hi - z2 / (10.0 + z2)).abs() < 1e-12, "{hi}");
    }

    #[test]
    fn rate_columns_name_all_four() {
        let sql = rate_columns("missed_rate");
        for c in [
            "missed_rate,",
            "missed_rate_n,",
            "missed_rate_low,",
            "missed_rate_high",
        ] {
            assert!(sql.contains(&format!("AS {c}")), "{c} in {sql}");
        }
    }
}
