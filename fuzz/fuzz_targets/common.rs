#![allow(dead_code)] // each target uses its part
//! What the loader targets share: a runtime, a fixed region tree, and the
//! check that no row is lost.

use std::path::Path;
use std::sync::{Mutex, Once, OnceLock};

/// One runtime for the whole fuzzing process.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime")
    })
}

/// A valid region tree (province, city, county, township, two villages).
pub const REGIONS_CSV: &str =
    "code,name,rural_population,poor_village,poor_county,western,exit_year
130000000000,河北省,,,,false,
130100000000,石家庄市,,,,,
130102000000,甲县,,,national,,
130102001000,甲乡,,,,,
130102001001,一村,1000,true,,,2017
130102001002,二村,500,false,,,
";

/// A valid households table with one row, for inputs that fuzz another
/// table.
pub const HOUSEHOLDS_CSV: &str = "household_id,year,village_code,size,category,status
H01,2016,130102001001,3,general,poor
";

/// The last panic message, kept by the hook of [`open_and_check`].
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

/// Open `dir` and check the invariants of a load: no panic escapes the
/// library, and for every table rows read = accepted + rejected, the
/// rejects ledger naming exactly the rejected rows.
///
/// libFuzzer's harness aborts at *every* panic, also one the library
/// contains: a damaged page can make the third-party Parquet decoder
/// panic, and tuopin turns that into `Error::ReaderPanic` naming the file
/// (RELIABILITY.md). So the hook only remembers the message, and the
/// target aborts, printing it, when a panic reaches this caller.
///
/// With `store`, the tables are validated into that store folder (Parquet
/// sources then stream through DataFusion), else in memory.
pub fn open_and_check(dir: &Path, store: Option<&Path>) {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            if let Ok(mut last) = LAST_PANIC.lock() {
                *last = Some(info.to_string());
            }
        }))
    });
    let options = match store {
        // Streamed into the store (`staging_limit` 0), as a national
        // registry is: its Parquet sources are read row group by row
        // group, and the store file copies their column chunks.
        Some(store) => tuopin::OpenOptions {
            store: Some(store.to_path_buf()),
            staging_limit: Some(0),
            ..Default::default()
        },
        None => tuopin::OpenOptions::in_memory(),
    };
    let checked =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check_open(dir, &options)));
    if checked.is_err() {
        let last = LAST_PANIC.lock().ok().and_then(|mut l| l.take());
        eprintln!("panicked: a panic reached the caller: {last:?}");
        std::process::abort();
    }
}

fn check_open(dir: &Path, options: &tuopin::OpenOptions) {
    let Ok(ds) = runtime().block_on(tuopin::Dataset::open_with(dir, options)) else {
        return; // a structural fault: an error, which is fine
    };
    for s in ds.summary() {
        assert_eq!(s.rows, s.accepted + s.rejected, "{}: rows lost", s.table);
        let accepted = ds.table(&s.table).map(|t| t.num_rows()).unwrap_or(0);
        assert_eq!(accepted, s.accepted, "{}: accepted rows", s.table);
    }
    let mut named = std::collections::BTreeSet::new();
    for b in ds.rejects() {
        let (Some(t), Some(r)) = (b.column_by_name("table"), b.column_by_name("row")) else {
            panic!("rejects without table/row");
        };
        let t = datafusion::arrow::array::as_string_array(t);
        let r = datafusion::arrow::array::as_primitive_array::<
            datafusion::arrow::datatypes::Int64Type,
        >(r);
        for i in 0..b.num_rows() {
            named.insert((t.value(i).to_string(), r.value(i)));
        }
    }
    for s in ds.summary() {
        let n = named.iter().filter(|(t, _)| *t == s.table).count();
        assert_eq!(
            n, s.rejected,
            "{}: rejected rows named in the ledger",
            s.table
        );
    }
    // The engine builds over whatever was accepted.
    let engine = runtime()
        .block_on(tuopin::Engine::new(ds))
        .expect("an engine over accepted rows");
    if let Ok(years) = runtime().block_on(engine.years()) {
        if let Some(year) = years.first() {
            let m = runtime().block_on(async {
                engine.metrics(*year, None).await?.collect().await?;
                Ok::<_, tuopin::Error>(())
            });
            m.expect("metrics over accepted rows");
        }
    }
}
