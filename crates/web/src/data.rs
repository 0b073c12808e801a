//! The figures behind every page, from [`Engine`] calls — `metrics`,
//! `causes`, `evaluate`, `evaluate_many`, `audit`, `quality`, `mpi`,
//! `rejects` — never a second implementation of a metric.
//!
//! The year-level results a page needs (all-level metrics and causes of a
//! year, a rule set's outcomes of a year with each household's region
//! codes, the village and county exit evaluations) are computed once per
//! (result, year, rule set), kept as in-memory tables of the dashboard's
//! own DataFusion session, and a page selects its region's rows from them
//! with SQL. So after the first request for a year every page is a
//! filter over a table in memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::prelude::{DataFrame, SessionContext};
use serde_json::{Map, Value};
use tokio::sync::OnceCell;
use tuopin::codes::RegionCode;
use tuopin::{Engine, Level, RuleSet, Unit};

use crate::error::{Result, WebError};
use crate::params::sql_literal;

/// Rows as JSON objects (keys = column names, nulls explicit).
pub type Rows = Vec<Map<String, Value>>;

/// A result: its column names in order, and its rows.
#[derive(Debug, Clone, Default)]
pub struct Table {
    /// Column names, in the result's order.
    pub columns: Vec<String>,
    /// The rows.
    pub rows: Rows,
}

impl Table {
    /// The table as CSV text (lists `;`-joined, nulls empty).
    pub fn to_csv(&self) -> String {
        let mut out = String::new();
        out.push_str(
            &self
                .columns
                .iter()
                .map(|c| csv_cell(c))
                .collect::<Vec<_>>()
                .join(","),
        );
        out.push('\n');
        for r in &self.rows {
            let cells: Vec<String> = self
                .columns
                .iter()
                .map(|c| match r.get(c) {
                    None | Some(Value::Null) => String::new(),
                    Some(Value::String(s)) => csv_cell(s),
                    Some(Value::Array(items)) => csv_cell(
                        &items
                            .iter()
                            .map(|v| {
                                v.as_str()
                                    .map(str::to_string)
                                    .unwrap_or_else(|| v.to_string())
                            })
                            .collect::<Vec<_>>()
                            .join(";"),
                    ),
                    Some(v) => v.to_string(),
                })
                .collect();
            out.push_str(&cells.join(","));
            out.push('\n');
        }
        out
    }
}

/// A CSV cell, quoted when it must be.
fn csv_cell(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// A region: code and name.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Region {
    /// Twelve-digit code.
    pub code: String,
    /// Name.
    pub name: String,
    /// Level (`province` … `village`).
    pub level: String,
}

/// The data side of the dashboard: the engine, the rule sets offered, and
/// the results computed so far.
pub struct Data {
    /// The engine over the validated registry.
    pub engine: Arc<Engine>,
    /// Household rule sets offered (the first is the default).
    pub rules: Vec<RuleSet>,
    /// `village-2016` and `county-2016`, for the exit of villages and counties.
    pub unit_rules: Vec<RuleSet>,
    /// The registry's snapshot years, ascending.
    pub years: Vec<i32>,
    /// The province (the root of the region tree).
    pub province: Region,
    views: SessionContext,
    cells: Mutex<HashMap<String, Arc<OnceCell<()>>>>,
}

