//! The [`Engine`]: one DataFusion session over a validated [`Dataset`].
//!
//! ```no_run
//! # async fn run() -> tuopin::Result<()> {
//! use tuopin::{Dataset, Engine, Level, RuleSet};
//! let engine = Engine::new(Dataset::open("data/hebei").await?)?;
//! let outcomes = engine.evaluate(&RuleSet::builtin("hebei-2016")?, 2016).await?;
//! outcomes.show_limit(5).await?;
//! let by_city = engine.metrics(2016, Some(Level::City)).await?;
//! let sql = engine.sql("SELECT status, count(*) FROM household_facts GROUP BY status").await?;
//! # Ok(()) }
//! ```
//!
//! Registered on the session, so any SQL can use them: every base table of
//! the dataset, `rejects`, and the views `household_facts`, `region_facts`,
//! `village_facts` and `county_facts` (the last two over all years; see
//! [`crate::metrics`]). All results are lazy DataFusion `DataFrame`s.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, Float64Array};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::datasource::MemTable;
use datafusion::execution::memory_pool::{GreedyMemoryPool, TrackConsumersPool};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::logical_expr::{col, lit, Expr};
use datafusion::prelude::{DataFrame, SessionConfig, SessionContext};

use crate::codes::{roll_up_sql, Level};
use crate::dataset::Dataset;
use crate::error::{Error, Result};
use crate::functions;
use crate::links;
use crate::metrics;
use crate::rules::{outcome_columns, RuleSet, Unit};
use crate::schema;
use crate::validate::{linked_provider, provider};

/// Session settings of an [`Engine`].
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Parallelism of query execution (default: number of cores).
    pub target_partitions: usize,
    /// Memory limit in bytes for query execution (a greedy DataFusion
    /// memory pool); operators that can spill (sorts, aggregations) spill to
    /// disk past it, others fail with a "resources exhausted" error naming
    /// the largest consumers. The loaded tables themselves are not counted.
    /// `None`: no limit.
    pub memory_limit: Option<usize>,
    /// Rows per batch.
    pub batch_size: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            target_partitions: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            memory_limit: None,
            batch_size: 8192,
        }
    }
}

/// The analytics engine: a DataFusion session with the registry's tables
/// and views registered. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    ctx: SessionContext,
    dataset: Arc<Dataset>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("tables", &self.dataset.table_names())
            .finish()
    }
}

impl Engine {
    /// An engine with default options.
    pub fn new(dataset: Dataset) -> Result<Engine> {
        Self::with_options(dataset, EngineOptions::default())
    }

    /// An engine with explicit session options.
    pub fn with_options(dataset: Dataset, options: EngineOptions) -> Result<Engine> {
        let config = base_config()
            .with_target_partitions(options.target_partitions.max(1))
            .with_batch_size(options.batch_size.max(1))
            .with_information_schema(true);
        let ctx = SessionContext::new_with_config_rt(config, runtime_env(options.memory_limit)?);
        functions::register_all(&ctx);
        let partitions = options.target_partitions.max(1);
        for (name, table) in &dataset.tables {
            ctx.register_table(name.as_str(), provider(&ctx, table, partitions)?)?;
            if let Some(linked) = linked_provider(&ctx, table, partitions)? {
                ctx.register_table(links::linked_name(name), linked)?;
            }
        }
        for spec in schema::TABLES.iter() {
            if !dataset.tables.contains_key(spec.name) {
                // Absent optional tables are empty, so SQL over them works.
                let empty = |schema| -> Result<Arc<MemTable>> {
                    Ok(Arc::new(MemTable::try_new(schema, vec![vec![]])?))
                };
                ctx.register_table(spec.name, empty(spec.schema())?)?;
                if !links::columns(spec.name).is_empty() {
                    let schema = links::linked_schema(spec.name, &spec.schema());
                    ctx.register_table(links::linked_name(spec.name), empty(schema)?)?;
                }
            }
        }
        let rejects_schema = schema::rejects_schema();
        ctx.register_table(
            "rejects",
            Arc::new(MemTable::try_new(
                rejects_schema,
                vec![dataset.rejects.clone()],
            )?),
        )?;
        let engine = Engine {
            ctx,
            dataset: Arc::new(dataset),
        };
        engine.register_views()?;
        Ok(engine)
    }

