//! Every metric of DESIGN §4, each defined once: its output column, the
//! parts it adds up (with where they come from), and its value over those
//! parts. The plan in [`super`] is generated from this table; to add a
//! metric, add an entry here (and a test of its value).
//!
//! The rows a part aggregates (see [`Source`]):
//! - households of the year: `year`, `v` (the unit), `household_id`,
//!   `size`, `status`, `poor`, `exit_year`, `net_income`, `pcy` (per-capita
//!   net income), `z` (poverty line), `gap` = (z − pcy) / z;
//! - villages (`rural_population`, `poor_village`, `exit_year`) and
//!   counties (`poor_county`, `exit_year`) of `regions`, each year;
//! - funds (`allocated`, `disbursed`) of the year;
//! - migrant members and assisted poor households, counted per unit.
//!
//! A value names parts (unqualified) and may use the parts of entries
//! above it. `{money}` and `{share}` stand for the exact DECIMAL types of
//! sums of money and of shares (see [`super::EXACT_MONEY`]).

use super::{Metric, Part, Source};

/// The metrics, in output order (after `level`, `code`, `name`, `year`).
pub(crate) const METRICS: &[Metric] = &[
    Metric::new(
        "rural_population",
        &[Part::sum(
            "rural_population_sum",
            Source::Villages,
            "sum(rural_population)",
        )],
        "rural_population_sum",
    ),
    Metric::new(
        "registered_households",
        &[Part::sum(
            "registered_households",
            Source::Households,
            "count(*)",
        )],
        "coalesce(registered_households, 0)",
    ),
    Metric::new(
        "registered_population",
        &[Part::sum(
            "registered_population",
            Source::Households,
            "sum(size)",
        )],
        "coalesce(registered_population, 0)",
    ),
    Metric::new(
        "poor_households",
        &[Part::sum(
            "poor_households",
            Source::Households,
            "count(*) FILTER (WHERE poor)",
        )],
        "coalesce(poor_households, 0)",
    ),
    Metric::new(
        "poor_population",
        &[Part::sum(
            "poor_population",
            Source::Households,
            "sum(size) FILTER (WHERE poor)",
        )],
        "coalesce(poor_population, 0)",
    ),
    Metric::new(
        "exited_households",
        &[Part::sum(
            "exited_households",
            Source::Households,
            "count(*) FILTER (WHERE exit_year = year)",
        )],
        "coalesce(exited_households, 0)",
    ),
    Metric::new(
        "exited_population",
        &[Part::sum(
            "exited_population",
            Source::Households,
            "sum(size) FILTER (WHERE exit_year = year)",
        )],
        "coalesce(exited_population, 0)",
    ),
    Metric::new(
        "returned_households",
        &[Part::sum(
            "returned_households",
            Source::Households,
            "count(*) FILTER (WHERE status = 'returned')",
        )],
        "coalesce(returned_households, 0)",
    ),
    Metric::new(
        "poverty_incidence",
        &[],
        "CASE WHEN rural_population_sum > 0 THEN \
         CAST(coalesce(poor_population, 0) AS DOUBLE) / rural_population_sum END",
    ),
    Metric::new(
        "mean_income",
        &[
            Part::sum(
                "income_sum",
                Source::Households,
                "sum(CAST(net_income AS {money}))",
            ),
            Part::sum(
                "income_persons",
                Source::Households,
                "sum(size) FILTER (WHERE net_income IS NOT NULL)",
            ),
        ],
        "CASE WHEN income_persons > 0 THEN CAST(income_sum AS DOUBLE) / income_persons END",
    ),
    Metric::new(
        "median_income",
        &[Part::median(
            "median_income",
            Source::Households,
            "pcy",
            "CAST(size AS BIGINT)",
        )],
        "median_income",
    ),
    Metric::new(
        "fgt0",
        &[
            Part::sum(
                "fgt_persons",
                Source::Households,
                "sum(size) FILTER (WHERE pcy IS NOT NULL AND z IS NOT NULL)",
            ),
            Part::sum(
                "fgt0_num",
                Source::Households,
                "sum(size) FILTER (WHERE pcy < z)",
            ),
        ],
        "CASE WHEN fgt_persons > 0 THEN CAST(coalesce(fgt0_num, 0) AS DOUBLE) / fgt_persons END",
    ),
    Metric::new(
        "fgt1",
        &[Part::sum(
            "fgt1_num",
            Source::Households,
            "sum(CAST(size * gap AS {share})) FILTER (WHERE pcy < z)",
        )],
        "CASE WHEN fgt_persons > 0 THEN CAST(coalesce(fgt1_num, 0) AS DOUBLE) / fgt_persons END",
    ),
    Metric::new(
        "fgt2",
        &[Part::sum(
            "fgt2_num",
            Source::Households,
            "sum(CAST(size * gap * gap AS {share})) FILTER (WHERE pcy < z)",
        )],
        "CASE WHEN fgt_persons > 0 THEN CAST(coalesce(fgt2_num, 0) AS DOUBLE) / fgt_persons END",
    ),
    Metric::new(
        "poor_villages",
        &[Part::sum(
            "poor_villages",
            Source::Villages,
            "sum(CASE WHEN poor_village THEN 1 ELSE 0 END)",
        )],
        "coalesce(poor_villages, 0)",
    ),
    Metric::new(
        "poor_villages_remaining",
        &[Part::sum(
            "poor_villages_remaining",
            Source::Villages,
            "sum(CASE WHEN poor_village AND (exit_year IS NULL OR exit_year > year) THEN 1 ELSE 0 END)",
        )],
        "coalesce(poor_villages_remaining, 0)",
    ),
    Metric::new(
        "poor_counties",
        &[Part::sum(
            "poor_counties",
            Source::Counties,
            "sum(CASE WHEN poor_county IS NOT NULL THEN 1 ELSE 0 END)",
        )],
        "coalesce(poor_counties, 0)",
    ),
    Metric::new(
        "poor_counties_remaining",
        &[Part::sum(
            "poor_counties_remaining",
            Source::Counties,
            "sum(CASE WHEN poor_county IS NOT NULL AND (exit_year IS NULL OR exit_year > year) THEN 1 ELSE 0 END)",
        )],
        "coalesce(poor_counties_remaining, 0)",
    ),
    Metric::new(
        "migrant_workers",
        &[Part::sum("migrants", Source::MigrantMembers, "count(*)")],
        "coalesce(migrants, 0)",
    )
    .needs("members", "CAST(NULL AS BIGINT)"),
    Metric::new(
        "assisted_share",
        &[Part::sum(
            "assisted_poor",
            Source::AssistedPoorHouseholds,
            "count(*)",
        )],
        "CASE WHEN poor_households > 0 THEN CAST(assisted_poor AS DOUBLE) / poor_households END",
    ),
    Metric::new(
        "funds_allocated",
        &[Part::sum(
            "allocated",
            Source::Funds,
            "CAST(sum(CAST(allocated AS {money})) AS DOUBLE)",
        )],
        "coalesce(allocated, 0.0)",
    ),
    Metric::new(
        "funds_disbursed",
        &[Part::sum(
            "disbursed",
            Source::Funds,
            "CAST(sum(CAST(disbursed AS {money})) AS DOUBLE)",
        )],
        "coalesce(disbursed, 0.0)",
    ),
    Metric::new(
        "disbursement_rate",
        &[],
        "CASE WHEN allocated > 0 THEN disbursed / allocated END",
    ),
];
