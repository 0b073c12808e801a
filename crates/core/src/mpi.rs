//! Multidimensional poverty (Alkire–Foster, as OPHI's mpitb) over a
//! household rule set's indicators (DESIGN §9): [`Engine::mpi`].
//!
//! Each indicator of the rule set is a dimension: a household is deprived
//! in it when its `pass_<key>` is false (the same compiled condition the
//! exit evaluation uses). Weights are the indicators' `weight`, else their
//! points, normalised to sum 1 ([`RuleSet::mpi_weights`]). A household
//! with any unknown indicator is left out and counted
//! (`excluded_households`). Everything is person-weighted by `size`:
//!
//! - deprivation score c = Σ w_j d_j; poor at cut-off k iff c ≥ k − 1e-9
//!   (so k = 0.5 takes a score of exactly one half whatever the float
//!   order); censored score c(k) = c if poor, else 0;
//! - `H` = poor persons / persons, `A` = Σ size·c(k) / poor persons (null
//!   without poor), `M0` = H·A = Σ size·c(k) / persons;
//! - `uncensored_<key>` = Σ size·d_j / persons, `censored_<key>` =
//!   Σ size·d_j·[poor] / persons, `contribution_<key>` =
//!   w_j·censored_<key> / M0 (null when M0 = 0); the contributions add up
//!   to 1.
//!
//! One row per region (at a level, or every level in one GROUPING SETS
//! query) and cut-off, every region listed (a region without households
//! has population 0 and null ratios). Sums of scores are exact DECIMAL
//! sums, so results do not depend on partitioning.
//!
//! ```no_run
//! # async fn run(engine: tuopin::Engine) -> tuopin::Result<()> {
//! use tuopin::{Level, RuleSet};
//! let hebei = RuleSet::builtin("hebei-2016")?;
//! let by_city = engine.mpi(&hebei, 2016, Some(Level::City), &[1.0 / 3.0, 0.5]).await?;
//! # Ok(()) }
//! ```

use datafusion::common::JoinType;
use datafusion::functions::math::expr_fn::power;
use datafusion::logical_expr::{col, ident, lit, when, Expr};
use datafusion::prelude::DataFrame;

use crate::codes::{level_rank_sql, roll_up_sql, Level};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::metrics::{grouping, levels_list, EXACT_SHARE};
use crate::rules::{RuleSet, Unit};

/// The tolerance of the cut-off comparison (DESIGN §9).
const K_TOLERANCE: f64 = 1e-9;

impl Engine {
    /// The Alkire–Foster multidimensional poverty index of `year` under the
    /// household rule set `rules`, at `level` (`None`: every level) for
    /// each cut-off in `ks` (each in (0, 1]). See [`crate::mpi`].
    pub async fn mpi(
        &self,
        rules: &RuleSet,
        year: i32,
        level: Option<Level>,
        ks: &[f64],
    ) -> Result<DataFrame> {
        if rules.unit != Unit::Household {
            return Err(Error::rule(
                &rules.name,
                None,
                "the multidimensional poverty index needs a household rule set",
            ));
        }
        if ks.is_empty() {
            return Err(Error::InvalidArgument(
                "mpi needs at least one cut-off k".into(),
            ));
        }
        if let Some(k) = ks
            .iter()
            .find(|k| !(k.is_finite() && **k > 0.0 && **k <= 1.0))
        {
            return Err(Error::InvalidArgument(format!(
                "cut-off k must be in (0, 1], got {k}"
            )));
        }
        self.check_year(year).await?;
        let facts = self.household_facts_of(year).await?;
        // Compile first: a bad `when` is an error naming its indicator, and
        // a compiled one is a single scalar expression over the facts.
        let schema = self.sql(&facts).await?.schema().clone();
        rules.compile(&self.context().state(), &schema)?;
        let weights = rules.mpi_weights()?;
        self.sql(&mpi_sql(&facts, rules, &weights, year, level, ks))
            .await
    }
}