    fn register_views(&self) -> Result<()> {
        let view = |name: &str, sql: String| -> Result<()> {
            let plan = futures::executor::block_on(self.ctx.state().create_logical_plan(&sql))?;
            let df = DataFrame::new(self.ctx.state(), plan);
            self.ctx.register_table(name, df.into_view())?;
            Ok(())
        };
        view("household_facts", household_facts_sql())?;
        view("region_facts", metrics::region_facts_sql())?;
        view(
            "village_facts",
            metrics::unit_facts_sql(self, Level::Village),
        )?;
        view("county_facts", metrics::unit_facts_sql(self, Level::County))?;
        Ok(())
    }

    /// The DataFusion session (for custom queries and registrations).
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// The dataset the engine runs on.
    pub fn dataset(&self) -> &Dataset {
        &self.dataset
    }

    /// Whether the dataset supplied table `name` (optional tables may be
    /// absent; they are then registered empty).
    pub fn has_table(&self, name: &str) -> bool {
        self.dataset.tables.contains_key(name)
    }

    /// Run a SQL query over the registered tables and views.
    pub async fn sql(&self, query: &str) -> Result<DataFrame> {
        Ok(self.ctx.sql(query).await?)
    }

    /// The rejects ledger as a DataFrame.
    pub async fn rejects(&self) -> Result<DataFrame> {
        Ok(self.ctx.table("rejects").await?)
    }

    /// Schema of a registered table or view.
    pub async fn schema_of(&self, name: &str) -> Result<SchemaRef> {
        Ok(self.ctx.table(name).await?.schema().inner().clone())
    }

    /// Evaluate `rules` for `year`: one row per unit (household, village or
    /// county) with `pass_<key>`, `score`, `failed`, `vetoed_by`,
    /// `unknown` and `outcome` (DESIGN §3). For households, every household
    /// of the year's snapshot is evaluated whatever its status.
    pub async fn evaluate(&self, rules: &RuleSet, year: i32) -> Result<DataFrame> {
        self.evaluate_with(rules, year, &[]).await
    }

    /// [`Engine::evaluate`] carrying along extra columns of the facts view.
    pub(crate) async fn evaluate_with(
        &self,
        rules: &RuleSet,
        year: i32,
        carry: &[&str],
    ) -> Result<DataFrame> {
        let facts = self.facts(rules.unit, year).await?;
        let compiled = rules.compile(&self.ctx.state(), facts.schema())?;
        let keys = rules.unit.key_columns();
        let pass: Vec<String> = rules
            .indicators
            .iter()
            .map(|i| format!("pass_{}", i.key))
            .collect();
        let mut first: Vec<Expr> = keys.iter().chain(carry).map(|k| col(*k)).collect();
        for (name, expr) in pass.iter().zip(compiled) {
            first.push(expr.alias(name));
        }
        let df = facts.select(first)?;
        let out = outcome_columns(rules, &pass)?;
        let mut second: Vec<Expr> = keys.iter().chain(carry).map(|k| col(*k)).collect();
        for name in &pass {
            second.push(col(name.as_str()));
        }
        second.extend([
            out.score.alias("score"),
            out.failed.alias("failed"),
            out.vetoed_by.alias("vetoed_by"),
            out.unknown.alias("unknown"),
            out.outcome.alias("outcome"),
        ]);
        Ok(df.select(second)?)
    }

