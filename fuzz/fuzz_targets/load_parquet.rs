//! Parquet loading and validation: the input is a households Parquet file
//! (seeded with valid files, mutated), opened in memory and into a store;
//! no panic reaches the caller, no row lost.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("tempdir");
    let sources = dir.path().join("data");
    std::fs::create_dir(&sources).expect("mkdir");
    std::fs::write(sources.join("regions.csv"), common::REGIONS_CSV).expect("write");
    std::fs::write(sources.join("households.parquet"), data).expect("write");
    // In memory (the file read whole); for a quarter of the inputs (chosen
    // by length, so a crash reproduces) also streamed into a store, as a
    // large registry is (row group by row group, the store file copying the
    // source's column chunks) — about ten times the work per input, hence
    // not for all.
    common::open_and_check(&sources, None);
    if data.len() % 4 == 0 {
        common::open_and_check(&sources, Some(&dir.path().join("store")));
    }
});
