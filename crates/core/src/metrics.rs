//! Metrics at every administrative level (DESIGN §4) and the village and
//! county facts the exit rules of those units read (DESIGN §3).
//!
//! Every metric is one SQL query over the registered tables, built here as
//! text from internal constants only (never from user input):
//!
//! - [`metrics_sql`]: household statistics (`hstats`), village and county
//!   designations (`vstats`, `cstats`) and funds (`fstats`) aggregated with
//!   `GROUP BY year, <level>_code` for one level or with `GROUPING SETS` for
//!   all five at once, left-joined onto every region of the level(s) so a
//!   region without households still has its row (counts 0, ratios null);
//! - [`causes_sql`], [`transitions_sql`];
//! - [`region_facts_sql`] (regions + level + roll-up codes + inherited
//!   `western`) and [`unit_facts_sql`] (`village_facts`, `county_facts`).
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
//! ```no_run
//! # async fn run(engine: tuopin::Engine) -> tuopin::Result<()> {
//! use tuopin::Level;
//! let cities = engine.metrics(2016, Some(Level::City)).await?.collect().await?;
//! let all = engine.metrics(2016, None).await?; // every level, one query
//! # Ok(()) }
//! ```

use crate::codes::{level_sql, roll_up_int_sql, roll_up_sql, Level};
use crate::engine::Engine;
use crate::links::{linked_name, HOUSEHOLD_ROW, POOR as LINK_POOR, VILLAGE};

/// A poor household: status `poor` or `returned` (DESIGN §4).
pub(crate) const POOR: &str = "status IN ('poor', 'returned')";

/// Sums of floating-point money and FGT terms are taken in DECIMAL: each
/// term is rounded once (to 1e-9 yuan, 1e-18 of a share), and the sum is
/// then exact, so results are identical run after run whatever order the
/// parallel partial aggregates merge in (a double sum is not associative).
const EXACT_MONEY: &str = "DECIMAL(38, 9)";
const EXACT_SHARE: &str = "DECIMAL(38, 18)";