    /// Evaluate several rule sets of one unit in one pass over the facts:
    /// the unit keys, then `score_<name>` and `outcome_<name>` per rule set.
    /// Names must be distinct.
    pub async fn evaluate_many(&self, rule_sets: &[RuleSet], year: i32) -> Result<DataFrame> {
        let Some(first_rules) = rule_sets.first() else {
            return Err(Error::InvalidArgument(
                "evaluate_many needs at least one rule set".into(),
            ));
        };
        let unit = first_rules.unit;
        let mut names = std::collections::HashSet::new();
        for r in rule_sets {
            if r.unit != unit {
                return Err(Error::rule(
                    &r.name,
                    None,
                    format!(
                        "unit {} differs from {} of `{}`",
                        r.unit, unit, first_rules.name
                    ),
                ));
            }
            if !names.insert(r.name.as_str()) {
                return Err(Error::rule(&r.name, None, "rule set name given twice"));
            }
        }
        let facts = self.facts(unit, year).await?;
        let keys = unit.key_columns();
        // Indicators with the same condition (rule-set variants share most)
        // are computed once: each distinct condition is one column, and the
        // rule sets' scores over the same columns are then the same
        // expression, which the optimizer computes once too.
        let mut first: Vec<Expr> = keys.iter().map(|k| col(*k)).collect();
        let mut columns: HashMap<Expr, String> = HashMap::new();
        // Each rule set's pass columns, in its indicators' order.
        let mut pass_columns: Vec<Vec<String>> = Vec::new();
        for r in rule_sets {
            let compiled = r.compile(&self.ctx.state(), facts.schema())?;
            let mut mine = Vec::with_capacity(compiled.len());
            for expr in compiled {
                let name = match columns.get(&expr) {
                    Some(name) => name.clone(),
                    None => {
                        let name = format!("__pass{}", columns.len());
                        first.push(expr.clone().alias(&name));
                        columns.insert(expr, name.clone());
                        name
                    }
                };
                mine.push(name);
            }
            pass_columns.push(mine);
        }
        let df = facts.select(first)?;
        let mut second: Vec<Expr> = keys.iter().map(|k| col(*k)).collect();
        for (r, mine) in rule_sets.iter().zip(&pass_columns) {
            let out = outcome_columns(r, mine)?;
            second.push(out.score.alias(format!("score_{}", r.name)));
            second.push(out.outcome.alias(format!("outcome_{}", r.name)));
        }
        Ok(df.select(second)?)
    }

    /// The facts of `unit` for `year`.
    async fn facts(&self, unit: Unit, year: i32) -> Result<DataFrame> {
        if unit == Unit::Household {
            return self.sql(&self.household_facts_of(year).await?).await;
        }
        Ok(self
            .ctx
            .table(unit.facts_view())
            .await?
            .filter(col("year").eq(lit(year)))?)
    }

    /// SQL of the `household_facts` rows of `year`: with the year's lines
    /// as constants ([`household_facts_of_year_sql`]) when they can be read
    /// as such, else the view filtered to the year.
    pub async fn household_facts_of(&self, year: i32) -> Result<String> {
        Ok(match self.year_lines(year).await? {
            Some(lines) => household_facts_of_year_sql(year, lines),
            None => format!("SELECT * FROM household_facts WHERE year = {year}"),
        })
    }

    /// The `poverty_lines` row of `year` when it can be written as
    /// constants: at most one row (validation makes `year` unique) with
    /// finite lines (validation rejects others). `None` otherwise, so
    /// callers fall back to the join of the view.
    pub async fn year_lines(&self, year: i32) -> Result<Option<YearLines>> {
        let batches = self
            .sql(&format!(
                "SELECT poverty_line, monitoring_line FROM poverty_lines WHERE year = {year}"
            ))
            .await?
            .collect()
            .await?;
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        let lines = match batches.iter().find(|b| b.num_rows() > 0) {
            None => YearLines::default(),
            Some(_) if rows > 1 => return Ok(None),
            Some(batch) => {
                let (Some(p), Some(m)) = (
                    batch.column(0).as_any().downcast_ref::<Float64Array>(),
                    batch.column(1).as_any().downcast_ref::<Float64Array>(),
                ) else {
                    return Ok(None);
                };
                let value = |a: &Float64Array| a.is_valid(0).then(|| a.value(0));
                YearLines {
                    poverty_line: value(p),
                    monitoring_line: value(m),
                }
            }
        };
        let finite = |v: Option<f64>| v.is_none_or(f64::is_finite);
        Ok((finite(lines.poverty_line) && finite(lines.monitoring_line)).then_some(lines))
    }

