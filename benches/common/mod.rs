//! What the benchmarks share: the registry they run on, generated once with
//! the project's generator and cached under `bench-data/` (git-ignored).

use std::path::PathBuf;
use std::time::Instant;

use tuopin::synth::{self, GenerateOptions};

/// The registry year every benchmark reads.
pub const YEAR: i32 = 2016;

/// The folder holding benchmark data and stores.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("bench-data")
}

/// Generate (once) and return the folder of a one-year registry of
/// `households` households (`bench-data/h<n>-y2016`, seed 2016).
pub fn bench_data(households: usize) -> PathBuf {
    let dir = root().join(format!("h{households}-y{YEAR}"));
    if !dir.join("households.parquet").exists() {
        let started = Instant::now();
        let opts = GenerateOptions {
            households,
            seed: 2016,
            only_year: Some(YEAR),
            ..Default::default()
        };
        synth::generate(&opts, &dir).expect("generate bench data");
        println!(
            "generated {households} households in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    dir
}
