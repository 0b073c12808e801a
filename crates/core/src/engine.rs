//! The [`Engine`]: one DataFusion session over a validated [`Dataset`].
//!
//! ```no_run
//! # async fn run() -> tuopin::Result<()> {
//! use tuopin::{Dataset, Engine, Level, RuleSet};
//! let engine = Engine::new(Dataset::open("data/hebei").await?).await?;
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
//! `crate::facts`). All results are lazy DataFusion `DataFrame`s.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use datafusion::arrow::array::{Array, Float64Array, Int32Array, Int64Array};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::logical_expr::{col, lit, Expr};
use datafusion::prelude::{DataFrame, SessionConfig, SessionContext};

use crate::catalog;
use crate::codes::Level;
use crate::dataset::Dataset;
use crate::error::{Error, Result};
use crate::facts::{household_facts_columns_of_year_sql, household_facts_of_year_sql, YearLines};
use crate::metrics;
use crate::rules::{audit, outcome_columns, RuleSet, Unit};
use crate::session;
use crate::sql::{self, quote_identifier, SqlOptions};

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

impl EngineOptions {
    /// The defaults with an optional memory limit (bytes) and partition
    /// count (`None`: the number of cores) — what the CLI's
    /// `--memory-limit`/`--partitions` and Python's `memory_limit=`/
    /// `partitions=` give.
    pub fn with_limits(memory_limit: Option<usize>, partitions: Option<usize>) -> Self {
        let defaults = EngineOptions::default();
        EngineOptions {
            memory_limit,
            target_partitions: partitions.unwrap_or(defaults.target_partitions),
            ..defaults
        }
    }
}

