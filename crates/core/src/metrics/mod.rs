//! Metrics at every administrative level (DESIGN §4), causes and
//! transitions.
//!
//! Each metric is declared once in [`defs`] (`METRICS`): its output column,
//! the parts it adds up and its value over them. This module turns that
//! table into one SQL query ([`metrics_sql`]); `causes.rs` and
//! `transitions.rs` hold the other two reports. The SQL is built from
//! internal constants only, never from user input.
//!
//! Definitions, exactly as DESIGN §4:
//! - poor = status `poor` or `returned`; exited = `exit_year = year`;
//! - `poverty_incidence` = poor_population / rural_population, where a
//!   higher level's rural_population is the sum over its villages;
//! - `mean_income` = Σ net_income / Σ size over households with known income;
//! - `median_income`: exact median of per-capita net income over persons
//!   (each household's value counted `size` times; [`crate::functions`]);
//! - `fgt0/1/2`: Foster–Greer–Thorbecke over persons with known income and
//!   line, poor iff income < line strictly;
//! - `poor_counties*` count the designated counties inside a region, so
//!   townships and villages have 0;
//! - funds attached to a region count for it and every level above;
//! - a ratio with a zero or null denominator is null.
//!
//! Plan shape (chosen from the profile, see BENCHMARKS.md): household rows
//! are aggregated once per unit on an integer code; migrants and assisted
//! poor households are counted per unit from the household links of
//! `members` and `assistance` ([`crate::links`]), so no join on the text
//! household key is made; the unit rows — a few tens of thousands of
//! villages — are then rolled up to every level with GROUPING SETS. The
//! exact median does not compose: for every level it is taken from the
//! household rows by one aggregate, `level_medians`, which holds each
//! (income, size) pair once and, walking the pairs in village order, takes
//! each region's median as its stretch of pairs ends (rolling villages'
//! pairs up through the GROUPING SETS held a copy per level: 5.3 GB at
//! 30 M households, BENCHMARKS.md). For one level the household rows are
//! aggregated straight to that level's regions and the median taken there.
//! Villages, counties and funds are grouped at every level straight from
//! their rows.
//!
//! ```no_run
//! # async fn run(engine: tuopin::Engine) -> tuopin::Result<()> {
//! use tuopin::Level;
//! let cities = engine.metrics(2016, Some(Level::City)).await?.collect().await?;
//! let all = engine.metrics(2016, None).await?; // every level, one query
//! # Ok(()) }
//! ```

mod causes;
mod defs;
mod transitions;

pub(crate) use causes::causes_sql;
pub(crate) use defs::METRICS;
pub(crate) use transitions::transitions_sql;

use crate::codes::{level_rank_sql, level_sql, roll_up_int_sql, Level};
use crate::links::{linked_name, HOUSEHOLD_ROW, POOR as LINK_POOR, VILLAGE};
use crate::schema::POOR;

/// Sums of floating-point money and FGT terms are taken in DECIMAL: each
/// term is rounded once (to 1e-9 yuan, 1e-18 of a share), and the sum is
/// then exact, so results are identical run after run whatever order the
/// parallel partial aggregates merge in (a double sum is not associative).
pub(crate) const EXACT_MONEY: &str = "DECIMAL(38, 9)";
/// See [`EXACT_MONEY`].
pub(crate) const EXACT_SHARE: &str = "DECIMAL(38, 18)";

/// The `household_facts` columns [`metrics_sql`] reads: a caller may hand
/// it a projection of these only (planning a projection of every household
/// column is part of each `metrics` command's fixed cost).
pub(crate) const FACT_COLUMNS: &[&str] = &[
    "year",
    "village_code",
    "household_id",
    "size",
    "status",
    "exit_year",
    "net_income",
    "per_capita_net_income",
    "poverty_line",
];

