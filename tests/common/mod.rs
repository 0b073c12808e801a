//! Helpers shared by the integration test binaries: CSV fixtures written to
//! a temporary folder, and column extraction as text.
#![allow(dead_code)]

use std::path::Path;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::prelude::DataFrame;
use tuopin::{Dataset, Engine};

/// Header of a households CSV with every declared column.
pub const HH_HEADER: &str = "household_id,year,village_code,size,category,status,identified_year,exit_year,primary_cause,wage_income,business_income,property_income,transfer_income,business_expense,safe_housing,dropouts,medical_enrolled,pension_eligible,pension_enrolled,safe_water,electricity,exit_proposed,village_reviewed_on,township_audited_on,county_approved_on";

/// A small region tree: province 13, city 1301, county 130102 (national
/// poor county), township 130102001, villages 001 (poor) and 002.
pub const REGIONS_CSV: &str =
    "code,name,rural_population,poor_village,poor_county,western,exit_year
130000000000,河北省,,,,false,
130100000000,石家庄市,,,,,
130102000000,甲县,,,national,,
130102001000,甲乡,,,,,
130102001001,一村,1000,true,,,2017
130102001002,二村,500,false,,,
";

/// Write `files` (`(table, csv text)`) into a fresh temporary folder.
pub fn write_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text) in files {
        std::fs::write(dir.path().join(format!("{name}.csv")), text).expect("write fixture");
    }
    dir
}

/// Open a dataset folder.
pub async fn open(dir: &Path) -> Dataset {
    Dataset::open_with(dir, &tuopin::OpenOptions::in_memory())
        .await
        .expect("dataset opens")
}

/// An engine over a generated in-memory registry (2014–2020) with `options`.
pub async fn generated_with(
    households: usize,
    seed: u64,
    options: tuopin::EngineOptions,
) -> Engine {
    let tables = tuopin::synth::generate_tables(&tuopin::GenerateOptions {
        households,
        seed,
        ..Default::default()
    })
    .unwrap();
    Engine::with_options(Dataset::from_batches(tables).await.unwrap(), options)
        .await
        .unwrap()
}

/// Register `metrics(year, all)` as the view `m` of `engine`'s session.
pub async fn register_metrics_view(engine: &Engine, year: i32) {
    let all = engine.metrics(year, None).await.unwrap();
    engine
        .context()
        .register_table("m", all.into_view())
        .unwrap();
}

/// An engine over a generated in-memory registry with default options.
pub async fn generated(households: usize, seed: u64) -> Engine {
    generated_with(households, seed, Default::default()).await
}

/// Engine over CSV fixtures.
pub async fn engine(files: &[(&str, &str)]) -> Engine {
    let dir = write_dir(files);
    Engine::new(open(dir.path()).await).await.expect("engine")
}

/// Collect a DataFrame.
pub async fn collect(df: DataFrame) -> Vec<RecordBatch> {
    df.collect().await.expect("query runs")
}

/// Run `sql` on `engine` and collect the result.
pub async fn query(engine: &Engine, sql: &str) -> Vec<RecordBatch> {
    collect(engine.sql(sql).await.expect("query plans")).await
}

/// Column `name` of `batches` as text (`None` for null); lists as
/// `;`-joined text.
pub fn text(batches: &[RecordBatch], name: &str) -> Vec<Option<String>> {
    let mut out = Vec::new();
    for b in batches {
        let b = tuopin::output::lists_as_text(b).expect("lists as text");
        let col = b
            .column_by_name(name)
            .unwrap_or_else(|| panic!("no column {name}"));
        let col = cast(col, &DataType::Utf8).expect("cast to text");
        let s = col.as_string::<i32>();
        for i in 0..s.len() {
            out.push(s.is_valid(i).then(|| s.value(i).to_string()));
        }
    }
    out
}

/// Column `name` as f64 (`None` for null).
pub fn floats(batches: &[RecordBatch], name: &str) -> Vec<Option<f64>> {
    let mut out = Vec::new();
    for b in batches {
        let col = b
            .column_by_name(name)
            .unwrap_or_else(|| panic!("no column {name}"));
        let col = cast(col, &DataType::Float64).expect("cast to f64");
        let a = col.as_primitive::<datafusion::arrow::datatypes::Float64Type>();
        for i in 0..a.len() {
            out.push(a.is_valid(i).then(|| a.value(i)));
        }
    }
    out
}

/// Number of rows.
pub fn count(batches: &[RecordBatch]) -> usize {
    batches.iter().map(|b| b.num_rows()).sum()
}

/// Assert two floats agree to 1e-9.
pub fn close(a: Option<f64>, b: f64, what: &str) {
    let a = a.unwrap_or_else(|| panic!("{what}: null, expected {b}"));
    assert!((a - b).abs() < 1e-9, "{what}: {a} != {b}");
}

/// One households CSV row with the indicator columns filled in as a
/// fully compliant household (housing, no dropouts, everyone enrolled,
/// water, electricity) and no procedure dates; `wage` is the whole income.
#[allow(clippy::too_many_arguments)]
pub fn hh_row(
    id: &str,
    year: i32,
    village: &str,
    size: i32,
    status: &str,
    identified: i32,
    exit_year: Option<i32>,
    cause: &str,
    wage: Option<f64>,
) -> String {
    let exit = exit_year.map(|y| y.to_string()).unwrap_or_default();
    let wage = wage.map(|w| w.to_string()).unwrap_or_default();
    format!(
        "{id},{year},{village},{size},general,{status},{identified},{exit},{cause},{wage},0,0,0,0,true,0,{size},{size},{size},true,true,false,,,"
    )
}