/// The analytics engine: a DataFusion session with the registry's tables
/// and views registered. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    ctx: SessionContext,
    dataset: Arc<Dataset>,
    /// Names registered at construction: user SQL may not replace them.
    protected: Arc<BTreeSet<String>>,
    /// The snapshot years of `households`, read once when first needed.
    years: Arc<tokio::sync::OnceCell<Vec<i32>>>,
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
    pub async fn new(dataset: Dataset) -> Result<Engine> {
        Self::with_options(dataset, EngineOptions::default()).await
    }

    /// An engine with explicit session options: the dataset's tables, the
    /// rejects ledger and the facts views registered (`catalog`).
    pub async fn with_options(dataset: Dataset, options: EngineOptions) -> Result<Engine> {
        let config = session::base_config()
            .with_target_partitions(options.target_partitions.max(1))
            .with_batch_size(options.batch_size.max(1))
            .with_information_schema(true);
        let ctx = session::context(config, options.memory_limit)?;
        let partitions = options.target_partitions.max(1);
        catalog::register_tables(&ctx, &dataset.tables, &dataset.rejects, partitions)?;
        catalog::register_views(&ctx, dataset.tables.contains_key("members"))?;
        let protected = catalog::registered_names(&ctx);
        Ok(Engine {
            ctx,
            dataset: Arc::new(dataset),
            protected: Arc::new(protected),
            years: Arc::default(),
        })
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
    /// Read-only: DDL, DML, `COPY` and `SET` are refused ([`crate::sql`]).
    ///
    /// ```no_run
    /// # async fn run(engine: tuopin::Engine) -> tuopin::Result<()> {
    /// let n = engine.sql("SELECT count(*) FROM households").await?;
    /// assert!(engine.sql("DROP VIEW household_facts").await.is_err());
    /// # Ok(()) }
    /// ```
    pub async fn sql(&self, query: &str) -> Result<DataFrame> {
        self.sql_with(query, SqlOptions::default()).await
    }

    /// [`Engine::sql`] with options: `allow_write` lets DDL, DML, `COPY`
    /// and statements run (registered names stay protected).
    pub async fn sql_with(&self, query: &str, options: SqlOptions) -> Result<DataFrame> {
        let plan = self.ctx.state().create_logical_plan(query).await?;
        sql::check(query, &plan, options, &self.protected)?;
        Ok(self.ctx.execute_logical_plan(plan).await?)
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
        self.check_year(year).await?;
        if unit == Unit::Household {
            return self.household_facts(year).await;
        }
        Ok(self
            .ctx
            .table(unit.facts_view())
            .await?
            .filter(col("year").eq(lit(year)))?)
    }

    /// The `household_facts` rows of `year` (DESIGN §2.3), with the year's
    /// lines read once as constants instead of a join per household.
    pub async fn household_facts(&self, year: i32) -> Result<DataFrame> {
        self.sql(&self.household_facts_of(year).await?).await
    }

    /// SQL of the `household_facts` columns `columns` (each a column of the
    /// view) of the rows of `year`, with the year's lines as constants when
    /// they can be read as such (see [`Engine::household_facts_of`]).
    pub(crate) async fn household_facts_columns_of(
        &self,
        year: i32,
        columns: &[String],
    ) -> Result<String> {
        Ok(match self.year_lines(year).await? {
            Some(lines) => household_facts_columns_of_year_sql(year, lines, columns),
            None => format!(
                "SELECT {} FROM household_facts WHERE year = {year}",
                columns
                    .iter()
                    .map(|c| quote_identifier(c))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })
    }

    /// SQL of the `household_facts` rows of `year`: with the year's lines
    /// as constants (`facts::household_facts_of_year_sql`) when they can be
    /// read as such, else the view filtered to the year.
    pub(crate) async fn household_facts_of(&self, year: i32) -> Result<String> {
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
        let base = self.evaluate_with(rules, year, audit::READS).await?;
        let flags = audit::flags(year);
        let mut union: Option<DataFrame> = None;
        for flag in flags {
            let predicate = base.parse_sql_expr(&flag.predicate)?;
            let detail = base.parse_sql_expr(flag.detail)?;
            let part = base.clone().filter(predicate)?.select(vec![
                col("household_id"),
                col("year"),
                col("village_code"),
                lit(flag.name).alias("flag"),
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
        self.check_year(year).await?;
        let columns: Vec<String> = metrics::FACT_COLUMNS
            .iter()
            .map(|c| c.to_string())
            .collect();
        let facts = format!(
            "({})",
            self.household_facts_columns_of(year, &columns).await?
        );
        let sql = metrics::metrics_sql(&facts, Some(year), level, self.has_table("members"));
        let mut state = self.ctx.state();
        skip_weak_partial_aggregation(state.config_mut());
        let plan = state.create_logical_plan(&sql).await?;
        Ok(DataFrame::new(state, plan))
    }

    /// Households, population and share by primary cause (DESIGN §4).
    pub async fn causes(&self, year: i32, level: Option<Level>) -> Result<DataFrame> {
        self.check_year(year).await?;
        self.sql(&metrics::causes_sql(year, level)).await
    }

    /// Transitions against the previous year's snapshot (DESIGN §4).
    pub async fn transitions(&self, year: i32, level: Option<Level>) -> Result<DataFrame> {
        self.check_year(year).await?;
        let previous = year
            .checked_sub(1)
            .ok_or_else(|| Error::InvalidArgument(format!("year {year} has no previous year")))?;
        self.sql(&metrics::transitions_sql(year, previous, level))
            .await
    }

    /// The snapshot years of the registry (`households.year`), ascending.
    pub async fn years(&self) -> Result<Vec<i32>> {
        let years = self
            .years
            .get_or_try_init(|| async {
                // A handful of groups: read on a session without the memory
                // limit, so a tight limit fails the real query, not this.
                let ctx = SessionContext::new_with_config(self.ctx.copied_config());
                let households = self.ctx.table_provider("households").await?;
                ctx.register_table("households", households)?;
                let df = ctx
                    .sql("SELECT DISTINCT year FROM households WHERE year IS NOT NULL")
                    .await?;
                let mut years = Vec::new();
                for batch in df.collect().await? {
                    let column = batch.column(0);
                    let Some(a) = column.as_any().downcast_ref::<Int32Array>() else {
                        continue;
                    };
                    years.extend(a.iter().flatten());
                }
                years.sort_unstable();
                Ok::<_, Error>(years)
            })
            .await?;
        Ok(years.clone())
    }

    /// An error naming the registry's years unless it has a household
    /// snapshot of `year` — a year outside the data would otherwise show
    /// zero poverty everywhere.
    pub async fn check_year(&self, year: i32) -> Result<()> {
        let years = self.years().await?;
        if years.contains(&year) {
            return Ok(());
        }
        Err(Error::NoSnapshot {
            year,
            years: describe_years(&years),
        })
    }

    /// What a caller should know about `year` that is not an error: a year
    /// without a poverty line makes income indicators unknown and income
    /// figures null.
    pub async fn notes(&self, year: i32) -> Result<Vec<String>> {
        let lines = self
            .sql(&format!(
                "SELECT count(*) FROM poverty_lines WHERE year = {year} AND poverty_line IS NOT NULL"
            ))
            .await?
            .collect()
            .await?;
        let count = lines
            .first()
            .and_then(|b| b.column(0).as_any().downcast_ref::<Int64Array>())
            .map(|a| a.value(0));
        Ok(match count {
            Some(0) => vec![format!(
                "no poverty line for {year}: income indicators are unknown and FGT is null \
                 (add a poverty_lines row for {year})"
            )],
            _ => Vec::new(),
        })
    }
}

/// Years as a reader wants them: `2014–2020` when consecutive, else listed;
/// `none` for an empty registry.
fn describe_years(years: &[i32]) -> String {
    match (years.first(), years.last()) {
        (None, _) | (_, None) => "no snapshot at all".into(),
        (Some(a), Some(b)) if a == b => a.to_string(),
        (Some(a), Some(b)) if i64::from(*b) - i64::from(*a) + 1 == years.len() as i64 => {
            format!("{a}–{b}")
        }
        _ => years
            .iter()
            .map(i32::to_string)
            .collect::<Vec<_>>()
            .join(", "),
    }
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

    use datafusion::arrow::record_batch::RecordBatch;

    /// An engine over a synthetic registry of `households` (every year).
    async fn synthetic_engine(households: usize, seed: u64) -> Engine {
        let tables = crate::synth::generate_tables(&crate::GenerateOptions {
            households,
            seed,
            ..Default::default()
        })
        .unwrap();
        Engine::new(Dataset::from_batches(tables).await.unwrap())
            .await
            .unwrap()
    }

    /// `df`'s rows as one batch, in the plan's order or sorted by `code`.
    async fn one_batch(df: DataFrame, by_code: bool) -> RecordBatch {
        let df = if by_code {
            df.sort(vec![col("code").sort(true, true)]).unwrap()
        } else {
            df
        };
        let schema = df.schema().inner().clone();
        let batches = df.collect().await.unwrap();
        datafusion::arrow::compute::concat_batches(&schema, &batches).unwrap()
    }

    /// `got` has `want`'s rows and columns, column by column (the schemas'
    /// nullability may differ).
    fn assert_same_columns(got: &RecordBatch, want: &RecordBatch, what: &str) {
        assert!(want.num_rows() > 0, "{what}: no rows");
        assert_eq!(got.num_rows(), want.num_rows(), "{what}");
        assert_eq!(got.num_columns(), want.num_columns(), "{what}");
        for (i, field) in want.schema().fields().iter().enumerate() {
            assert_eq!(
                got.column(i).as_ref(),
                want.column(i).as_ref(),
                "{what}: {}",
                field.name()
            );
        }
    }

    #[tokio::test]
    async fn one_year_metrics_equal_the_view_based_query() {
        // Engine::metrics reads constant lines and the household links; the
        // metrics plan over the `household_facts` view must give the same
        // table, bit for bit.
        let engine = synthetic_engine(3000, 11).await;
        for level in [None, Some(Level::County)] {
            let fast = one_batch(engine.metrics(2017, level).await.unwrap(), false).await;
            let view_sql = metrics::metrics_sql("household_facts", Some(2017), level, true);
            let view = one_batch(engine.sql(&view_sql).await.unwrap(), false).await;
            assert_same_columns(&view, &fast, &format!("{level:?}"));
        }
    }

    #[tokio::test]
    async fn every_years_metrics_hold_each_years_metrics() {
        // The plan over every year (`year = None`: the year in every key,
        // one `level_medians` group per year) gives, for one year, the
        // one-year plan's rows.
        let engine = synthetic_engine(2000, 5).await;
        for level in [None, Some(Level::Township)] {
            let every = metrics::metrics_sql("household_facts", None, level, true);
            let every = engine
                .sql(&format!("SELECT * FROM ({every}) WHERE year = 2017"))
                .await
                .unwrap();
            let every = one_batch(every, true).await;
            let one = one_batch(engine.metrics(2017, level).await.unwrap(), true).await;
            let median = one.schema().index_of("median_income").unwrap();
            assert!(one.column(median).null_count() < one.num_rows());
            assert_same_columns(&every, &one, &format!("{level:?}"));
        }
    }
}