    /// Procedure audit of household exits in `year` under `rules` (DESIGN
    /// §3): one row per flag with `household_id`, `year`, `village_code`,
    /// `flag`, `detail`.
    pub async fn audit(&self, rules: &RuleSet, year: i32) -> Result<DataFrame> {
        if rules.unit != Unit::Household {
            return Err(Error::rule(
                &rules.name,
                None,
                "the procedure audit needs a household rule set",
            ));
        }
        let carry = [
            "status",
            "exit_year",
            "exit_proposed",
            "village_reviewed_on",
            "township_audited_on",
            "county_approved_on",
        ];
        let base = self.evaluate_with(rules, year, &carry).await?;
        let flags: [(&str, String, &str); 5] = [
            (
                "approved_not_eligible",
                "county_approved_on IS NOT NULL AND outcome <> 'exit'".into(),
                "concat('county approved on ', CAST(county_approved_on AS VARCHAR), ' but outcome is ', outcome)",
            ),
            (
                "eligible_not_proposed",
                "status = 'poor' AND outcome = 'exit' AND NOT coalesce(exit_proposed, false)".into(),
                "'outcome exit but not proposed for exit'",
            ),
            (
                "steps_out_of_order",
                "(township_audited_on IS NOT NULL AND village_reviewed_on IS NULL) \
                 OR (county_approved_on IS NOT NULL AND township_audited_on IS NULL) \
                 OR village_reviewed_on > township_audited_on \
                 OR township_audited_on > county_approved_on"
                    .into(),
                "concat('village ', coalesce(CAST(village_reviewed_on AS VARCHAR), '-'), ', township ', coalesce(CAST(township_audited_on AS VARCHAR), '-'), ', county ', coalesce(CAST(county_approved_on AS VARCHAR), '-'))",
            ),
            (
                "late_approval",
                format!("county_approved_on > CAST('{year}-12-31' AS DATE)"),
                "concat('county approved on ', CAST(county_approved_on AS VARCHAR))",
            ),
            (
                "exited_without_approval",
                format!("status = 'exited' AND exit_year = {year} AND county_approved_on IS NULL"),
                "'exited without county approval'",
            ),
        ];
        let mut union: Option<DataFrame> = None;
        for (flag, predicate, detail) in flags {
            let predicate = base.parse_sql_expr(&predicate)?;
            let detail = base.parse_sql_expr(detail)?;
            let part = base.clone().filter(predicate)?.select(vec![
                col("household_id"),
                col("year"),
                col("village_code"),
                lit(flag).alias("flag"),
                detail.alias("detail"),
            ])?;
            union = Some(match union {
                None => part,
                Some(u) => u.union(part)?,
            });
        }
        union.ok_or_else(|| Error::InvalidArgument("no audit flags".into()))
    }

    /// Metrics of DESIGN §4 for `year` at `level`, or at every level in one
    /// GROUPING SETS query when `level` is `None`.
    pub async fn metrics(&self, year: i32, level: Option<Level>) -> Result<DataFrame> {
        let facts = format!("({})", self.household_facts_of(year).await?);
        let sql = metrics::metrics_sql_over(self, &facts, Some(year), level);
        let mut state = self.ctx.state();
        skip_weak_partial_aggregation(state.config_mut());
        let plan = state.create_logical_plan(&sql).await?;
        Ok(DataFrame::new(state, plan))
    }

    /// Households, population and share by primary cause (DESIGN §4).
    pub async fn causes(&self, year: i32, level: Option<Level>) -> Result<DataFrame> {
        self.sql(&metrics::causes_sql(year, level)).await
    }

    /// Transitions against the previous year's snapshot (DESIGN §4).
    pub async fn transitions(&self, year: i32, level: Option<Level>) -> Result<DataFrame> {
        self.sql(&metrics::transitions_sql(year, level)).await
    }
}

/// Session settings shared by every tuopin session: text stays `Utf8` (the
/// declared type) rather than DataFusion's default `Utf8View` for
/// `VARCHAR`, so results have the types of DESIGN §2.2.
///
/// Any other DataFusion option can be set from the environment with its
/// `DATAFUSION_*` variable (e.g. `DATAFUSION_OPTIMIZER_PREFER_HASH_JOIN`);
/// an unreadable value is ignored in favour of the defaults.
pub(crate) fn base_config() -> SessionConfig {
    SessionConfig::from_env()
        .unwrap_or_default()
        .set_bool("datafusion.sql_parser.map_string_types_to_utf8view", false)
        .set_bool(
            "datafusion.execution.parquet.schema_force_view_types",
            false,
        )
}

/// DataFusion's default `skip_partial_aggregation_probe_ratio_threshold`.
const DEFAULT_SKIP_PARTIAL_RATIO: f64 = 0.8;

