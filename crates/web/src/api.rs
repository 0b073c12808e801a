//! The JSON/CSV API of DESIGN §10: `/api/metrics`, `/api/evaluate`,
//! `/api/mpi`. Each answers with the library's own result for the
//! parameters — an array of objects whose keys are its column names, or
//! CSV with `&format=csv` — so a figure read from the API is the figure
//! `Engine` gives. Each result is computed once per (year, rule set,
//! level, cut-offs) and kept ([`crate::data`]); a request filters it.

use datafusion::prelude::{col, lit, DataFrame};
use tuopin::LevelSelection;

use crate::error::{Result, WebError};
use crate::params::{self, Params};
use crate::App;

/// An API answer: JSON text or CSV text.
pub enum Answer {
    /// A JSON array of objects.
    Json(String),
    /// CSV with a header row.
    Csv(String),
}

/// `/api/metrics?year=Y&level=L[&parent=CODE]`: `Engine::metrics(Y, L)`
/// (`level=all` or absent: every level), optionally only the regions
/// within `parent`.
pub async fn metrics(app: &App, p: &Params) -> Result<Answer> {
    let data = &app.data;
    let year = p.year(&data.years, data.latest_year())?;
    let level = match p.get("level") {
        None => None,
        Some(t) => t
            .parse::<LevelSelection>()
            .map_err(|_| {
                WebError::bad(
                    "level",
                    format!("{:?} is not a level or all", params::short(t)),
                )
            })?
            .level(),
    };
    let t = data.metrics_at(year, level).await?;
    let mut df = data.frame(&format!("SELECT * FROM {t}")).await?;
    if let Some(parent) = p.get("parent") {
        let parent = params::region_code("parent", parent)?;
        let prefix = crate::data::prefix(&parent).to_string();
        df = df.filter(datafusion::functions::string::expr_fn::starts_with(
            col("code"),
            lit(prefix),
        ))?;
    }
    answer(df, p).await
}

/// `/api/evaluate?year=Y&rules=NAME[&village=CODE]`: `Engine::evaluate`
/// of a rule set offered by the dashboard, optionally one village's
/// households.
pub async fn evaluate(app: &App, p: &Params) -> Result<Answer> {
    let data = &app.data;
    let year = p.year(&data.years, data.latest_year())?;
    let rules = data.rule_set(p.get("rules"))?;
    let t = data.evaluated(year, rules).await?;
    let mut df = data.frame(&format!("SELECT * FROM {t}")).await?;
    if let Some(v) = p.get("village") {
        let v = params::region_code("village", v)?;
        df = df.filter(col("village_code").eq(lit(v.as_str().to_string())))?;
    }
    answer(df, p).await
}

/// `/api/mpi?year=Y&level=L&rules=NAME&k=K`: `Engine::mpi` (k may repeat;
/// default 1/3).
pub async fn mpi(app: &App, p: &Params) -> Result<Answer> {
    let data = &app.data;
    let year = p.year(&data.years, data.latest_year())?;
    let rules = data.rule_set(p.get("rules"))?;
    let level = match p.get("level") {
        None => LevelSelection::All,
        Some(t) => t.parse::<LevelSelection>().map_err(|_| {
            WebError::bad(
                "level",
                format!("{:?} is not a level or all", params::short(t)),
            )
        })?,
    };
    let mut ks = Vec::new();
    for k in p.all("k") {
        let v: f64 = k
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite() && *v > 0.0 && *v <= 1.0)
            .ok_or_else(|| {
                WebError::bad(
                    "k",
                    format!("{:?} is not a cut-off in (0, 1]", params::short(k)),
                )
            })?;
        ks.push(v);
    }
    if ks.is_empty() {
        ks.push(1.0 / 3.0);
    }
    let t = data.mpi(year, rules, level.level(), &ks).await?;
    let df = data.frame(&format!("SELECT * FROM {t}")).await?;
    answer(df, p).await
}

/// Run `df` and answer in the format asked for.
async fn answer(df: DataFrame, p: &Params) -> Result<Answer> {
    let csv = p.csv()?;
    let schema = df.schema().inner().clone();
    let mut batches = df.collect().await?;
    if batches.is_empty() {
        // No rows: CSV still gets its header.
        batches.push(datafusion::arrow::array::RecordBatch::new_empty(schema));
    }
    if csv {
        let mut text = String::new();
        for (i, b) in batches.iter().enumerate() {
            text.push_str(&tuopin::output::csv_text(b, i == 0)?);
        }
        Ok(Answer::Csv(text))
    } else {
        Ok(Answer::Json(crate::data::json_array(&batches)?))
    }
}