impl Data {
    /// Read the registry's years and province; `rules` are the household
    /// rule sets to offer (empty: the built-in household rule sets).
    pub async fn new(engine: Arc<Engine>, rules: Vec<RuleSet>) -> Result<Data> {
        let years = engine.years().await?;
        if years.is_empty() {
            return Err(WebError::Serve(
                "the registry has no household snapshot".into(),
            ));
        }
        let rules = if rules.is_empty() {
            ["hebei-2016", "national-2016"]
                .iter()
                .filter_map(|n| RuleSet::builtin(n).ok())
                .collect()
        } else {
            rules
        };
        for r in &rules {
            if r.unit != Unit::Household {
                return Err(WebError::Serve(format!(
                    "rule set `{}` is for {}: the dashboard takes household rule sets",
                    r.name,
                    r.unit.plural()
                )));
            }
        }
        let unit_rules = ["village-2016", "county-2016"]
            .iter()
            .filter_map(|n| RuleSet::builtin(n).ok())
            .collect();
        // Results are small and read in their order: no round-robin
        // repartitioning, so a filtered API answer keeps the library's row
        // order.
        let views = SessionContext::new_with_config(
            datafusion::prelude::SessionConfig::new().with_round_robin_repartition(false),
        );
        let regions = engine
            .sql("SELECT code, name FROM regions")
            .await?
            .collect()
            .await?;
        register(&views, "regions", regions)?;
        let data = Data {
            engine,
            rules,
            unit_rules,
            years,
            province: Region {
                code: String::new(),
                name: String::new(),
                level: "province".into(),
            },
            views,
            cells: Mutex::new(HashMap::new()),
        };
        let province = data
            .query("SELECT code, name FROM regions WHERE substr(code, 3) = '0000000000' ORDER BY code LIMIT 1")
            .await?;
        let province = province
            .rows
            .first()
            .map(|r| Region {
                code: text(r, "code"),
                name: text(r, "name"),
                level: "province".into(),
            })
            .ok_or_else(|| WebError::Serve("the regions table has no province".into()))?;
        Ok(Data { province, ..data })
    }

    /// The latest year.
    pub fn latest_year(&self) -> i32 {
        self.years.last().copied().unwrap_or_default()
    }

