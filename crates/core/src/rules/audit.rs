//! The procedure audit of household exits (DESIGN §3): each flag defined
//! once, as a SQL predicate over a household's evaluation (its outcome
//! under the rule set) and the procedure columns it carries, with the
//! detail text of a flagged row. [`crate::Engine::audit`] runs them.
//!
//! The procedure is village review (村评议) → township audit (乡审核) →
//! county approval (县审定), by 31 December of the year.

/// Household columns the flags read besides the evaluation's.
pub(crate) const READS: &[&str] = &[
    "status",
    "exit_year",
    "exit_proposed",
    "village_reviewed_on",
    "township_audited_on",
    "county_approved_on",
];

/// One audit flag.
#[derive(Debug, Clone)]
pub(crate) struct Flag {
    /// The `flag` value of its rows.
    pub name: &'static str,
    /// SQL predicate: true for a flagged household.
    pub predicate: String,
    /// SQL expression of the `detail` text.
    pub detail: &'static str,
}

/// The flags of the audit of `year`.
pub(crate) fn flags(year: i32) -> Vec<Flag> {
    vec![
        Flag {
            // 错退 risk: approved although the rules say it may not exit.
            name: "approved_not_eligible",
            predicate: "county_approved_on IS NOT NULL AND outcome <> 'exit'".into(),
            detail: "concat('county approved on ', CAST(county_approved_on AS VARCHAR), ' but outcome is ', outcome)",
        },
        Flag {
            name: "eligible_not_proposed",
            predicate: "status = 'poor' AND outcome = 'exit' AND NOT coalesce(exit_proposed, false)"
                .into(),
            detail: "'outcome exit but not proposed for exit'",
        },
        Flag {
            name: "steps_out_of_order",
            predicate: "(township_audited_on IS NOT NULL AND village_reviewed_on IS NULL) \
                 OR (county_approved_on IS NOT NULL AND township_audited_on IS NULL) \
                 OR village_reviewed_on > township_audited_on \
                 OR township_audited_on > county_approved_on"
                .into(),
            detail: "concat('village ', coalesce(CAST(village_reviewed_on AS VARCHAR), '-'), ', township ', coalesce(CAST(township_audited_on AS VARCHAR), '-'), ', county ', coalesce(CAST(county_approved_on AS VARCHAR), '-'))",
        },
        Flag {
            name: "late_approval",
            predicate: format!("county_approved_on > CAST('{year}-12-31' AS DATE)"),
            detail: "concat('county approved on ', CAST(county_approved_on AS VARCHAR))",
        },
        Flag {
            name: "exited_without_approval",
            predicate: format!(
                "status = 'exited' AND exit_year = {year} AND county_approved_on IS NULL"
            ),
            detail: "'exited without county approval'",
        },
    ]
}
