//! `transitions(year, level)`: each household of the year's snapshot
//! against the previous year's (DESIGN §4).

use super::{grouping, levels_list};
use crate::codes::{level_rank_sql, Level};
use crate::schema::POOR;

/// SQL of `transitions(year, level)`: households of the year's snapshot
/// compared with the previous year's: `newly_identified` (identified_year =
/// year), `exited` (poor or returned before, exited now), `returned`
/// (exited before, poor or returned now), `still_poor` (poor or returned in
/// both), and `not_in_previous` (no row the year before).
pub(crate) fn transitions_sql(year: i32, prev: i32, level: Option<Level>) -> String {
    let (group, code) = grouping(level, &[]);
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
        order = level_rank_sql("r.level"),
    )
}