/// One metric: an output column of [`metrics_sql`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Metric {
    /// Output column.
    pub name: &'static str,
    /// Parts it adds (others' parts may be used too).
    pub parts: &'static [Part],
    /// SQL value over the parts, named unqualified.
    pub value: &'static str,
    /// A table the metric needs, and its value when the dataset lacks it.
    pub needs: Option<(&'static str, &'static str)>,
}

impl Metric {
    /// A metric with its parts and value.
    pub const fn new(name: &'static str, parts: &'static [Part], value: &'static str) -> Self {
        Metric {
            name,
            parts,
            value,
            needs: None,
        }
    }

    /// The metric is `absent` (e.g. null) when the dataset lacks `table`.
    pub const fn needs(self, table: &'static str, absent: &'static str) -> Self {
        Metric {
            needs: Some((table, absent)),
            ..self
        }
    }
}

/// Where a part's rows come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// The households of the year, aggregated per unit, then rolled up.
    Households,
    /// Members with `migrant_months ≥ 6`, counted per unit, then rolled up.
    MigrantMembers,
    /// Distinct poor households with an assistance row, per unit, rolled up.
    AssistedPoorHouseholds,
    /// Village rows of `regions`, each year, grouped at every level.
    Villages,
    /// County rows of `regions`, each year, grouped at every level.
    Counties,
    /// Fund rows of the year, grouped at every level above their region.
    Funds,
}

impl Source {
    /// Aggregated per unit and rolled up (rather than grouped directly).
    fn per_unit(self) -> bool {
        matches!(
            self,
            Source::Households | Source::MigrantMembers | Source::AssistedPoorHouseholds
        )
    }
}

/// How a part aggregates.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Agg {
    /// An aggregate whose results add up (`count`, `sum`): taken over the
    /// source's rows, then summed up the levels.
    Sum(&'static str),
    /// The exact median of `value` weighted by `weight` (per person).
    Median {
        value: &'static str,
        weight: &'static str,
    },
}

/// A partial aggregate a metric is computed from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Part {
    /// Column name, unique among all parts.
    pub name: &'static str,
    /// Its rows.
    pub source: Source,
    /// Its aggregate.
    pub agg: Agg,
}

impl Part {
    /// An aggregate that adds up.
    pub const fn sum(name: &'static str, source: Source, aggregate: &'static str) -> Self {
        Part {
            name,
            source,
            agg: Agg::Sum(aggregate),
        }
    }

    /// An exact weighted median.
    pub const fn median(
        name: &'static str,
        source: Source,
        value: &'static str,
        weight: &'static str,
    ) -> Self {
        Part {
            name,
            source,
            agg: Agg::Median { value, weight },
        }
    }
}

/// Every part of [`METRICS`] from `source`, in table order.
fn parts_of(source: Source) -> impl Iterator<Item = &'static Part> {
    METRICS
        .iter()
        .flat_map(|m| m.parts.iter())
        .filter(move |p| p.source == source)
}

/// `{money}` / `{share}` in a definition replaced by the exact types.
fn expand(sql: &str) -> String {
    sql.replace("{money}", EXACT_MONEY)
        .replace("{share}", EXACT_SHARE)
}