impl Engine {
    /// How the index changed between `from_year` and `to_year` (DESIGN
    /// §9): per region at `level` (`None`: every level), for cut-off `k`,
    /// `level`, `code`, `name`, `k`, `from_year`, `to_year` and, for each
    /// of `H`, `A`, `M0`: `<m>_from`, `<m>_to`, `<m>_abs` = to − from,
    /// `<m>_rel` = to / from − 1 and `<m>_ann` = (to / from)^(1 / years) − 1
    /// (both null when from is 0 or null).
    pub async fn mpi_change(
        &self,
        rules: &RuleSet,
        from_year: i32,
        to_year: i32,
        level: Option<Level>,
        k: f64,
    ) -> Result<DataFrame> {
        if to_year <= from_year {
            return Err(Error::InvalidArgument(format!(
                "mpi_change needs from_year < to_year, got {from_year} and {to_year}"
            )));
        }
        let side = |df: DataFrame, suffix: &str, keep_names: bool| -> Result<DataFrame> {
            let mut cols: Vec<Expr> = Vec::new();
            if keep_names {
                cols.extend(["level", "code", "name", "k"].map(col));
            } else {
                cols.push(col("code").alias("code_to"));
                cols.push(col("k").alias("k_to"));
            }
            for m in MEASURES {
                cols.push(ident(m).alias(format!("{m}_{suffix}")));
            }
            Ok(df.select(cols)?)
        };
        let from = side(self.mpi(rules, from_year, level, &[k]).await?, "from", true)?;
        let to = side(self.mpi(rules, to_year, level, &[k]).await?, "to", false)?;
        let joined = from.join(
            to,
            JoinType::Inner,
            &["code", "k"],
            &["code_to", "k_to"],
            None,
        )?;
        let years = f64::from(to_year) - f64::from(from_year);
        let mut out: Vec<Expr> = ["level", "code", "name", "k"].map(col).to_vec();
        out.push(lit(from_year).alias("from_year"));
        out.push(lit(to_year).alias("to_year"));
        for m in MEASURES {
            let (a, b) = (ident(format!("{m}_from")), ident(format!("{m}_to")));
            let ratio = when(a.clone().gt(lit(0.0)), b.clone() / a.clone()).end()?;
            out.push(a.clone().alias(format!("{m}_from")));
            out.push(b.clone().alias(format!("{m}_to")));
            out.push((b - a).alias(format!("{m}_abs")));
            out.push((ratio.clone() - lit(1.0)).alias(format!("{m}_rel")));
            out.push((power(ratio, lit(1.0 / years)) - lit(1.0)).alias(format!("{m}_ann")));
        }
        Ok(joined
            .select(out)?
            .sort(vec![col("code").sort(true, false)])?)
    }
}

/// The measures `mpi_change` compares.
const MEASURES: [&str; 3] = ["H", "A", "M0"];

/// A DOUBLE literal that reads back as exactly `v`.
fn double(v: f64) -> String {
    format!("CAST({v:?} AS DOUBLE)")
}

