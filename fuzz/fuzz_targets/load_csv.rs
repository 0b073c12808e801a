//! CSV loading and validation: the input is one table's CSV file (the
//! first byte picks households, regions or members); no panic, and no row
//! lost (accepted + rejected = rows read).
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, csv)) = data.split_first() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, bytes: &[u8]| {
        std::fs::write(dir.path().join(format!("{name}.csv")), bytes).expect("write");
    };
    match pick % 3 {
        0 => {
            write("regions", common::REGIONS_CSV.as_bytes());
            write("households", csv);
        }
        1 => {
            write("regions", csv);
            write("households", common::HOUSEHOLDS_CSV.as_bytes());
        }
        _ => {
            write("regions", common::REGIONS_CSV.as_bytes());
            write("households", common::HOUSEHOLDS_CSV.as_bytes());
            write("members", csv);
        }
    }
    common::open_and_check(dir.path(), None);
});