/// For the metrics plan only: skip a partial aggregation that keeps more
/// than half its input rows (DataFusion's default skips it past 80 %).
/// The distinct (village, household) pairs of the assisted-poor count keep
/// 74 % (13.3 M assistance rows, 9.8 M pairs at 30 M households) and were
/// otherwise aggregated twice; county metrics at 30 M took ≈ 0.7 s less
/// (BENCHMARKS.md). A value set by the user (`DATAFUSION_*` environment)
/// is kept.
fn skip_weak_partial_aggregation(config: &mut SessionConfig) {
    let execution = &mut config.options_mut().execution;
    if execution.skip_partial_aggregation_probe_ratio_threshold == DEFAULT_SKIP_PARTIAL_RATIO {
        execution.skip_partial_aggregation_probe_ratio_threshold = 0.5;
    }
}

/// The runtime of a session: with a memory `limit`, a greedy (first come,
/// first served) pool rather than fair shares — a metrics plan holds ~20
/// spillable operators at once, and fair shares starved the one big
/// aggregation long before the limit was used. The tracking wrapper names
/// the top consumers in the "resources exhausted" error.
pub(crate) fn runtime_env(limit: Option<usize>) -> Result<Arc<RuntimeEnv>> {
    let mut runtime = RuntimeEnvBuilder::new();
    if let Some(limit) = limit {
        let greedy = GreedyMemoryPool::new(limit);
        runtime = runtime.with_memory_pool(Arc::new(TrackConsumersPool::new(
            greedy,
            TOP_CONSUMERS_IN_ERRORS,
        )));
    }
    Ok(runtime.build_arc()?)
}

/// How many of the largest memory consumers a "resources exhausted" error
/// names.
const TOP_CONSUMERS_IN_ERRORS: std::num::NonZeroUsize = match std::num::NonZeroUsize::new(3) {
    Some(n) => n,
    None => std::num::NonZeroUsize::MIN,
};

/// SQL of the `household_facts` view (DESIGN §2.3).
pub fn household_facts_sql() -> String {
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
pub fn household_facts_of_year_sql(year: i32, lines: YearLines) -> String {
    facts_select(
        &float_sql(lines.poverty_line),
        &float_sql(lines.monitoring_line),
        &format!("FROM households h WHERE h.year = {year}"),
    )
}

/// The `household_facts` projection over `from` (which names the
/// households `h`), with the year's lines given as SQL expressions.
fn facts_select(poverty_line: &str, monitoring_line: &str, from: &str) -> String {
    let net = "(h.wage_income + h.business_income + h.property_income + h.transfer_income - h.business_expense)";
    format!(
        "SELECT h.*, \
           {net} AS net_income, \
           {net} / h.size AS per_capita_net_income, \
           {poverty_line} AS poverty_line, \
           coalesce({monitoring_line}, 1.5 * {poverty_line}) AS monitoring_line, \
           {t} AS township_code, {c} AS county_code, {ci} AS city_code, {p} AS province_code \
         {from}",
        t = roll_up_sql("h.village_code", Level::Township),
        c = roll_up_sql("h.village_code", Level::County),
        ci = roll_up_sql("h.village_code", Level::City),
        p = roll_up_sql("h.village_code", Level::Province),
    )
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
/// finite values only — see [`Engine::year_lines`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct YearLines {
    /// `poverty_line` of the year.
    pub poverty_line: Option<f64>,
    /// `monitoring_line` of the year as stored (null = 1.5 × poverty line).
    pub monitoring_line: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ratio(config: &SessionConfig) -> f64 {
        config
            .options()
            .execution
            .skip_partial_aggregation_probe_ratio_threshold
    }

    #[test]
    fn metrics_skip_weak_partial_aggregation_unless_the_user_chose() {
        let mut config = SessionConfig::new();
        assert_eq!(ratio(&config), DEFAULT_SKIP_PARTIAL_RATIO);
        skip_weak_partial_aggregation(&mut config);
        assert_eq!(ratio(&config), 0.5);

        let mut chosen = SessionConfig::new();
        chosen
            .options_mut()
            .execution
            .skip_partial_aggregation_probe_ratio_threshold = 0.9;
        skip_weak_partial_aggregation(&mut chosen);
        assert_eq!(ratio(&chosen), 0.9);
    }
}
