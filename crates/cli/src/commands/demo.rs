//! `tuopin demo`: a sample province generated in memory, its exit
//! outcomes, city figures and county exits.

use tuopin::synth::{self, GenerateOptions};
use tuopin::{Dataset, Engine, Level, RuleSet};

use super::evaluate::evaluation_summary;
use crate::context::{Context, Failure};

/// Arguments of `demo`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Households of the sample.
    #[arg(long, default_value_t = 20_000)]
    pub households: usize,
    /// Random seed.
    #[arg(long, default_value_t = 2016)]
    pub seed: u64,
}

/// Generate, evaluate and print the summary.
pub async fn run(cx: &Context, args: &Args) -> Result<u8, Failure> {
    let (households, seed) = (args.households, args.seed);
    say!("tuopin demo: a synthetic Hebei-shaped province of {households} registered households (seed {seed})\n");
    let opts = GenerateOptions {
        households,
        seed,
        ..Default::default()
    };
    let tables = tokio::task::spawn_blocking(move || synth::generate_tables(&opts))
        .await
        .map_err(|e| Failure(2, e.to_string()))??;
    let dataset = Dataset::from_batches(tables).await?;
    say!("loaded:");
    for s in dataset.summary() {
        say!(
            "  {:<14} {:>9} rows, {:>3} rejected",
            s.table,
            s.accepted,
            s.rejected
        );
    }
    let engine = Engine::with_options(dataset, cx.engine_options()).await?;
    let year = 2016;
    say!();
    let hebei = RuleSet::builtin("hebei-2016")?;
    let outcomes = engine
        .evaluate(&hebei, year)
        .await?
        .filter(datafusion::prelude::col("household_id").is_not_null())?;
    say!("household exit under hebei-2016, {year} (all households of the snapshot):");
    evaluation_summary(cx, &engine, outcomes, &hebei).await?;
    say!("\nper city, {year}:");
    let cities = engine.metrics(year, Some(Level::City)).await?;
    engine
        .context()
        .register_table("__cities", cities.into_view())?;
    let per_city = "SELECT name AS city, round(100 * poverty_incidence, 2) AS incidence_pct, exited_households AS exits, \
                    round(mean_income, 0) AS mean_income, poor_villages_remaining FROM __cities ORDER BY code";
    cx.emit(engine.sql(per_city).await?, None, 20).await?;
    engine.context().deregister_table("__cities")?;
    let final_year = 2020;
    say!("\ncounties under county-2016 in {final_year} (designated poor counties):");
    let county = RuleSet::builtin("county-2016")?;
    engine.context().register_table(
        "__county",
        engine.evaluate(&county, final_year).await?.into_view(),
    )?;
    let by_outcome = "SELECT e.outcome, count(*) AS counties FROM __county e JOIN region_facts r ON r.code = e.code WHERE r.poor_county IS NOT NULL GROUP BY e.outcome ORDER BY e.outcome";
    cx.emit(engine.sql(by_outcome).await?, None, 10).await?;
    let listed = "SELECT e.code, e.name, e.outcome, e.vetoed_by, e.unknown FROM __county e JOIN region_facts r ON r.code = e.code WHERE r.poor_county IS NOT NULL ORDER BY e.outcome, e.code";
    cx.emit(engine.sql(listed).await?, None, 12).await?;
    engine.context().deregister_table("__county")?;
    say!(
        "\nThe command dashboard on this sample (province → city → county → township → village → household):\n  \
         tuopin serve --demo    then open http://127.0.0.1:8080/"
    );
    Ok(0)
}
