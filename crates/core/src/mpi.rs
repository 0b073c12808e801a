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
//!   Σ size·d_j·\[poor\] / persons, `contribution_<key>` =
//!   w_j·`censored_<key>` / M0 (null when M0 = 0); the contributions add up
//!   to 1.
//!
//! One row per region (at a level, or every level in one GROUPING SETS
//! query) and cut-off, every region listed (a region without households
//! has population 0 and null ratios). Every sum is an exact integer sum
//! (the censored score sum is Σ_j w_j times the integer persons deprived
//! in j among the poor), so results do not depend on partitioning.
//!
//! ```no_run
//! # async fn run(engine: tuopin::Engine) -> tuopin::Result<()> {
//! use tuopin::{Level, RuleSet};
//! let hebei = RuleSet::builtin("hebei-2016")?;
//! let by_city = engine.mpi(&hebei, 2016, Some(Level::City), &[1.0 / 3.0, 0.5]).await?;
//! # Ok(()) }
//! ```

use std::sync::Arc;

use datafusion::common::JoinType;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::execution::FunctionRegistry;
use datafusion::functions::math::expr_fn::power;
use datafusion::logical_expr::{col, ident, lit, when, Expr};
use datafusion::prelude::DataFrame;

use crate::catalog::REGIONS_IN_ORDER;
use crate::codes::Level;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::functions::deprivation::deprivation_sums_udaf;
use crate::functions::measures::mpi_measures_udf;
use crate::rules::{RuleSet, Unit};

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
        if rules.indicators.len() > MAX_INDICATORS {
            return Err(Error::rule(
                &rules.name,
                None,
                format!(
                    "the multidimensional poverty index takes at most {MAX_INDICATORS} \
                     indicators, this rule set has {}",
                    rules.indicators.len()
                ),
            ));
        }
        self.check_year(year).await?;
        // Compile first: a bad `when` is an error naming its indicator, and
        // a compiled one is a single scalar expression over the facts. The
        // year's facts have the view's columns: its schema is known without
        // planning `facts` a second time.
        let schema = self
            .context()
            .table(Unit::Household.facts_view())
            .await?
            .schema()
            .clone();
        let compiled = rules.compile(&self.context().state(), &schema)?;
        // Only the facts the index reads: the households' size and village,
        // and the columns the conditions name.
        // (In name order: the same SQL text for the same rules.)
        let named: std::collections::BTreeSet<&str> = compiled
            .iter()
            .flat_map(|e| e.column_refs())
            .map(|c| c.name.as_str())
            .collect();
        let mut columns: Vec<String> = vec!["size".into(), "village_code".into()];
        columns.extend(
            named
                .into_iter()
                .filter(|c| !["size", "village_code"].contains(c))
                .map(String::from),
        );
        let facts = self.household_facts_columns_of(year, &columns).await?;
        let weights = rules.mpi_weights()?;
        // The plan's own session state, with the sums function of this
        // index (its weights and cut-offs) registered on it alone.
        // Without DataFusion 55's leaf-expression pushdown (work in progress
        // upstream): it moves each `m['…']` field access of the output into
        // the projection that computes `m`, so `mpi_measures` would run once
        // per output column. The output unnests the struct instead of
        // reading its fields; the rules stay off for any field access.
        let base = self.context().state();
        let optimizers = base
            .optimizers()
            .iter()
            .filter(|r| !LEAF_PUSHDOWN.contains(&r.name()))
            .cloned()
            .collect();
        let mut state = SessionStateBuilder::new_from_existing(base)
            .with_optimizer_rules(optimizers)
            .build();
        state.register_udaf(Arc::new(deprivation_sums_udaf(&weights, ks)))?;
        let keys: Vec<String> = rules.indicators.iter().map(|i| i.key.clone()).collect();
        state.register_udf(Arc::new(mpi_measures_udf(&weights, ks, &keys)))?;
        // Regions come out in order of level and code from a join that
        // keeps the order of its probe side (the numbered regions, one
        // partition): the join is not swapped, not split by hash, and its
        // build side (the summed regions, at most a few million rows
        // nationally) is collected; nothing is round-robin repartitioned.
        let optimizer = &mut state.config_mut().options_mut().optimizer;
        optimizer.join_reordering = false;
        optimizer.enable_round_robin_repartition = false;
        optimizer.hash_join_single_partition_threshold_rows = 10_000_000;
        optimizer.hash_join_single_partition_threshold = 1 << 30;
        let sql = mpi_sql(&facts, rules, year, level);
        let plan = state.create_logical_plan(&sql).await?;
        Ok(DataFrame::new(state, plan))
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

/// The optimizer rules an index's plan goes without (see [`Engine::mpi`]).
const LEAF_PUSHDOWN: [&str; 2] = ["extract_leaf_expressions", "push_down_leaf_projections"];

/// The measures `mpi_change` compares.
const MEASURES: [&str; 3] = ["H", "A", "M0"];

