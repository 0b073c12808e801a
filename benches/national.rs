//! W5, national scale (see BENCHMARKS.md): a one-year registry of 30
//! million households validated into a disk store under a memory limit,
//! then W2 (evaluate `hebei-2016`, outcomes streamed to Parquet) and
//! county-level W3 (`metrics(2016, county)`), each run `TUOPIN_W5_RUNS`
//! times; prints wall times (median of the runs) and the peak resident
//! memory of the load and of the query phase.
//!
//! ```sh
//! cargo bench --bench national                        # 30 M, 3 GiB limit
//! TUOPIN_W5_HOUSEHOLDS=3600000 TUOPIN_W5_MEMORY_MIB=1024 cargo bench --bench national
//! ```
//!
//! The registry is generated once under `bench-data/` (≈ 6 min, 2.4 GB at
//! 30 M); the store goes to `bench-data/store-<n>` and is rebuilt each run.

mod common;

use std::time::Instant;

use common::{bench_data, YEAR};
use tuopin::{Dataset, Engine, EngineOptions, Level, OpenOptions, RuleSet};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// Peak resident memory of this process so far (VmHWM), in MiB.
fn peak_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// Reset the peak-memory mark (Linux: `echo 5 > /proc/self/clear_refs`),
/// so the next phase's peak is its own.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench` asks harness-less benches for a list
    }
    let households = env_usize("TUOPIN_W5_HOUSEHOLDS", 30_000_000);
    let limit = env_usize("TUOPIN_W5_MEMORY_MIB", 3 * 1024) << 20;
    let runs = env_usize("TUOPIN_W5_RUNS", 3).max(1);
    let dir = bench_data(households);
    // The load's peak, not the generator's (it runs in this process when
    // the data is not cached yet).
    reset_peak();
    let store = common::root().join(format!("store-{households}"));
    let _ = std::fs::remove_dir_all(&store);
    let rt = tokio::runtime::Runtime::new().expect("runtime");

    let started = Instant::now();
    let options = OpenOptions {
        store: Some(store.clone()),
        cache: false,
        memory_limit: Some(limit),
        ..Default::default()
    };
    let dataset = rt
        .block_on(Dataset::open_with(&dir, &options))
        .expect("load");
    let load_s = started.elapsed().as_secs_f64();
    for s in dataset.summary() {
        println!(
            "  {:<14} {:>11} rows {:>11} accepted",
            s.table, s.rows, s.accepted
        );
    }
    println!(
        "W5 load + validate into the store: {load_s:.1} s, peak RSS {:.0} MiB (limit {} MiB)",
        peak_mib(),
        limit >> 20
    );
    let engine = rt
        .block_on(Engine::with_options(
            dataset,
            EngineOptions {
                memory_limit: Some(limit),
                ..Default::default()
            },
        ))
        .expect("engine");
    reset_peak();
    let hebei = RuleSet::builtin("hebei-2016").expect("builtin");
    let out = store.join("w5-outcomes.parquet");
    let mut w2 = Vec::new();
    let mut w2_parquet = Vec::new();
    let mut w3 = Vec::new();
    for _ in 0..runs {
        // W2 computed and dropped batch by batch (the evaluation alone) ...
        let t = Instant::now();
        let computed = rt
            .block_on(async {
                use futures::StreamExt;
                let df = engine.evaluate(&hebei, YEAR).await?;
                let mut stream = df.execute_stream().await?;
                let mut rows = 0;
                while let Some(batch) = stream.next().await {
                    rows += batch?.num_rows();
                }
                Ok::<_, tuopin::Error>(rows)
            })
            .expect("W2");
        w2.push(t.elapsed().as_secs_f64());
        // ... and streamed into a Parquet file (what a user keeps).
        let t = Instant::now();
        let rows = rt
            .block_on(async {
                let df = engine.evaluate(&hebei, YEAR).await?;
                tuopin::output::write_dataframe(df, &out).await
            })
            .expect("W2");
        assert_eq!(rows, computed);
        w2_parquet.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let counties = rt
            .block_on(async {
                engine
                    .metrics(YEAR, Some(Level::County))
                    .await?
                    .collect()
                    .await
                    .map_err(tuopin::Error::from)
            })
            .expect("W3");
        w3.push(t.elapsed().as_secs_f64());
        let n: usize = counties.iter().map(|b| b.num_rows()).sum();
        println!("  run: W2 {rows} outcomes, W3 {n} counties");
    }
    let (w2, w2_parquet, w3) = (median(w2), median(w2_parquet), median(w3));
    println!(
        "W5 medians: W2 evaluate {w2:.2} s (streamed into Parquet {w2_parquet:.2} s); W3 county metrics {w3:.2} s; W2 + W3 {:.2} s; peak RSS of the queries {:.0} MiB",
        w2 + w3,
        peak_mib()
    );
}