    /// The household rule set named `name` (the default when `None`).
    pub fn rule_set(&self, name: Option<&str>) -> Result<&RuleSet> {
        match name {
            None => self
                .rules
                .first()
                .ok_or_else(|| WebError::Serve("no rule set".into())),
            Some(n) => self.rules.iter().find(|r| r.name == n).ok_or_else(|| {
                WebError::bad(
                    "rules",
                    format!(
                        "{:?} is not one of {}",
                        crate::params::short(n),
                        self.rules
                            .iter()
                            .map(|r| r.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            }),
        }
    }

    /// Run `sql` over the dashboard's tables and return its rows.
    pub async fn query(&self, sql: &str) -> Result<Table> {
        let df = self.views.sql(sql).await?;
        table(df).await
    }

    /// `sql` over the dashboard's tables as a DataFrame (for the API).
    pub async fn frame(&self, sql: &str) -> Result<DataFrame> {
        Ok(self.views.sql(sql).await?)
    }

    /// `metrics(year, level)` as a table (the API's answer, exactly).
    pub async fn metrics_at(&self, year: i32, level: Option<Level>) -> Result<String> {
        let e = self.engine.clone();
        let name = format!("api_metrics_{year}_{}", level.map_or("all", Level::as_str));
        self.cached(&name, || async move { Ok(e.metrics(year, level).await?) })
            .await
    }

    /// `evaluate(rules, year)` as a table (the API's answer, exactly).
    pub async fn evaluated(&self, year: i32, rules: &RuleSet) -> Result<String> {
        let e = self.engine.clone();
        let r = rules.clone();
        let name = format!("api_evaluate_{year}_{}", self.rule_index(rules));
        self.cached(&name, || async move { Ok(e.evaluate(&r, year).await?) })
            .await
    }

    /// `mpi(rules, year, level, ks)` as a table (the API's answer, exactly).
    pub async fn mpi(
        &self,
        year: i32,
        rules: &RuleSet,
        level: Option<Level>,
        ks: &[f64],
    ) -> Result<String> {
        let e = self.engine.clone();
        let r = rules.clone();
        let ks_key: Vec<String> = ks.iter().map(|k| format!("{:016x}", k.to_bits())).collect();
        let name = format!(
            "api_mpi_{year}_{}_{}_{}",
            self.rule_index(rules),
            level.map_or("all", Level::as_str),
            ks_key.join("_")
        );
        let ks = ks.to_vec();
        self.cached(
            &name,
            || async move { Ok(e.mpi(&r, year, level, &ks).await?) },
        )
        .await
    }

    /// The one-time load of `serve`: every year's metrics, and for the
    /// latest year under the default rule set everything the region,
    /// household, compare and quality pages read (causes, outcomes, audit,
    /// village and county exits with their facts, the comparison of the
    /// offered rule sets, the quality checks), so no first visitor waits
    /// for them. Other years and rule sets are computed on first use.
    pub async fn warm(&self) -> Result<()> {
        for y in self.years.clone() {
            self.metrics(y).await?;
        }
        let latest = self.latest_year();
        self.causes(latest).await?;
        if let Some(r) = self.rules.first().cloned() {
            self.outcomes(latest, &r).await?;
            self.audit(latest, &r).await?;
        }
        for unit in [Unit::Village, Unit::County] {
            self.unit_outcomes(latest, unit).await?;
            self.unit_facts(latest, unit).await?;
        }
        self.compared(latest, &self.rules).await?;
        self.quality(latest).await?;
        Ok(())
    }

    /// Register the result of `make` as the table `name` once; later
    /// calls (and concurrent ones) wait for and reuse it.
    async fn cached<F, Fut>(&self, name: &str, make: F) -> Result<String>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<DataFrame>>,
    {
        let cell = {
            let mut cells = self
                .cells
                .lock()
                .map_err(|_| WebError::Serve("cache lock poisoned".into()))?;
            cells.entry(name.to_string()).or_default().clone()
        };
        cell.get_or_try_init(|| async {
            let df = make().await?;
            let schema = df.schema().inner().clone();
            let batches = df.collect().await?;
            let table = MemTable::try_new(schema, vec![batches]).map_err(tuopin::Error::from)?;
            self.views
                .register_table(name, Arc::new(table))
                .map_err(tuopin::Error::from)?;
            Ok::<_, WebError>(())
        })
        .await?;
        Ok(name.to_string())
    }

    /// `metrics(year, all)` as a table.
    pub async fn metrics(&self, year: i32) -> Result<String> {
        let e = self.engine.clone();
        self.cached(&format!("metrics_{year}"), || async move {
            Ok(e.metrics(year, None).await?)
        })
        .await
    }

    /// `causes(year, all)` as a table.
    pub async fn causes(&self, year: i32) -> Result<String> {
        let e = self.engine.clone();
        self.cached(&format!("causes_{year}"), || async move {
            Ok(e.causes(year, None).await?)
        })
        .await
    }

    /// The household outcomes of `rules` in `year` with each household's
    /// region codes, status and income, as a table.
    pub async fn outcomes(&self, year: i32, rules: &RuleSet) -> Result<String> {
        let name = format!("outcomes_{year}_{}", self.rule_index(rules));
        let e = self.engine.clone();
        let r = rules.clone();
        self.cached(&name, || async move {
            join_facts(
                e.evaluate(&r, year).await?,
                e.household_facts(year).await?,
                &[
                    "province_code",
                    "city_code",
                    "county_code",
                    "township_code",
                    "size",
                    "category",
                    "status",
                    "primary_cause",
                    "per_capita_net_income",
                ],
            )
        })
        .await
    }

    fn rule_index(&self, rules: &RuleSet) -> usize {
        self.rules
            .iter()
            .position(|r| r.name == rules.name)
            .unwrap_or(usize::MAX)
    }

    /// The exit evaluation of villages (`village-2016`) or counties
    /// (`county-2016`) of `year` with their facts, as a table.
    pub async fn unit_outcomes(&self, year: i32, unit: Unit) -> Result<Option<String>> {
        let Some(rules) = self.unit_rules.iter().find(|r| r.unit == unit).cloned() else {
            return Ok(None);
        };
        let e = self.engine.clone();
        let name = format!("{}_{year}", unit.plural());
        Ok(Some(
            self.cached(&name, || async move { Ok(e.evaluate(&rules, year).await?) })
                .await?,
        ))
    }

    /// The facts view of `unit` for `year` (`village_facts`, `county_facts`).
    pub async fn unit_facts(&self, year: i32, unit: Unit) -> Result<String> {
        let e = self.engine.clone();
        let view = unit.facts_view();
        self.cached(&format!("{view}_{year}"), || async move {
            Ok(e.sql(&format!("SELECT * FROM {view} WHERE year = {year}"))
                .await?)
        })
        .await
    }

    /// The consistency warnings of `year` (`Engine::quality`), as a table.
    pub async fn quality(&self, year: i32) -> Result<String> {
        let e = self.engine.clone();
        self.cached(&format!("quality_{year}"), || async move {
            Ok(e.quality(year).await?)
        })
        .await
    }

    /// The outcomes of the poor households (status poor or returned) of
    /// `year` under each of `rules` (`evaluate_many`, one pass), with each
    /// household's region codes, as a table: `outcome_<name>` per rule set.
    pub async fn compared(&self, year: i32, rules: &[RuleSet]) -> Result<String> {
        let key: Vec<String> = rules
            .iter()
            .map(|r| self.rule_index(r).to_string())
            .collect();
        let name = format!("compare_{year}_{}", key.join("_"));
        let e = self.engine.clone();
        let rules = rules.to_vec();
        self.cached(&name, || async move {
            use datafusion::prelude::{col, lit};
            let poor = e
                .household_facts(year)
                .await?
                .filter(col("status").in_list(vec![lit("poor"), lit("returned")], false))?;
            let mut columns = vec!["status"];
            columns.extend(
                Level::ALL
                    .iter()
                    .filter(|l| **l != Level::Village)
                    .map(|l| l.code_column()),
            );
            join_facts(e.evaluate_many(&rules, year).await?, poor, &columns)
        })
        .await
    }

    /// The procedure audit of `rules` in `year`, as a table.
    pub async fn audit(&self, year: i32, rules: &RuleSet) -> Result<String> {
        let e = self.engine.clone();
        let r = rules.clone();
        let name = format!("audit_{year}_{}", self.rule_index(rules));
        self.cached(&name, || async move { Ok(e.audit(&r, year).await?) })
            .await
    }

    /// The region `code`, if the registry has it.
    pub async fn region(&self, code: &RegionCode) -> Result<Option<Region>> {
        let rows = self
            .query(&format!(
                "SELECT code, name FROM regions WHERE code = {}",
                sql_literal(code.as_str())
            ))
            .await?;
        Ok(rows.rows.first().map(|r| Region {
            code: text(r, "code"),
            name: text(r, "name"),
            level: code.level().as_str().into(),
        }))
    }

    /// The regions from the province down to `code`.
    pub async fn breadcrumb(&self, code: &RegionCode) -> Result<Vec<Region>> {
        let mut chain = vec![code.clone()];
        while let Some(p) = chain.last().and_then(RegionCode::parent) {
            chain.push(p);
        }
        chain.reverse();
        let mut out = Vec::new();
        for c in &chain {
            if let Some(r) = self.region(c).await? {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// Headline figures of `code` in `year` (its metrics row).
    pub async fn headline(
        &self,
        year: i32,
        code: &RegionCode,
    ) -> Result<Option<Map<String, Value>>> {
        let t = self.metrics(year).await?;
        let rows = self
            .query(&format!(
                "SELECT * FROM {t} WHERE code = {} AND level = '{}'",
                sql_literal(code.as_str()),
                code.level().as_str()
            ))
            .await?;
        Ok(rows.rows.into_iter().next())
    }

    /// Incidence and poor population of `code` in every year.
    pub async fn trend(&self, code: &RegionCode) -> Result<Table> {
        let mut out = Table::default();
        for y in self.years.clone() {
            let t = self.metrics(y).await?;
            let part = self
                .query(&format!(
                    "SELECT {y} AS year, poverty_incidence, poor_population, poor_households, \
                     exited_households FROM {t} WHERE code = {} AND level = '{}'",
                    sql_literal(code.as_str()),
                    code.level().as_str()
                ))
                .await?;
            out.columns = part.columns;
            out.rows.extend(part.rows);
        }
        Ok(out)
    }

    /// The child regions of `code` in `year`, highest incidence first.
    pub async fn children(&self, year: i32, code: &RegionCode) -> Result<Table> {
        let Some(child) = child_level(code.level()) else {
            return Ok(Table::default());
        };
        let t = self.metrics(year).await?;
        self.query(&format!(
            "SELECT code, name, poverty_incidence, registered_households, poor_households, \
             poor_population, exited_households, returned_households, mean_income \
             FROM {t} WHERE level = '{}' AND starts_with(code, {}) \
             ORDER BY poverty_incidence DESC NULLS LAST, code",
            child.as_str(),
            sql_literal(prefix(code))
        ))
        .await
    }

    /// Causes of poverty of `code` in `year`.
    pub async fn causes_of(&self, year: i32, code: &RegionCode) -> Result<Table> {
        let t = self.causes(year).await?;
        self.query(&format!(
            "SELECT primary_cause, households, population, poor_households, share FROM {t} \
             WHERE code = {} AND level = '{}' ORDER BY households DESC, primary_cause",
            sql_literal(code.as_str()),
            code.level().as_str()
        ))
        .await
    }

    /// Outcomes of the poor households of `code` under `rules`, and the
    /// indicators they fail most.
    pub async fn outcome_summary(
        &self,
        year: i32,
        rules: &RuleSet,
        code: &RegionCode,
    ) -> Result<(Table, Table)> {
        let t = self.outcomes(year, rules).await?;
        let column = code.level().code_column();
        let filter = format!(
            "{column} = {} AND status IN ('poor', 'returned')",
            sql_literal(code.as_str())
        );
        let counts = self
            .query(&format!(
                "SELECT outcome, count(*) AS households, sum(size) AS population FROM {t} \
                 WHERE {filter} GROUP BY outcome ORDER BY outcome"
            ))
            .await?;
        let failing = self
            .query(&format!(
                "SELECT indicator, count(*) AS households FROM \
                 (SELECT unnest(failed) AS indicator FROM {t} WHERE {filter}) \
                 GROUP BY indicator ORDER BY households DESC, indicator LIMIT 5"
            ))
            .await?;
        Ok((counts, failing))
    }

    /// The exit evaluation of `code`'s child villages or counties (or of
    /// `code` itself when it is one), with 三率一度 and their intervals.
    pub async fn unit_exits(&self, year: i32, code: &RegionCode) -> Result<Table> {
        let unit = match code.level() {
            Level::City | Level::County => Unit::County,
            Level::Township | Level::Village => Unit::Village,
            Level::Province => Unit::County,
        };
        let Some(t) = self.unit_outcomes(year, unit).await? else {
            return Ok(Table::default());
        };
        let facts = self.unit_facts(year, unit).await?;
        let rates = if unit == Unit::County {
            tuopin::ASSESSMENT_RATES
                .iter()
                .flat_map(|r| {
                    [
                        format!("f.{r}"),
                        format!("f.{r}_n"),
                        format!("f.{r}_low"),
                        format!("f.{r}_high"),
                    ]
                })
                .collect::<Vec<_>>()
                .join(", ")
                + ", "
        } else {
            String::new()
        };
        let within = if code.level() == Level::Province || code.level() < unit_level(unit) {
            format!("starts_with(o.code, {})", sql_literal(prefix(code)))
        } else {
            format!("o.code = {}", sql_literal(code.as_str()))
        };
        self.query(&format!(
            "SELECT o.code, o.name, o.outcome, f.poverty_incidence, {rates}o.failed \
             FROM {t} o JOIN {facts} f ON o.code = f.code \
             WHERE {within} ORDER BY o.outcome, o.code LIMIT 200"
        ))
        .await
    }

    /// Funds by sector for `code` (projects of `code` and every region
    /// below it) in `year`; empty without a funds table.
    pub async fn funds(&self, year: i32, code: &RegionCode) -> Result<Table> {
        if !self.engine.has_table("funds") {
            return Ok(Table::default());
        }
        let df = self
            .engine
            .sql(&format!(
                "SELECT sector, count(*) AS projects, sum(allocated) AS allocated, \
                 sum(disbursed) AS disbursed, sum(disbursed) / nullif(sum(allocated), 0) AS rate \
                 FROM funds WHERE year = {year} AND starts_with(region_code, {}) \
                 GROUP BY sector ORDER BY allocated DESC, sector",
                sql_literal(prefix(code))
            ))
            .await?;
        table(df).await
    }

    /// One page of the households of `village` with their outcome, and
    /// how many households the filter keeps.
    pub async fn households(
        &self,
        year: i32,
        rules: &RuleSet,
        village: &RegionCode,
        filter: &HouseholdFilter<'_>,
    ) -> Result<(Table, usize)> {
        let HouseholdFilter {
            status,
            outcome,
            page,
            per_page,
        } = *filter;
        let t = self.outcomes(year, rules).await?;
        let mut filter = format!("village_code = {}", sql_literal(village.as_str()));
        if let Some(s) = status {
            filter.push_str(&format!(" AND status = {}", sql_literal(s)));
        }
        if let Some(o) = outcome {
            filter.push_str(&format!(" AND outcome = {}", sql_literal(o)));
        }
        let total = self
            .query(&format!("SELECT count(*) AS n FROM {t} WHERE {filter}"))
            .await?
            .rows
            .first()
            .and_then(|r| r.get("n").and_then(Value::as_u64))
            .unwrap_or(0) as usize;
        let rows = self
            .query(&format!(
                "SELECT household_id, size, category, status, primary_cause, \
                 per_capita_net_income, score, outcome FROM {t} WHERE {filter} \
                 ORDER BY household_id LIMIT {per_page} OFFSET {}",
                (page - 1) * per_page
            ))
            .await?;
        Ok((rows, total))
    }

    /// Rows of an engine table about household `id` (`members`,
    /// `assistance` of `year`, or the household's snapshots).
    pub async fn household_rows(&self, sql: &str) -> Result<Table> {
        table(self.engine.sql(sql).await?).await
    }
}

/// Which households of a village list, and which page of them.
#[derive(Debug, Clone, Copy)]
pub struct HouseholdFilter<'a> {
    /// Only this status (`poor`, `exited`, `returned`).
    pub status: Option<&'a str>,
    /// Only this outcome (`exit`, `stay`, `undetermined`).
    pub outcome: Option<&'a str>,
    /// The page, from 1.
    pub page: usize,
    /// Households per page.
    pub per_page: usize,
}

/// `evaluation` (one row per household of a year) with `columns` of the
/// household facts `facts` joined on by `household_id` — inner, so only
/// the households `facts` keeps.
fn join_facts(evaluation: DataFrame, facts: DataFrame, columns: &[&str]) -> Result<DataFrame> {
    use datafusion::prelude::col;
    let mut select = vec![col("household_id").alias("__hid")];
    select.extend(columns.iter().map(|c| col(*c)));
    Ok(evaluation
        .join(
            facts.select(select)?,
            datafusion::common::JoinType::Inner,
            &["household_id"],
            &["__hid"],
            None,
        )?
        .drop_columns(&["__hid"])?)
}

/// The level below `level`.
pub fn child_level(level: Level) -> Option<Level> {
    Level::ALL.into_iter().find(|l| *l > level)
}

fn unit_level(unit: Unit) -> Level {
    match unit {
        Unit::County => Level::County,
        _ => Level::Village,
    }
}

/// The leading digits that every region within `code` shares.
pub fn prefix(code: &RegionCode) -> &str {
    &code.as_str()[..code.level().prefix_len()]
}

/// Register `batches` as table `name` of `ctx`.
fn register(ctx: &SessionContext, name: &str, batches: Vec<RecordBatch>) -> Result<()> {
    let schema = match batches.first() {
        Some(b) => b.schema(),
        None => Arc::new(datafusion::arrow::datatypes::Schema::empty()),
    };
    let table = MemTable::try_new(schema, vec![batches]).map_err(tuopin::Error::from)?;
    ctx.register_table(name, Arc::new(table))
        .map_err(tuopin::Error::from)?;
    Ok(())
}

/// Run `df` into a [`Table`].
pub async fn table(df: DataFrame) -> Result<Table> {
    let columns = df
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let rows = rows(df.collect().await?)?;
    Ok(Table { columns, rows })
}

/// Batches as a JSON array of objects (keys = column names, lists as
/// arrays, nulls explicit); `[]` without rows.
pub fn json_array(batches: &[RecordBatch]) -> Result<String> {
    let mut buf = Vec::new();
    {
        let mut w = datafusion::arrow::json::WriterBuilder::new()
            .with_explicit_nulls(true)
            .build::<_, datafusion::arrow::json::writer::JsonArray>(&mut buf);
        for b in batches {
            w.write(b).map_err(tuopin::Error::from)?;
        }
        w.finish().map_err(tuopin::Error::from)?;
    }
    if buf.is_empty() {
        buf.extend_from_slice(b"[]");
    }
    String::from_utf8(buf).map_err(|e| WebError::Serve(format!("result as JSON: {e}")))
}

/// Batches as JSON objects (lists as arrays, nulls explicit).
pub fn rows(batches: Vec<RecordBatch>) -> Result<Rows> {
    serde_json::from_str(&json_array(&batches)?)
        .map_err(|e| WebError::Serve(format!("result as JSON: {e}")))
}

/// The text of `column` in `row` ("" when null).
pub fn text(row: &Map<String, Value>, column: &str) -> String {
    match row.get(column) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(v) => v.to_string(),
    }
}