fn levels_list(level: Option<Level>) -> String {
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
/// SETS over all five levels (with `extra` grouped in every set).
fn grouping(level: Option<Level>, extra: &[&str]) -> (String, String) {
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

fn level_order(column: &str) -> String {
    format!(
        "CASE {column} WHEN 'province' THEN 1 WHEN 'city' THEN 2 WHEN 'county' THEN 3 WHEN 'township' THEN 4 ELSE 5 END"
    )
}

/// `region_facts`: every region with its `level`, its roll-up codes
/// (`province_code` … `village_code`, null below its own level) and
/// `western` inherited from the nearest unit above that sets it.
pub fn region_facts_sql() -> String {
    let codes = Level::ALL
        .iter()
        .map(|l| {
            format!(
                "CASE WHEN {rank} >= {lr} THEN {roll} END AS {col}",
                rank = level_order("level"),
                lr = (*l as u8) + 1,
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

fn years_sql(year: Option<i32>) -> String {
    match year {
        Some(y) => format!("SELECT CAST({y} AS INT) AS year"),
        None => "SELECT DISTINCT year FROM households".into(),
    }
}

/// Name of the integer roll-up column of `level` (`l1` province … `l5`
/// village), also the level's rank in [`level_order`].
fn int_column(level: Level) -> String {
    format!("l{}", level as u8 + 1)
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
                k = *l as u8 + 1,
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

/// SQL of `metrics(year, level)`; `year = None` gives every year of the
/// registry (used by the facts views), `level = None` every level.
///
/// Plan shape (chosen from the profile, see BENCHMARKS.md): household rows
/// are aggregated once per village on an integer code; migrants and
/// assisted poor households are counted per village from the household
/// links of `members` and `assistance` ([`crate::links`]: the household's
/// village, poor flag and row number, found once by validation), so no
/// join on the text household key is made; the village rows — a few tens
/// of thousands — are then rolled up to every level with GROUPING SETS. The exact median does
/// not compose, so each village carries its (income, size) pairs
/// (`weighted_values`) and every level's median is taken over the merged
/// pairs of its villages (`weighted_median(pairs)`). For one level the
/// household rows are aggregated straight to that level's regions and the
/// median taken there (no pairs).
pub fn metrics_sql(engine: &Engine, year: Option<i32>, level: Option<Level>) -> String {
    metrics_sql_over(engine, "household_facts", year, level)
}

/// [`metrics_sql`] reading the household facts from `facts` — a table
/// name or a parenthesised query with the columns of `household_facts`
/// (such as [`crate::engine::household_facts_of_year_sql`]).
pub fn metrics_sql_over(
    engine: &Engine,
    facts: &str,
    year: Option<i32>,
    level: Option<Level>,
) -> String {
    let year_filter = year
        .map(|y| format!("WHERE f.year = {y}"))
        .unwrap_or_default();
    let yk = YearKey(year);
    let (group, code) = int_grouping(level, &yk, false);
    let (hgroup, _) = int_grouping(level, &yk, true);
    // The unit household rows are first aggregated to: the village when
    // every level is wanted (rolled up from there), else the wanted level
    // itself — one group per region, so its median is taken directly over
    // its households and no (income, size) pairs are carried.
    let unit = |village: &str| match level {
        None => village.to_string(),
        Some(l) => roll_up_int_sql(village, l),
    };
    let (incomes, median) = match level {
        None => (
            "weighted_values(pcy, CAST(size AS BIGINT)) AS incomes",
            "weighted_median(incomes)",
        ),
        Some(_) => (
            "weighted_median(pcy, CAST(size AS BIGINT)) AS median_income",
            "max(median_income)",
        ),
    };
    let migrants = if engine.has_table("members") {
        "coalesce(h.migrant_workers, 0)"
    } else {
        "CAST(NULL AS BIGINT)"
    };
    format!(
        "WITH years AS ({years}), \
         h AS ( \
           SELECT f.year, {unit} AS v, f.household_id, f.size, f.status, \
             f.{POOR} AS poor, \
             f.exit_year, f.net_income, f.per_capita_net_income AS pcy, f.poverty_line AS z \
           FROM {facts} f {year_filter}), \
         hv AS ( \
           SELECT {hv_year}, v, \
             count(*) AS registered_households, \
             sum(size) AS registered_population, \
             count(*) FILTER (WHERE poor) AS poor_households, \
             sum(size) FILTER (WHERE poor) AS poor_population, \
             count(*) FILTER (WHERE exit_year = year) AS exited_households, \
             sum(size) FILTER (WHERE exit_year = year) AS exited_population, \
             count(*) FILTER (WHERE status = 'returned') AS returned_households, \
             sum(CAST(net_income AS {EXACT_MONEY})) AS income_sum, \
             sum(size) FILTER (WHERE net_income IS NOT NULL) AS income_persons, \
             sum(size) FILTER (WHERE pcy IS NOT NULL AND z IS NOT NULL) AS fgt_persons, \
             sum(size) FILTER (WHERE pcy < z) AS fgt0_num, \
             sum(CAST(size * gap AS {EXACT_SHARE})) FILTER (WHERE pcy < z) AS fgt1_num, \
             sum(CAST(size * gap * gap AS {EXACT_SHARE})) FILTER (WHERE pcy < z) AS fgt2_num, \
             {incomes} \
           FROM (SELECT *, (z - pcy) / z AS gap FROM h) GROUP BY {hv_key}v), \
         mv AS ( \
           SELECT {hv_year}, v, count(*) AS migrants FROM ( \
             SELECT m.year, {m_unit} AS v FROM {members} m \
             WHERE m.migrant_months >= 6 {m_only}) \
           GROUP BY {hv_key}v), \
         av AS ( \
           SELECT {hv_year}, v, count(*) AS assisted_poor FROM ( \
             SELECT DISTINCT {a_key}{a_unit} AS v, a.{HOUSEHOLD_ROW} FROM {assistance} a \
             WHERE a.{LINK_POOR} {a_only}) \
           GROUP BY {hv_key}v), \
         uv AS ( \
           SELECT hv.*, coalesce(mv.migrants, 0) AS migrants, \
             coalesce(av.assisted_poor, 0) AS assisted_poor, {levels_hh} \
           FROM hv LEFT JOIN mv ON {mvhv_on}mv.v = hv.v \
           LEFT JOIN av ON {avhv_on}av.v = hv.v), \
         hstats AS ( \
           SELECT {hv_year}, {code} AS code, \
             sum(registered_households) AS registered_households, \
             sum(registered_population) AS registered_population, \
             sum(poor_households) AS poor_households, \
             sum(poor_population) AS poor_population, \
             sum(exited_households) AS exited_households, \
             sum(exited_population) AS exited_population, \
             sum(returned_households) AS returned_households, \
             sum(income_sum) AS income_sum, sum(income_persons) AS income_persons, \
             sum(fgt_persons) AS fgt_persons, sum(fgt0_num) AS fgt0_num, \
             sum(fgt1_num) AS fgt1_num, sum(fgt2_num) AS fgt2_num, \
             sum(migrants) AS migrant_workers, sum(assisted_poor) AS assisted_poor, \
             {median} AS median_income \
           FROM uv {hgroup}), \
         rl AS ( \
           SELECT code, name, rural_population, poor_village, poor_county, exit_year, level, \
             CAST(code AS BIGINT) AS v, {rank} AS rank \
           FROM (SELECT *, {level_of} AS level FROM regions)), \
         vstats AS ( \
           SELECT {hv_year}, {code} AS code, \
             sum(rural_population) AS rural_population, \
             sum(CASE WHEN poor_village THEN 1 ELSE 0 END) AS poor_villages, \
             sum(CASE WHEN poor_village AND (exit_year IS NULL OR exit_year > year) THEN 1 ELSE 0 END) AS poor_villages_remaining \
           FROM (SELECT y.year, rl.rural_population, rl.poor_village, rl.exit_year, {levels_rl} \
                 FROM rl CROSS JOIN years y WHERE rl.rank = 5) {group}), \
         cstats AS ( \
           SELECT {hv_year}, {code} AS code, \
             sum(CASE WHEN poor_county IS NOT NULL THEN 1 ELSE 0 END) AS poor_counties, \
             sum(CASE WHEN poor_county IS NOT NULL AND (exit_year IS NULL OR exit_year > year) THEN 1 ELSE 0 END) AS poor_counties_remaining \
           FROM (SELECT y.year, rl.poor_county, rl.exit_year, {levels_rl} \
                 FROM rl CROSS JOIN years y WHERE rl.rank = 3) {group}), \
         fstats AS ( \
           SELECT {hv_year}, {code} AS code, \
             CAST(sum(CAST(allocated AS {EXACT_MONEY})) AS DOUBLE) AS allocated, \
             CAST(sum(CAST(disbursed AS {EXACT_MONEY})) AS DOUBLE) AS disbursed \
           FROM (SELECT f.year, f.allocated, f.disbursed, {levels_rl} \
                 FROM funds f JOIN rl ON f.region_code = rl.code {year_filter}) {group}) \
         SELECT r.level, r.code, r.name, y.year, \
           v.rural_population, \
           coalesce(h.registered_households, 0) AS registered_households, \
           coalesce(h.registered_population, 0) AS registered_population, \
           coalesce(h.poor_households, 0) AS poor_households, \
           coalesce(h.poor_population, 0) AS poor_population, \
           coalesce(h.exited_households, 0) AS exited_households, \
           coalesce(h.exited_population, 0) AS exited_population, \
           coalesce(h.returned_households, 0) AS returned_households, \
           CASE WHEN v.rural_population > 0 THEN CAST(coalesce(h.poor_population, 0) AS DOUBLE) / v.rural_population END AS poverty_incidence, \
           CASE WHEN h.income_persons > 0 THEN CAST(h.income_sum AS DOUBLE) / h.income_persons END AS mean_income, \
           h.median_income, \
           CASE WHEN h.fgt_persons > 0 THEN CAST(coalesce(h.fgt0_num, 0) AS DOUBLE) / h.fgt_persons END AS fgt0, \
           CASE WHEN h.fgt_persons > 0 THEN CAST(coalesce(h.fgt1_num, 0) AS DOUBLE) / h.fgt_persons END AS fgt1, \
           CASE WHEN h.fgt_persons > 0 THEN CAST(coalesce(h.fgt2_num, 0) AS DOUBLE) / h.fgt_persons END AS fgt2, \
           coalesce(v.poor_villages, 0) AS poor_villages, \
           coalesce(v.poor_villages_remaining, 0) AS poor_villages_remaining, \
           coalesce(c.poor_counties, 0) AS poor_counties, \
           coalesce(c.poor_counties_remaining, 0) AS poor_counties_remaining, \
           {migrants} AS migrant_workers, \
           CASE WHEN h.poor_households > 0 THEN CAST(h.assisted_poor AS DOUBLE) / h.poor_households END AS assisted_share, \
           coalesce(fs.allocated, 0.0) AS funds_allocated, \
           coalesce(fs.disbursed, 0.0) AS funds_disbursed, \
           CASE WHEN fs.allocated > 0 THEN fs.disbursed / fs.allocated END AS disbursement_rate \
         FROM rl r CROSS JOIN years y \
         LEFT JOIN hstats h ON h.code = r.v AND h.year = y.year \
         LEFT JOIN vstats v ON v.code = r.v AND v.year = y.year \
         LEFT JOIN cstats c ON c.code = r.v AND c.year = y.year \
         LEFT JOIN fstats fs ON fs.code = r.v AND fs.year = y.year \
         WHERE r.level IN ({levels}) \
         ORDER BY y.year, r.rank, r.code",
        years = years_sql(year),
        unit = unit("CAST(f.village_code AS BIGINT)"),
        hv_year = yk.column("year"),
        hv_key = yk.key("year"),
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
        rank = level_order("level"),
        levels = levels_list(level),
    )
}

/// `village_facts` / `county_facts`: the region's row (with inherited
/// `western`), its metrics for every year, and the third-party assessment
/// rates `mistaken_exit_rate` (mistaken_exit findings / exited samples),
/// `missed_rate` (missed findings / non_registered samples) and
/// `recognition_rate` (recognized / answered).
pub fn unit_facts_sql(engine: &Engine, level: Level) -> String {
    let metrics = metrics_sql(engine, None, Some(level));
    let code = roll_up_sql("village_code", level);
    format!(
        "SELECT r.* EXCLUDE (rural_population), m.* EXCLUDE (level, code, name), \
           a.mistaken_exit_rate, a.missed_rate, a.recognition_rate \
         FROM ({metrics}) m JOIN region_facts r ON r.code = m.code \
         LEFT JOIN ( \
           SELECT year, {code} AS code, \
             CASE WHEN sum(CASE WHEN sample = 'exited' THEN 1 ELSE 0 END) > 0 THEN \
               CAST(sum(CASE WHEN sample = 'exited' AND finding = 'mistaken_exit' THEN 1 ELSE 0 END) AS DOUBLE) \
               / sum(CASE WHEN sample = 'exited' THEN 1 ELSE 0 END) END AS mistaken_exit_rate, \
             CASE WHEN sum(CASE WHEN sample = 'non_registered' THEN 1 ELSE 0 END) > 0 THEN \
               CAST(sum(CASE WHEN sample = 'non_registered' AND finding = 'missed' THEN 1 ELSE 0 END) AS DOUBLE) \
               / sum(CASE WHEN sample = 'non_registered' THEN 1 ELSE 0 END) END AS missed_rate, \
             CASE WHEN count(recognized) > 0 THEN \
               CAST(sum(CASE WHEN recognized THEN 1 ELSE 0 END) AS DOUBLE) / count(recognized) END AS recognition_rate \
           FROM assessments GROUP BY year, {code}) a ON a.code = m.code AND a.year = m.year"
    )
}

/// SQL of `causes(year, level)`: per region and primary cause, the
/// registered households and population of the year's snapshot, how many
/// of them are poor (`poor`/`returned`), and the cause's share of the
/// region's registered households. A null cause is its own group.
pub fn causes_sql(year: i32, level: Option<Level>) -> String {
    let (group, code) = grouping(level, &["primary_cause"]);
    let (tgroup, tcode) = grouping(level, &[]);
    format!(
        "WITH hh AS (SELECT * FROM household_facts WHERE year = {year}), \
         c AS (SELECT year, {code} AS code, primary_cause, count(*) AS households, \
                 sum(size) AS population, sum(CASE WHEN {POOR} THEN 1 ELSE 0 END) AS poor_households \
               FROM hh {group}), \
         t AS (SELECT year, {tcode} AS code, count(*) AS total FROM hh {tgroup}) \
         SELECT r.level, r.code, r.name, c.year, c.primary_cause, c.households, c.population, \
           c.poor_households, CAST(c.households AS DOUBLE) / t.total AS share \
         FROM c JOIN t ON c.code = t.code JOIN region_facts r ON r.code = c.code \
         WHERE r.level IN ({levels}) \
         ORDER BY {order}, r.code, c.households DESC, c.primary_cause",
        levels = levels_list(level),
        order = level_order("r.level"),
    )
}

/// SQL of `transitions(year, level)`: households of the year's snapshot
/// compared with the previous year's: `newly_identified` (identified_year =
/// year), `exited` (poor or returned before, exited now), `returned`
/// (exited before, poor or returned now), `still_poor` (poor or returned in
/// both), and `not_in_previous` (no row the year before).
pub fn transitions_sql(year: i32, level: Option<Level>) -> String {
    let (group, code) = grouping(level, &[]);
    let prev = year - 1;
    format!(
        "WITH j AS ( \
           SELECT f.*, p.status AS prev_status FROM household_facts f \
           LEFT JOIN (SELECT household_id, status FROM households WHERE year = {prev}) p \
             ON f.household_id = p.household_id \
           WHERE f.year = {year}), \
         t AS ( \
           SELECT year, {code} AS code, count(*) AS households, \
             sum(CASE WHEN identified_year = {year} THEN 1 ELSE 0 END) AS newly_identified, \
             sum(CASE WHEN prev_status IN ('poor', 'returned') AND status = 'exited' THEN 1 ELSE 0 END) AS exited, \
             sum(CASE WHEN prev_status = 'exited' AND {POOR} THEN 1 ELSE 0 END) AS returned, \
             sum(CASE WHEN prev_status IN ('poor', 'returned') AND {POOR} THEN 1 ELSE 0 END) AS still_poor, \
             sum(CASE WHEN prev_status IS NULL THEN 1 ELSE 0 END) AS not_in_previous \
           FROM j {group}) \
         SELECT r.level, r.code, r.name, CAST({year} AS INT) AS year, \
           coalesce(t.households, 0) AS households, \
           coalesce(t.newly_identified, 0) AS newly_identified, \
           coalesce(t.exited, 0) AS exited, \
           coalesce(t.returned, 0) AS returned, \
           coalesce(t.still_poor, 0) AS still_poor, \
           coalesce(t.not_in_previous, 0) AS not_in_previous \
         FROM region_facts r LEFT JOIN t ON t.code = r.code \
         WHERE r.level IN ({levels}) \
         ORDER BY {order}, r.code",
        levels = levels_list(level),
        order = level_order("r.level"),
    )
}
