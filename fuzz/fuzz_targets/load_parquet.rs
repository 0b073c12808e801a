//! Parquet loading and validation: the input is a households Parquet file
//! (seeded with valid files, mutated); no panic, no row lost.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("regions.csv"), common::REGIONS_CSV).expect("write");
    std::fs::write(dir.path().join("households.parquet"), data).expect("write");
    common::open_and_check(dir.path());
});
