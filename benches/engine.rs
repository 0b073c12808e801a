//! Criterion benchmarks W1–W4 and W6 (see BENCHMARKS.md) at 100k and 1.2M
//! households, one registry year (2016), generated once and cached under
//! `bench-data/`.
//!
//! ```sh
//! cargo bench --bench engine                    # both scales
//! TUOPIN_BENCH_SCALES=100000 cargo bench --bench engine
//! ```

mod common;

use std::time::Duration;

use common::{bench_data, YEAR};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use tuopin::{Dataset, Engine, OpenOptions, RuleSet};

fn scales() -> Vec<usize> {
    std::env::var("TUOPIN_BENCH_SCALES")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![100_000, 1_200_000])
}

fn variants() -> Vec<RuleSet> {
    let hebei = RuleSet::builtin("hebei-2016").expect("builtin");
    let mut v: Vec<RuleSet> = [60.0, 70.0, 80.0, 90.0]
        .iter()
        .map(|p| {
            hebei
                .with_pass_score(&format!("pass{p}"), *p)
                .expect("variant")
        })
        .collect();
    v.push(RuleSet::builtin("national-2016").expect("builtin"));
    v
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    for n in scales() {
        let dir = bench_data(n);
        let mut g = c.benchmark_group(format!("h{n}"));
        g.sample_size(10)
            .measurement_time(Duration::from_secs(20))
            .warm_up_time(Duration::from_secs(2));
        g.bench_function("W1_load_validate", |b| {
            b.to_async(&rt).iter(|| async {
                Dataset::open_with(&dir, &OpenOptions::in_memory())
                    .await
                    .expect("load")
            })
        });
        // W1 into a store (what the first command on a dataset pays) and
        // reopening it (what every later command pays).
        let stores = tempfile::tempdir().expect("tempdir");
        let store = OpenOptions {
            store: Some(stores.path().join("store")),
            ..Default::default()
        };
        g.bench_function("W1_cold_store", |b| {
            b.to_async(&rt).iter_batched(
                || {
                    let _ = std::fs::remove_dir_all(stores.path().join("store"));
                },
                |()| async { Dataset::open_with(&dir, &store).await.expect("load") },
                BatchSize::PerIteration,
            )
        });
        rt.block_on(Dataset::open_with(&dir, &store))
            .expect("store");
        g.bench_function("W1_reopen", |b| {
            b.to_async(&rt).iter(|| async {
                let ds = Dataset::open_with(&dir, &store).await.expect("reopen");
                assert!(ds.reused_store());
                Engine::new(ds).await.expect("engine")
            })
        });
        let engine = rt.block_on(async {
            Engine::new(
                Dataset::open_with(&dir, &OpenOptions::in_memory())
                    .await
                    .expect("load"),
            )
            .await
            .expect("engine")
        });
        let hebei = RuleSet::builtin("hebei-2016").expect("builtin");
        g.bench_function("W2_evaluate_hebei", |b| {
            b.to_async(&rt).iter(|| async {
                engine
                    .evaluate(&hebei, YEAR)
                    .await
                    .expect("plan")
                    .collect()
                    .await
                    .expect("run")
            })
        });
        g.bench_function("W3_metrics_all", |b| {
            b.to_async(&rt).iter(|| async {
                engine
                    .metrics(YEAR, None)
                    .await
                    .expect("plan")
                    .collect()
                    .await
                    .expect("run")
            })
        });
        let v = variants();
        g.bench_function("W4_evaluate_many_5", |b| {
            b.to_async(&rt).iter(|| async {
                engine
                    .evaluate_many(&v, YEAR)
                    .await
                    .expect("plan")
                    .collect()
                    .await
                    .expect("run")
            })
        });
        // W6: the Alkire–Foster index at every level for three cut-offs.
        let ks = [0.2, 1.0 / 3.0, 0.5];
        g.bench_function("W6_mpi_all_3k", |b| {
            b.to_async(&rt).iter(|| async {
                engine
                    .mpi(&hebei, YEAR, None, &ks)
                    .await
                    .expect("plan")
                    .collect()
                    .await
                    .expect("run")
            })
        });
        g.finish();
    }
}

criterion_group!(engine, benches);
criterion_main!(engine);
