//! `causes(year, level)`: households, population and share by primary
//! cause of poverty (DESIGN §4).

use super::{grouping, levels_list};
use crate::codes::{level_rank_sql, Level};
use crate::schema::POOR;

/// SQL of `causes(year, level)`: per region and primary cause, the
/// registered households and population of the year's snapshot, how many
/// of them are poor (`poor`/`returned`), and the cause's share of the
/// region's registered households. A null cause is its own group.
pub(crate) fn causes_sql(year: i32, level: Option<Level>) -> String {
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
        order = level_rank_sql("r.level"),
    )
}
