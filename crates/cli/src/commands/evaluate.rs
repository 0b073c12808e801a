//! `tuopin evaluate` and `tuopin audit`: a rule set (or several, compared)
//! over a year, as a summary or a file.

use std::path::PathBuf;

use datafusion::prelude::DataFrame;
use tuopin::{Engine, RuleSet, Unit};

use crate::context::{load_rules, report_year_notes, Context, Failure};

/// Arguments of `evaluate` and `audit`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Dataset folder.
    pub dir: PathBuf,
    /// Built-in name or TOML file; repeat to compare rule sets (evaluate).
    #[arg(long, required = true)]
    pub rules: Vec<String>,
    /// Year.
    #[arg(long)]
    pub year: i32,
    /// Write the result (.parquet, .csv, .json).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// `evaluate`: outcomes per unit, or rule sets side by side.
pub async fn evaluate(cx: &Context, args: &Args) -> Result<u8, Failure> {
    let engine = cx.open(&args.dir).await?;
    report_year_notes(&engine, args.year).await?;
    let rules = args
        .rules
        .iter()
        .map(|r| load_rules(r))
        .collect::<Result<Vec<_>, _>>()?;
    if rules.len() > 1 {
        let df = engine.evaluate_many(&rules, args.year).await?;
        match &args.out {
            Some(out) => cx.emit(df, Some(out), 0).await?,
            None => compare_summary(cx, &engine, df, &rules).await?,
        }
        return Ok(0);
    }
    let df = engine.evaluate(&rules[0], args.year).await?;
    match &args.out {
        Some(out) => cx.emit(df, Some(out), 0).await?,
        None => evaluation_summary(cx, &engine, df, &rules[0]).await?,
    }
    Ok(0)
}

/// `audit`: the procedure flags of a year's exits.
pub async fn audit(cx: &Context, args: &Args) -> Result<u8, Failure> {
    let engine = cx.open(&args.dir).await?;
    let rules = load_rules(&args.rules[0])?;
    let df = engine.audit(&rules, args.year).await?;
    if let Some(out) = &args.out {
        cx.emit(df, Some(out), 0).await?;
        return Ok(0);
    }
    engine.context().register_table("__audit", df.into_view())?;
    say!("audit of {} exits under {}", args.year, rules.name);
    let by_flag =
        "SELECT flag, count(*) AS households FROM __audit GROUP BY flag ORDER BY households DESC";
    cx.emit(engine.sql(by_flag).await?, None, 50).await?;
    let rows = "SELECT * FROM __audit ORDER BY household_id, flag";
    cx.emit(engine.sql(rows).await?, None, 20).await?;
    engine.context().deregister_table("__audit")?;
    Ok(0)
}

/// Units by outcome and the top failing indicators of one rule set.
pub async fn evaluation_summary(
    cx: &Context,
    engine: &Engine,
    df: DataFrame,
    rules: &RuleSet,
) -> Result<(), Failure> {
    engine.context().register_table("__eval", df.into_view())?;
    say!("{} ({} by outcome)", rules.name, rules.unit.plural());
    let outcomes = "SELECT outcome, count(*) AS units, round(100.0 * count(*) / sum(count(*)) OVER (), 1) AS pct FROM __eval GROUP BY outcome ORDER BY outcome";
    cx.emit(engine.sql(outcomes).await?, None, 10).await?;
    say!("top failing indicators");
    let failing = "SELECT indicator, count(*) AS units FROM (SELECT unnest(failed) AS indicator FROM __eval) GROUP BY indicator ORDER BY units DESC, indicator";
    cx.emit(engine.sql(failing).await?, None, 10).await?;
    if let Some(sql) = rate_intervals_sql(rules) {
        say!("assessment rates that decide, with 95% Wilson intervals (sample n)");
        cx.emit(engine.sql(&sql).await?, None, 30).await?;
    }
    engine.context().deregister_table("__eval")?;
    Ok(())
}

/// For village and county rule sets that judge on the sampled assessment
/// rates (三率一度), each unit's rates as `x.xx% [low, high] n=N` (DESIGN
/// §9): a rate read off a sample of 40 is not shown to be below 2% by its
/// point value alone. Units whose outcome is not `exit` come first.
fn rate_intervals_sql(rules: &RuleSet) -> Option<String> {
    if rules.unit == Unit::Household {
        return None;
    }
    let used: Vec<&str> = tuopin::ASSESSMENT_RATES
        .into_iter()
        .filter(|rate| rules.indicators.iter().any(|i| i.when.contains(rate)))
        .collect();
    if used.is_empty() {
        return None;
    }
    let pct = |c: String| format!("coalesce(CAST(round(100.0 * {c}, 2) AS VARCHAR), '-')");
    let columns = used
        .iter()
        .map(|r| {
            format!(
                "CASE WHEN f.{r}_n = 0 THEN 'no sample' ELSE concat({}, '% [', {}, '%, ', {}, '%] n=', f.{r}_n) END AS {r}",
                pct(format!("f.{r}")),
                pct(format!("f.{r}_low")),
                pct(format!("f.{r}_high")),
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    Some(format!(
        "SELECT e.code, e.name, e.outcome, {columns} FROM __eval e \
         JOIN {facts} f ON f.code = e.code AND f.year = e.year \
         ORDER BY e.outcome = 'exit', e.code",
        facts = rules.unit.facts_view()
    ))
}

/// Exit / stay / undetermined counts per rule set.
async fn compare_summary(
    cx: &Context,
    engine: &Engine,
    df: DataFrame,
    rules: &[RuleSet],
) -> Result<(), Failure> {
    engine.context().register_table("__cmp", df.into_view())?;
    let cols = rules
        .iter()
        .map(|r| {
            let c = format!("\"outcome_{}\"", r.name.replace('"', "\"\""));
            format!(
                "SELECT '{n}' AS rule_set, sum(CASE WHEN {c} = 'exit' THEN 1 ELSE 0 END) AS exit, \
                 sum(CASE WHEN {c} = 'stay' THEN 1 ELSE 0 END) AS stay, \
                 sum(CASE WHEN {c} = 'undetermined' THEN 1 ELSE 0 END) AS undetermined FROM __cmp",
                n = r.name.replace('\'', "''")
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    cx.emit(engine.sql(&cols).await?, None, 50).await?;
    engine.context().deregister_table("__cmp")?;
    Ok(())
}