/// The select list of a source's first aggregation (`level = None`: rolled
/// up later; medians are left to [`level_medians`]).
fn first_aggregates(source: Source, level: Option<Level>) -> String {
    parts_of(source)
        .filter_map(|p| match p.agg {
            Agg::Sum(a) => Some(format!("{} AS {}", expand(a), p.name)),
            // Every level: the medians come from [`level_medians`].
            Agg::Median { .. } if level.is_none() => None,
            Agg::Median { value, weight } => {
                Some(format!("weighted_median({value}, {weight}) AS {}", p.name))
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The roll-up of the per-unit parts to the wanted level(s).
fn roll_up_aggregates(level: Option<Level>) -> String {
    METRICS
        .iter()
        .flat_map(|m| m.parts.iter())
        .filter(|p| p.source.per_unit())
        .filter_map(|p| match p.agg {
            Agg::Sum(_) => Some(format!("sum({n}) AS {n}", n = p.name)),
            Agg::Median { .. } if level.is_none() => None,
            // Already one group per region: its median as is.
            Agg::Median { .. } => Some(format!("max({n}) AS {n}", n = p.name)),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parts of the per-unit sources other than households, carried onto the
/// unit rows (0 where a unit has none).
fn unit_extras(source: Source, alias: &str) -> String {
    parts_of(source)
        .map(|p| format!(", coalesce({alias}.{n}, 0) AS {n}", n = p.name))
        .collect()
}

/// The output columns: each metric's value, or its stand-in when the
/// dataset lacks a table it needs.
fn metric_values(has_table: &dyn Fn(&str) -> bool) -> String {
    METRICS
        .iter()
        .map(|m| {
            let value = match m.needs {
                Some((table, absent)) if !has_table(table) => absent,
                _ => m.value,
            };
            format!("{} AS {}", expand(value), m.name)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Quoted level names of `level`, or of all five.
pub(crate) fn levels_list(level: Option<Level>) -> String {
    match level {
        Some(l) => format!("'{}'", l.as_str()),
        None => Level::ALL
            .iter()
            .map(|l| format!("'{}'", l.as_str()))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// `GROUP BY` clause and the `code` expression for one level, or GROUPING
/// SETS over all five levels (with `extra` grouped in every set), over the
/// text roll-up columns of `household_facts`.
pub(crate) fn grouping(level: Option<Level>, extra: &[&str]) -> (String, String) {
    let extra_cols: String = extra.iter().map(|e| format!(", {e}")).collect();
    match level {
        Some(l) => (
            format!("GROUP BY year, {}{extra_cols}", l.code_column()),
            l.code_column().to_string(),
        ),
        None => {
            let sets = Level::ALL
                .iter()
                .map(|l| format!("(year, {}{extra_cols})", l.code_column()))
                .collect::<Vec<_>>()
                .join(", ");
            let code = Level::ALL
                .iter()
                .rev()
                .map(|l| l.code_column())
                .collect::<Vec<_>>()
                .join(", ");
            (
                format!("GROUP BY GROUPING SETS ({sets})"),
                format!("coalesce({code})"),
            )
        }
    }
}

fn years_sql(year: Option<i32>) -> String {
    match year {
        Some(y) => format!("SELECT CAST({y} AS INT) AS year"),
        None => "SELECT DISTINCT year FROM households".into(),
    }
}

/// Name of the integer roll-up column of `level` (`l1` province … `l5`
/// village), also the level's rank in [`level_rank_sql`].
fn int_column(level: Level) -> String {
    format!("l{}", level.rank())
}

/// Integer roll-up columns `l1` … `l5` (see [`int_column`]) of the BIGINT
/// code `v` of a unit whose own level has rank `rank` (1 = province …
/// 5 = village); a level below the unit's own is null, so a county's funds
/// count for its county, city and province but not as a "township".
fn int_levels(v: &str, rank: &str) -> String {
    Level::ALL
        .iter()
        .map(|l| {
            format!(
                "CASE WHEN {rank} >= {k} THEN {roll} END AS {col}",
                k = l.rank(),
                roll = roll_up_int_sql(v, *l),
                col = int_column(*l)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// How the year enters the keys of the metrics plan. With one year asked
/// for, every row has that year: rows are grouped and joined on the region
/// code alone and the year is put back as a constant — one integer key
/// hashes about twice as fast as (year, code) (BENCHMARKS.md). With every
/// year, the year is part of every key.
struct YearKey(Option<i32>);

impl YearKey {
    /// The `year` output column, from the (qualified) column `year`.
    fn column(&self, year: &str) -> String {
        match self.0 {
            Some(y) => format!("CAST({y} AS INT) AS year"),
            None => format!("{year} AS year"),
        }
    }

    /// The year's part of a key list: `"<year>, "` or nothing.
    fn key(&self, year: &str) -> String {
        match self.0 {
            Some(_) => String::new(),
            None => format!("{year}, "),
        }
    }

    /// The year's part of a join condition: `"a.year = b.year AND "` or nothing.
    fn on(&self, a: &str, b: &str) -> String {
        match self.0 {
            Some(_) => String::new(),
            None => format!("{a}.year = {b}.year AND "),
        }
    }

    /// A filter on a table's own `year` column: `"AND t.year = y"` or nothing.
    fn only(&self, table: &str) -> String {
        match self.0 {
            Some(y) => format!("AND {table}.year = {y}"),
            None => String::new(),
        }
    }
}

/// `GROUP BY` clause and the `code` expression over the integer level
/// columns of [`int_levels`]: one level, or GROUPING SETS over all five.
///
/// For one level, rows of units below it (a county's funds are no
/// township's) have a null level column and are dropped with `WHERE … IS
/// NOT NULL` — unless `every_row_has_level`: household rows always have
/// every level (a validated village code), and there the filter was pushed
/// down to the households scan, where it re-parsed every village code
/// (≈ 11 s of CPU for county metrics at 30 M households).
fn int_grouping(level: Option<Level>, yk: &YearKey, every_row_has_level: bool) -> (String, String) {
    let y = yk.key("year");
    match level {
        Some(l) if every_row_has_level => {
            let c = int_column(l);
            (format!("GROUP BY {y}{c}"), c)
        }
        Some(l) => {
            let c = int_column(l);
            (format!("WHERE {c} IS NOT NULL GROUP BY {y}{c}"), c)
        }
        None => {
            let sets = Level::ALL
                .iter()
                .map(|l| format!("({y}{})", int_column(*l)))
                .collect::<Vec<_>>()
                .join(", ");
            let code = Level::ALL
                .iter()
                .rev()
                .map(|l| int_column(*l))
                .collect::<Vec<_>>()
                .join(", ");
            (
                format!("GROUP BY GROUPING SETS ({sets})"),
                format!("coalesce({code})"),
            )
        }
    }
}

/// Every level (`level = None`): one CTE per median part (`med_<part>`)
/// with every region's median at every level, taken from the household
/// rows `h` by `level_medians` — each pair held once, where rolling the
/// villages' pairs up with GROUPING SETS held one copy per level (BENCHMARKS.md)
/// — and the joins that bring them to the output rows `r` × `y`.
/// Nothing for one level (its median is taken per region in `hv`).
fn level_medians(level: Option<Level>, yk: &YearKey) -> (String, String) {
    if level.is_some() {
        return (String::new(), String::new());
    }
    let group = match yk.0 {
        Some(_) => String::new(),
        None => "GROUP BY year".to_string(),
    };
    let mut ctes = String::new();
    let mut joins = String::new();
    for p in parts_of(Source::Households) {
        let Agg::Median { value, weight } = p.agg else {
            continue;
        };
        let n = p.name;
        ctes.push_str(&format!(
            ", med_{n} AS ( \
               SELECT {year}, m['code'] AS code, m['median'] AS {n} FROM ( \
                 SELECT {key}unnest(ms) AS m FROM ( \
                   SELECT {key}level_medians(v, {value}, {weight}) AS ms FROM h {group})))",
            year = yk.column("year"),
            key = yk.key("year"),
        ));
        joins.push_str(&format!(
            " LEFT JOIN med_{n} ON med_{n}.code = r.v AND med_{n}.year = y.year"
        ));
    }
    (ctes, joins)
}

/// SQL of `metrics(year, level)` reading the household facts from `facts`
/// — a table name or a parenthesised query with the columns of
/// `household_facts` (such as [`crate::facts::household_facts_of_year_sql`]);
/// `year = None` gives every year of the registry (used by the facts
/// views), `level = None` every level. `with_members`: the dataset has a
/// `members` table (else `migrant_workers` is null).
pub(crate) fn metrics_sql(
    facts: &str,
    year: Option<i32>,
    level: Option<Level>,
    with_members: bool,
) -> String {
    let year_filter = year
        .map(|y| format!("WHERE f.year = {y}"))
        .unwrap_or_default();
    let yk = YearKey(year);
    let (group, code) = int_grouping(level, &yk, false);
    let (hgroup, _) = int_grouping(level, &yk, true);
    // The household rows are first aggregated to: the village when every
    // level is wanted (rolled up from there), else the wanted level itself
    // — one group per region, so its median is taken directly over its
    // households and no (income, size) pairs are carried.
    let unit = |village: &str| match level {
        None => village.to_string(),
        Some(l) => roll_up_int_sql(village, l),
    };
    let has_table = |t: &str| t != "members" || with_members;
    let (median_ctes, median_joins) = level_medians(level, &yk);
    format!(
        "WITH years AS ({years}), \
         h AS ( \
           SELECT f.year, {unit} AS v, f.household_id, f.size, f.status, \
             f.{POOR} AS poor, \
             f.exit_year, f.net_income, f.per_capita_net_income AS pcy, f.poverty_line AS z \
           FROM {facts} f {year_filter}), \
         hv AS ( \
           SELECT {hv_year}, v, {hv_parts} \
           FROM (SELECT *, (z - pcy) / z AS gap FROM h) GROUP BY {hv_key}v), \
         mv AS ( \
           SELECT {hv_year}, v, {mv_parts} FROM ( \
             SELECT m.year, {m_unit} AS v FROM {members} m \
             WHERE m.migrant_months >= 6 {m_only}) \
           GROUP BY {hv_key}v), \
         av AS ( \
           SELECT {hv_year}, v, {av_parts} FROM ( \
             SELECT DISTINCT {a_key}{a_unit} AS v, a.{HOUSEHOLD_ROW} FROM {assistance} a \
             WHERE a.{LINK_POOR} {a_only}) \
           GROUP BY {hv_key}v), \
         uv AS ( \
           SELECT hv.*{mv_extras}{av_extras}, {levels_hh} \
           FROM hv LEFT JOIN mv ON {mvhv_on}mv.v = hv.v \
           LEFT JOIN av ON {avhv_on}av.v = hv.v), \
         hstats AS ( \
           SELECT {hv_year}, {code} AS code, {roll_up} \
           FROM uv {hgroup}), \
         rl AS ( /* TRY_CAST: see links::household_expr */ \
           SELECT code, name, rural_population, poor_village, poor_county, exit_year, level, \
             TRY_CAST(code AS BIGINT) AS v, {rank} AS rank \
           FROM (SELECT *, {level_of} AS level FROM regions)), \
         vstats AS ( \
           SELECT {hv_year}, {code} AS code, {village_parts} \
           FROM (SELECT y.year, rl.rural_population, rl.poor_village, rl.exit_year, {levels_rl} \
                 FROM rl CROSS JOIN years y WHERE rl.rank = 5) {group}), \
         cstats AS ( \
           SELECT {hv_year}, {code} AS code, {county_parts} \
           FROM (SELECT y.year, rl.poor_county, rl.exit_year, {levels_rl} \
                 FROM rl CROSS JOIN years y WHERE rl.rank = 3) {group}), \
         fstats AS ( \
           SELECT {hv_year}, {code} AS code, {fund_parts} \
           FROM (SELECT f.year, f.allocated, f.disbursed, {levels_rl} \
                 FROM funds f JOIN rl ON f.region_code = rl.code {year_filter}) {group}) \
         {median_ctes} \
         SELECT r.level, r.code, r.name, y.year, {values} \
         FROM rl r CROSS JOIN years y \
         LEFT JOIN hstats h ON h.code = r.v AND h.year = y.year \
         LEFT JOIN vstats v ON v.code = r.v AND v.year = y.year \
         LEFT JOIN cstats c ON c.code = r.v AND c.year = y.year \
         LEFT JOIN fstats fs ON fs.code = r.v AND fs.year = y.year{median_joins} \
         WHERE r.level IN ({levels}) \
         ORDER BY y.year, r.rank, r.code",
        years = years_sql(year),
        unit = unit("TRY_CAST(f.village_code AS BIGINT)"),
        hv_year = yk.column("year"),
        hv_key = yk.key("year"),
        hv_parts = first_aggregates(Source::Households, level),
        mv_parts = first_aggregates(Source::MigrantMembers, level),
        av_parts = first_aggregates(Source::AssistedPoorHouseholds, level),
        mv_extras = unit_extras(Source::MigrantMembers, "mv"),
        av_extras = unit_extras(Source::AssistedPoorHouseholds, "av"),
        roll_up = roll_up_aggregates(level),
        village_parts = first_aggregates(Source::Villages, level),
        county_parts = first_aggregates(Source::Counties, level),
        fund_parts = first_aggregates(Source::Funds, level),
        values = metric_values(&has_table),
        members = linked_name("members"),
        m_unit = unit(&format!("m.{VILLAGE}")),
        m_only = yk.only("m"),
        assistance = linked_name("assistance"),
        a_key = yk.key("a.year"),
        a_unit = unit(&format!("a.{VILLAGE}")),
        a_only = yk.only("a"),
        mvhv_on = yk.on("mv", "hv"),
        avhv_on = yk.on("av", "hv"),
        levels_hh = int_levels("hv.v", "5"),
        levels_rl = int_levels("rl.v", "rl.rank"),
        level_of = level_sql("code"),
        rank = level_rank_sql("level"),
        levels = levels_list(level),
    )
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    /// Columns of the relations the final select joins, which a part name
    /// must not repeat (it is referenced unqualified).
    const JOINED: &[&str] = &[
        "code",
        "name",
        "rural_population",
        "poor_village",
        "poor_county",
        "exit_year",
        "level",
        "v",
        "rank",
        "year",
    ];

    #[test]
    fn part_and_metric_names_are_unique_and_unambiguous() {
        let mut parts = HashSet::new();
        for p in METRICS.iter().flat_map(|m| m.parts.iter()) {
            assert!(parts.insert(p.name), "part {} defined twice", p.name);
            assert!(!JOINED.contains(&p.name), "part {} clashes", p.name);
        }
        let mut metrics = HashSet::new();
        for m in METRICS {
            assert!(metrics.insert(m.name), "metric {} defined twice", m.name);
        }
        assert_eq!(METRICS.len(), 23);
    }

    #[test]
    fn every_value_names_only_known_parts() {
        // A value may use parts of its own entry or of entries above it.
        let mut known: HashSet<&str> = HashSet::new();
        for m in METRICS {
            known.extend(m.parts.iter().map(|p| p.name));
            let words = m
                .value
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|w| w.contains('_') || w.ends_with("num"));
            for w in words {
                assert!(known.contains(w), "{} uses unknown part {w}", m.name);
            }
        }
    }

    #[test]
    fn every_metric_name_is_reserved_in_region_inputs() {
        // A region column with a metric's name would clash in the facts
        // views; loading renames it (schema::REGION_DERIVED).
        for m in METRICS.iter().filter(|m| m.name != "rural_population") {
            assert!(
                crate::schema::REGION_DERIVED.contains(&m.name),
                "{} missing from REGION_DERIVED",
                m.name
            );
        }
    }

    #[test]
    fn without_members_migrants_are_null() {
        let with = metrics_sql("household_facts", Some(2016), None, true);
        let without = metrics_sql("household_facts", Some(2016), None, false);
        assert!(with.contains("coalesce(migrants, 0) AS migrant_workers"));
        assert!(without.contains("CAST(NULL AS BIGINT) AS migrant_workers"));
    }
}