/// The most indicators an index can have: a household's deprivations are
/// the bits of one BIGINT pattern (see [`mpi_sql`]).
pub(crate) const MAX_INDICATORS: usize = crate::functions::flags::MAX_FLAGS;

/// SQL of the index over the household facts query `facts` (DESIGN §9).
///
/// The plan, from the bottom:
/// 0. the year's facts, only the columns the conditions name with the
///    households' size and village ([`Engine::household_facts_columns_of`]);
/// 1. per village (on its code as a number, `region_code_number`: an
///    integer key groups the 1.2 M households faster than the text, and
///    costs less to read than `TRY_CAST`), `deprivation_sums` of each
///    household's deprivation pattern (`flag_mask` of the failed
///    indicators) and size: the integer sums of the index as one list per
///    village (see [`crate::functions::deprivation`]) — one aggregate over
///    the households, no score column per household;
/// 2. every wanted level at once: each village row is repeated for each
///    level with its code rolled up arithmetically (`code − code % 10^d`)
///    and its lists added up (`deprivation_sums(sums)`) on that one BIGINT
///    key (cheaper than GROUPING SETS over five key columns);
/// 3. every region of the wanted levels in output order (level, code),
///    read from the engine's [`REGIONS_IN_ORDER`] (numbered once per
///    engine, one ordered partition), joined to its sums (null for a
///    region without households) in that order, and `mpi_measures` of its
///    sums unnested: a row per cut-off, ascending. So the output is in
///    order of level, code and k without sorting its wide rows (`ORDER BY
///    seq` is met by the plan's order; a region's cut-offs keep the order
///    of its list). Exact integer sums, so results do not depend on
///    partitioning.
fn mpi_sql(facts: &str, rules: &RuleSet, year: i32, level: Option<Level>) -> String {
    let n = rules.indicators.len();
    let list = |items: &mut dyn Iterator<Item = String>| items.collect::<Vec<_>>().join(", ");
    // Each condition on lines of its own, so a trailing `--` comment in a
    // rule cannot reach past it (it parsed as one whole expression).
    let passes = list(
        &mut rules
            .indicators
            .iter()
            .enumerate()
            .map(|(j, ind)| format!("(\n{}\n) AS p{j}", ind.when)),
    );
    // Null when any indicator is unknown (`flag_mask`: from the bitmaps).
    let pattern = format!(
        "flag_mask({})",
        list(&mut (0..n).map(|j| format!("NOT p{j}")))
    );
    let wanted: Vec<Level> = match level {
        Some(l) => vec![l],
        None => Level::ALL.to_vec(),
    };
    let moduli = list(
        &mut wanted
            .iter()
            .map(|l| format!("(CAST({} AS BIGINT))", l.code_unit())),
    );
    let mut measures = vec![
        "k".to_string(),
        "population".to_string(),
        "excluded_households".to_string(),
    ];
    measures.extend(["H", "A", "M0"].map(String::from));
    for prefix in ["uncensored", "censored", "contribution"] {
        measures.extend(
            rules
                .indicators
                .iter()
                .map(|i| format!("{prefix}_{}", i.key)),
        );
    }
    // The first three are never null; `coalesce` says so to the schema
    // (an unnested field is nullable).
    // The measures unnested twice (the list of cut-offs, then each one's
    // struct) come out as columns of their own: no `m['…']` field access,
    // whose struct-typed input DataFusion re-examined for every output
    // column at each planning step (5 ms of planning).
    let columns = list(&mut measures.iter().enumerate().map(|(i, m)| {
        let field = format!("\"UNNEST(mpi_measures(rs.sums)).{m}\"");
        if i < 3 {
            format!("coalesce({field}, 0) AS \"{m}\"")
        } else {
            format!("{field} AS \"{m}\"")
        }
    }));
    // Every level: the whole table, no filter.
    let only = match level {
        Some(l) => format!(" WHERE rank = {}", l.rank()),
        None => String::new(),
    };
    format!(
        "WITH f AS (SELECT size, village_code, {passes} FROM ({facts}) fx), \
         v AS (SELECT vc AS village_code, \
             deprivation_sums({pattern}, CAST(size AS BIGINT)) AS sums \
             FROM (SELECT region_code_number(village_code) AS vc, * FROM f) GROUP BY vc), \
         lv AS (SELECT code, deprivation_sums(sums) AS sums FROM ( \
             SELECT v.village_code - v.village_code % l.column1 AS code, v.sums \
             FROM (VALUES {moduli}) l CROSS JOIN v) \
           GROUP BY code), \
         q AS (SELECT level, code, name, cv, seq FROM {regions}{only}), \
         rs AS (SELECT q.level, q.code, q.name, q.seq, a.sums FROM lv a RIGHT JOIN q ON a.code = q.cv), \
         rm AS (SELECT level, code, name, seq, unnest(unnest(mpi_measures(sums))) FROM rs) \
         SELECT level, code, name, CAST({year} AS INT) AS year, {columns} FROM rm ORDER BY seq",
        regions = REGIONS_IN_ORDER,
    )
}
