//! Property tests (proptest): results do not depend on how the data is
//! split or where it comes from, and loading loses no row.
//!
//! - outcomes and metrics are identical whatever the partition count and
//!   batch size;
//! - the same registry as CSV, Parquet or in-memory batches gives the same
//!   accepted tables, rejects and outcomes;
//! - for every table, rows read = accepted + rejected, and the rejects
//!   ledger names exactly the rejected rows.

mod common;

use std::collections::BTreeSet;

use common::{collect, text};
use datafusion::arrow::array::RecordBatch;
use datafusion::prelude::col;
use proptest::prelude::*;
use tuopin::{Dataset, Engine, EngineOptions, Level, RuleSet};

fn registry(households: usize, seed: u64, faults: f64) -> Vec<(&'static str, Vec<RecordBatch>)> {
    tuopin::synth::generate_tables(&tuopin::GenerateOptions {
        households,
        seed,
        faults,
        only_year: Some(2016),
        ..Default::default()
    })
    .expect("generate")
}

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// Outcomes (sorted by household) and all-level metrics (sorted by level
/// and code) of `engine`, as rows of text.
async fn results(engine: &Engine) -> Vec<Vec<Option<String>>> {
    let hebei = RuleSet::builtin("hebei-2016").expect("builtin");
    let outcomes = collect(
        engine
            .evaluate(&hebei, 2016)
            .await
            .expect("evaluate")
            .sort(vec![col("household_id").sort(true, false)])
            .expect("sort"),
    )
    .await;
    let metrics = collect(
        engine
            .metrics(2016, None)
            .await
            .expect("metrics")
            .sort(vec![
                col("level").sort(true, false),
                col("code").sort(true, false),
            ])
            .expect("sort"),
    )
    .await;
    let county = collect(
        engine
            .metrics(2016, Some(Level::County))
            .await
            .expect("county"),
    )
    .await;
    let mut out = Vec::new();
    for name in ["household_id", "score", "outcome", "failed", "unknown"] {
        out.push(text(&outcomes, name));
    }
    for name in [
        "code",
        "poor_population",
        "median_income",
        "fgt1",
        "mean_income",
    ] {
        out.push(text(&metrics, name));
        out.push(text(&county, name));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

    #[test]
    fn results_do_not_depend_on_partitions_or_batch_size(
        seed in 0u64..1000,
        partitions in 1usize..5,
        batch_size in prop::sample::select(vec![7usize, 100, 1024, 8192]),
    ) {
        let tables = registry(300, seed, 0.02);
        let (base, other) = block_on(async {
            let base = Engine::with_options(
                Dataset::from_batches(tables.clone()).await.expect("load"),
                EngineOptions { target_partitions: 1, batch_size: 8192, ..Default::default() },
            )
            .await
            .expect("engine");
            let other = Engine::with_options(
                Dataset::from_batches(tables).await.expect("load"),
                EngineOptions { target_partitions: partitions, batch_size, ..Default::default() },
            )
            .await
            .expect("engine");
            (results(&base).await, results(&other).await)
        });
        prop_assert_eq!(base, other);
    }

    #[test]
    fn csv_parquet_and_memory_agree(seed in 0u64..1000, faults in 0.0f64..0.08) {
        let tables = registry(250, seed, faults);
        let (csv, parquet) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        for (name, batches) in &tables {
            tuopin::output::write_batches(batches, csv.path().join(format!("{name}.csv"))).unwrap();
            tuopin::output::write_batches(batches, parquet.path().join(format!("{name}.parquet")))
                .unwrap();
        }
        let all = block_on(async {
            let mut all = Vec::new();
            for ds in [
                Dataset::from_batches(tables.clone()).await.expect("memory"),
                Dataset::open_with(csv.path(), &tuopin::OpenOptions::in_memory()).await.expect("csv"),
                Dataset::open_with(parquet.path(), &tuopin::OpenOptions::in_memory()).await.expect("parquet"),
            ] {
                let rejects: Vec<Vec<Option<String>>> = ["table", "row", "key", "column", "problem"]
                    .iter()
                    .map(|c| text(ds.rejects(), c))
                    .collect();
                let counts: Vec<(String, usize, usize, usize)> = ds
                    .summary()
                    .iter()
                    .map(|s| (s.table.clone(), s.rows, s.accepted, s.rejected))
                    .collect();
                let engine = Engine::new(ds).await.expect("engine");
                all.push((counts, rejects, results(&engine).await));
            }
            all
        });
        prop_assert_eq!(&all[0], &all[1], "memory vs CSV");
        prop_assert_eq!(&all[0], &all[2], "memory vs Parquet");
    }

    #[test]
    fn every_row_is_accepted_or_rejected(seed in 0u64..1000, faults in 0.0f64..0.2) {
        let tables = registry(200, seed, faults);
        let given: Vec<(String, usize)> = tables
            .iter()
            .map(|(n, b)| (n.to_string(), b.iter().map(|b| b.num_rows()).sum()))
            .collect();
        let ds = block_on(Dataset::from_batches(tables)).expect("load");
        for (name, rows) in given {
            let s = ds.summary().iter().find(|s| s.table == name).expect("summary");
            prop_assert_eq!(s.rows, rows, "{} rows read", &name);
            prop_assert_eq!(s.accepted + s.rejected, rows, "{}", &name);
            prop_assert_eq!(ds.table(&name).map(|t| t.num_rows()).unwrap_or(0), s.accepted);
            // The ledger names exactly the rejected rows (a row may have
            // several faults).
            let tables = text(ds.rejects(), "table");
            let rows_named: BTreeSet<String> = text(ds.rejects(), "row")
                .into_iter()
                .zip(tables)
                .filter(|(_, t)| t.as_deref() == Some(name.as_str()))
                .filter_map(|(r, _)| r)
                .collect();
            prop_assert_eq!(rows_named.len(), s.rejected, "{}", &name);
        }
    }
}