/// SQL of the index over the household facts query `facts` (DESIGN §9).
fn mpi_sql(
    facts: &str,
    rules: &RuleSet,
    weights: &[f64],
    year: i32,
    level: Option<Level>,
    ks: &[f64],
) -> String {
    let n = rules.indicators.len();
    // Each condition on lines of its own, so a trailing `--` comment in a
    // rule cannot reach past it (it parsed as one whole expression).
    let passes = rules
        .indicators
        .iter()
        .enumerate()
        .map(|(j, ind)| format!("(\n{}\n) AS p{j}", ind.when))
        .collect::<Vec<_>>()
        .join(", ");
    let known = (0..n)
        .map(|j| format!("p{j} IS NOT NULL"))
        .collect::<Vec<_>>()
        .join(" AND ");
    let deprived = (0..n)
        .map(|j| format!("CASE WHEN p{j} THEN 0 ELSE 1 END AS d{j}"))
        .collect::<Vec<_>>()
        .join(", ");
    let score = (0..n)
        .map(|j| format!("{} * d{j}", double(weights[j])))
        .collect::<Vec<_>>()
        .join(" + ");
    // One pass over the households, grouped per village, with sums for
    // each cut-off k_i (no cross join of millions of rows with the
    // cut-offs); then the village rows are unpivoted over the cut-offs
    // and the levels above summed from them (GROUPING SETS over tens of
    // thousands of village rows).
    let k_count = ks.len();
    let ks_sql = ks
        .iter()
        .enumerate()
        .map(|(i, k)| format!("({i}, {})", double(*k)))
        .collect::<Vec<_>>()
        .join(", ");
    // Per household: its size, 0/1 for known and for poor at each k, and
    // size·d_j, size·score; the village sums are then products with those
    // 0/1 columns — plain arithmetic, no FILTER per aggregate. (A village
    // without poor sums to 0 where FILTER gave NULL; the outputs, which
    // treat 0 and NULL alike — ratios only over positive denominators —
    // do not change.)
    let mut flags = vec![
        "CAST(size AS BIGINT) AS s".to_string(),
        "CAST(known AS BIGINT) AS kn".to_string(),
        format!("CAST(size * score AS {EXACT_SHARE}) AS ss"),
    ];
    for (i, k) in ks.iter().enumerate() {
        flags.push(format!(
            "CAST(known AND score >= {} - {} AS BIGINT) AS q{i}",
            double(*k),
            double(K_TOLERANCE)
        ));
    }
    for j in 0..n {
        flags.push(format!("CAST(size AS BIGINT) * d{j} AS sd{j}"));
    }
    let per_household = flags.join(", ");
    let mut village_sums = vec![
        "sum(1 - kn) AS excluded".to_string(),
        "sum(s * kn) AS population".to_string(),
    ];
    for j in 0..n {
        village_sums.push(format!("sum(sd{j} * kn) AS u{j}"));
    }
    for i in 0..k_count {
        village_sums.push(format!("sum(s * q{i}) AS pp{i}"));
        village_sums.push(format!("sum(CASE WHEN q{i} = 1 THEN ss END) AS cs{i}"));
        for j in 0..n {
            village_sums.push(format!("sum(sd{j} * q{i}) AS c{j}_{i}"));
        }
    }
    let pick = |name: &dyn Fn(usize) -> String| {
        let arms: String = (0..k_count)
            .map(|i| format!(" WHEN {i} THEN {}", name(i)))
            .collect();
        format!("CASE ks.i{arms} END")
    };
    let mut per_k = vec![
        format!("{} AS poor_population", pick(&|i| format!("v.pp{i}"))),
        format!("{} AS censored_sum", pick(&|i| format!("v.cs{i}"))),
    ];
    for j in 0..n {
        per_k.push(format!("v.u{j} AS u{j}"));
        per_k.push(format!("{} AS c{j}", pick(&|i| format!("v.c{j}_{i}"))));
    }
    let resums = (0..n)
        .map(|j| format!("sum(u{j}) AS u{j}, sum(c{j}) AS c{j}"))
        .collect::<Vec<_>>()
        .join(", ");
    let (group, code) = grouping(level, &["k"]);
    // The village rows carry the text codes of the levels above, derived
    // from the village code.
    let rollups = [Level::Township, Level::County, Level::City, Level::Province]
        .iter()
        .map(|l| format!("{} AS {}", roll_up_sql("village_code", *l), l.code_column()))
        .collect::<Vec<_>>()
        .join(", ");
    let ratio = |num: &str, den: &str| {
        format!("CASE WHEN {den} > 0 THEN CAST({num} AS DOUBLE) / {den} END")
    };
    let mut columns = Vec::new();
    for (j, ind) in rules.indicators.iter().enumerate() {
        columns.push(format!(
            "{} AS \"uncensored_{}\"",
            ratio(&format!("coalesce(a.u{j}, 0)"), "a.population"),
            ind.key
        ));
    }
    for (j, ind) in rules.indicators.iter().enumerate() {
        columns.push(format!(
            "{} AS \"censored_{}\"",
            ratio(&format!("coalesce(a.c{j}, 0)"), "a.population"),
            ind.key
        ));
    }
    for (j, ind) in rules.indicators.iter().enumerate() {
        // w_j · censored_j / M0 = w_j · Σ size·d_j·[poor] / Σ size·c(k).
        columns.push(format!(
            "CASE WHEN a.censored_sum > 0 THEN {} * CAST(coalesce(a.c{j}, 0) AS DOUBLE) \
             / CAST(a.censored_sum AS DOUBLE) END AS \"contribution_{}\"",
            double(weights[j]),
            ind.key
        ));
    }
    format!(
        "WITH f AS (SELECT size, village_code, year, {passes} FROM ({facts}) fx), \
         h AS (SELECT *, ({known}) AS known FROM f), \
         d AS (SELECT *, {deprived} FROM h), \
         c AS (SELECT *, ({score}) AS score FROM d), \
         p AS (SELECT *, {per_household} FROM c), \
         v AS (SELECT year, village_code, {village_sums} \
           FROM p GROUP BY year, village_code), \
         ks AS (SELECT column1 AS i, column2 AS k FROM (VALUES {ks_sql})), \
         vk AS (SELECT v.year, v.village_code, ks.k, v.excluded, v.population, {per_k}, {rollups} \
           FROM v CROSS JOIN ks), \
         agg AS (SELECT {code} AS code, k, sum(excluded) AS excluded, \
             sum(population) AS population, sum(poor_population) AS poor_population, \
             sum(censored_sum) AS censored_sum, {resums} \
           FROM vk {group}) \
         SELECT r.level, r.code, r.name, CAST({year} AS INT) AS year, ks.k, \
           coalesce(a.population, 0) AS population, \
           coalesce(a.excluded, 0) AS excluded_households, \
           {h} AS \"H\", \
           {a} AS \"A\", \
           {m0} AS \"M0\", \
           {columns} \
         FROM region_facts r CROSS JOIN ks \
         LEFT JOIN agg a ON a.code = r.code AND a.k = ks.k \
         WHERE r.level IN ({levels}) \
         ORDER BY {rank}, r.code, ks.k",
        village_sums = village_sums.join(", "),
        per_k = per_k.join(", "),
        h = ratio("coalesce(a.poor_population, 0)", "a.population"),
        a = ratio("a.censored_sum", "a.poor_population"),
        m0 = ratio("coalesce(a.censored_sum, 0)", "a.population"),
        columns = columns.join(", "),
        levels = levels_list(level),
        rank = level_rank_sql("r.level"),
    )
}
