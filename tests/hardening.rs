//! Hardening (DESIGN §7, §11; RELIABILITY.md): each fault class with a
//! test that failed before it was handled — read-only SQL, input columns
//! named anything, blank text, rule sanity, arithmetic on input, years
//! outside the data, the async contract, and validation errors that name
//! their table.

mod common;

use common::*;
use tuopin::{Engine, ErrorKind, Level, RuleSet, SqlOptions};

async fn counts(engine: &Engine) -> Vec<Option<String>> {
    let causes = collect(engine.causes(2016, Some(Level::County)).await.unwrap()).await;
    text(&causes, "households")
}

#[tokio::test]
async fn sql_is_read_only_unless_asked_and_registered_names_stay() {
    let engine = generated(400, 5).await;
    let before = counts(&engine).await;
    let out = tempfile::tempdir().unwrap();
    let copy_to = out.path().join("x.csv");
    let refused = [
        format!(
            "COPY (SELECT household_id FROM households) TO '{}'",
            copy_to.display()
        ),
        "CREATE EXTERNAL TABLE pw STORED AS CSV LOCATION '/etc/passwd'".to_string(),
        "CREATE OR REPLACE VIEW household_facts AS SELECT * FROM households WHERE false"
            .to_string(),
        "DROP VIEW household_facts".to_string(),
        "CREATE TABLE mine AS SELECT 1 AS x".to_string(),
        "INSERT INTO rejects VALUES ('t', 1, 'k', 'c', 'p', NULL)".to_string(),
        "SET datafusion.execution.batch_size = 1".to_string(),
    ];
    for q in &refused {
        let err = engine.sql(q).await.expect_err(q);
        assert!(matches!(err, tuopin::Error::ReadOnly { .. }), "{q}: {err}");
        assert_eq!(err.kind(), ErrorKind::Query);
        assert!(err.to_string().contains("read-only"), "{err}");
    }
    assert!(!copy_to.exists(), "COPY wrote a file");
    assert_eq!(counts(&engine).await, before, "views unchanged");

    // With writes allowed, the user's own objects work …
    let write = SqlOptions { allow_write: true };
    engine
        .sql_with(
            "CREATE VIEW mine AS SELECT count(*) AS n FROM households",
            write,
        )
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let n = query(&engine, "SELECT n FROM mine").await;
    assert_eq!(text(&n, "n").len(), 1);
    engine
        .sql_with(
            &format!(
                "COPY (SELECT household_id FROM households) TO '{}' STORED AS CSV",
                copy_to.display()
            ),
            write,
        )
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert!(copy_to.exists());
    // … but registered names can still not be replaced or dropped.
    for q in [
        "CREATE OR REPLACE VIEW household_facts AS SELECT * FROM households WHERE false",
        "DROP VIEW county_facts",
        "DROP TABLE households",
        "CREATE OR REPLACE TABLE rejects AS SELECT 1 AS x",
        "INSERT INTO households SELECT * FROM households",
    ] {
        let err = engine.sql_with(q, write).await.expect_err(q);
        assert!(
            err.to_string().contains("registered by tuopin"),
            "{q}: {err}"
        );
    }
    assert_eq!(counts(&engine).await, before, "views unchanged");
}

#[tokio::test]
async fn read_only_queries_still_run() {
    let engine = generated(300, 6).await;
    for q in [
        "SELECT status, count(*) FROM household_facts GROUP BY status",
        "EXPLAIN SELECT * FROM households",
        "SHOW TABLES",
        "WITH x AS (SELECT 1 AS a) SELECT * FROM x",
    ] {
        engine.sql(q).await.unwrap().collect().await.unwrap();
    }
    let hebei = RuleSet::builtin("hebei-2016").unwrap();
    assert!(engine.evaluate(&hebei, 2016).await.is_ok());
}

const V1: &str = "130102001001";
const V2: &str = "130102001002";

/// Households with extra columns whose names clash with derived and
/// internal ones: `net_income` (registries export a household net
/// income), `level`, `__row`.
fn clashing_households() -> String {
    let mut csv = format!("{HH_HEADER},net_income,level,__row\n");
    for (i, v) in [V1, V1, V2].iter().enumerate() {
        let row = hh_row(
            &format!("H0{i}"),
            2016,
            v,
            2,
            "poor",
            2014,
            None,
            "illness",
            Some(10_000.0),
        );
        csv.push_str(&format!("{row},999,village,{i}\n"));
    }
    csv
}

#[tokio::test]
async fn input_columns_may_be_named_anything() {
    let regions = REGIONS_CSV.replacen(
        "code,name,rural_population,poor_village,poor_county,western,exit_year",
        "code,name,rural_population,poor_village,poor_county,western,exit_year,level,poor_households",
        1,
    );
    let regions: String = regions
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == 0 {
                format!("{l}\n")
            } else {
                format!("{l},x,7\n")
            }
        })
        .collect();
    let engine = engine(&[
        ("regions", &regions),
        ("households", &clashing_households()),
    ])
    .await;
    let notes: Vec<String> = engine
        .dataset()
        .summary()
        .iter()
        .flat_map(|s| s.notes.iter().map(move |n| format!("{}: {n}", s.table)))
        .collect();
    for want in [
        "households: column `net_income` renamed `source_net_income`",
        "households: column `__row` renamed `source___row`",
        "regions: column `level` renamed `source_level`",
        "regions: column `poor_households` renamed `source_poor_households`",
    ] {
        assert!(
            notes.iter().any(|n| n.starts_with(want)),
            "{want} in {notes:?}"
        );
    }
    // The derived net income is the sum of the parts; the input's is kept.
    let facts = query(
        &engine,
        "SELECT net_income, source_net_income, level FROM household_facts ORDER BY household_id",
    )
    .await;
    assert_eq!(floats(&facts, "net_income"), vec![Some(10_000.0); 3]);
    assert_eq!(floats(&facts, "source_net_income"), vec![Some(999.0); 3]);
    assert_eq!(text(&facts, "level"), vec![Some("village".to_string()); 3]);
    // Every analytic runs.
    let hebei = RuleSet::builtin("hebei-2016").unwrap();
    assert_eq!(
        count(&collect(engine.evaluate(&hebei, 2016).await.unwrap()).await),
        3
    );
    let m = collect(engine.metrics(2016, None).await.unwrap()).await;
    assert_eq!(count(&m), 6);
    let county = query(&engine, "SELECT poor_households FROM county_facts").await;
    assert_eq!(
        text(&county, "poor_households"),
        vec![Some("3".to_string())]
    );
    let villages = collect(engine.metrics(2016, Some(Level::Village)).await.unwrap()).await;
    assert_eq!(count(&villages), 2);
}

#[tokio::test]
async fn blank_text_is_null_for_every_input() {
    use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
    use std::sync::Arc;
    // CSV: a household id of spaces and a blank extra column.
    let mut csv = format!("{HH_HEADER},note\n");
    for id in ["H01", "   ", "H03"] {
        let row = hh_row(id, 2016, V1, 2, "poor", 2014, None, "illness", Some(9000.0));
        csv.push_str(&format!("{row},\u{3000}\n"));
    }
    let from_csv = engine(&[("regions", REGIONS_CSV), ("households", &csv)]).await;
    let rejects = collect(from_csv.rejects().await.unwrap()).await;
    assert_eq!(text(&rejects, "column"), vec![Some("household_id".into())]);
    assert_eq!(
        text(&rejects, "problem"),
        vec![Some("missing value".into())]
    );
    let notes = query(&from_csv, "SELECT note FROM households").await;
    assert_eq!(text(&notes, "note"), vec![None, None]);

    // Arrow (what pyarrow, polars and pandas hand over): "" and "  " too.
    let regions = from_csv.dataset().table("regions").unwrap().batches.clone();
    let hh = from_csv.dataset().table("households").unwrap();
    let batch = arrow::compute::concat_batches(&hh.schema, &hh.batches).unwrap();
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    let id = batch.schema().index_of("household_id").unwrap();
    columns[id] = Arc::new(StringArray::from(vec!["", "  "]));
    let blanked = RecordBatch::try_new(batch.schema(), columns).unwrap();
    let ds = tuopin::Dataset::from_batches([("regions", regions), ("households", vec![blanked])])
        .await
        .unwrap();
    let summary = ds
        .summary()
        .iter()
        .find(|s| s.table == "households")
        .unwrap();
    assert_eq!((summary.accepted, summary.rejected), (0, 2));
}

fn one_indicator(key: &str, points: &str, when: &str) -> String {
    format!("[[indicator]]\nkey = \"{key}\"\npoints = {points}\nveto = false\nwhen = \"{when}\"\n")
}

#[tokio::test]
async fn rule_files_with_infinite_totals_or_random_conditions_are_refused() {
    let huge = format!(
        "name = \"huge\"\nunit = \"household\"\n{}{}",
        one_indicator("a", "1e308", "size > 0"),
        one_indicator("b", "1e308", "size > 1")
    );
    let err = RuleSet::from_toml(&huge).expect_err("infinite total");
    assert!(err.to_string().contains("finite"), "{err}");
    assert_eq!(err.kind(), ErrorKind::Rule);

    let engine = generated(200, 3).await;
    for (key, when) in [
        ("coin", "random() > 0.5"),
        ("today", "now() > CAST('2016-01-01' AS TIMESTAMP)"),
        ("id", "uuid() <> ''"),
    ] {
        let text = format!(
            "name = \"volatile\"\nunit = \"household\"\n{}",
            one_indicator(key, "10", when)
        );
        let rules = RuleSet::from_toml(&text).unwrap();
        let err = engine.evaluate(&rules, 2016).await.expect_err(when);
        let msg = err.to_string();
        assert_eq!(err.kind(), ErrorKind::Rule, "{msg}");
        assert!(msg.contains(&format!("indicator `{key}`")), "{msg}");
        assert!(msg.contains("not deterministic"), "{msg}");
    }
    // Deterministic functions stay allowed.
    let ok = format!(
        "name = \"fine\"\nunit = \"household\"\n{}",
        one_indicator(
            "income",
            "10",
            "round(per_capita_net_income) > abs(poverty_line)"
        )
    );
    let rules = RuleSet::from_toml(&ok).unwrap();
    assert!(engine.evaluate(&rules, 2016).await.is_ok());
}

#[tokio::test]
async fn a_year_outside_the_registry_is_an_error_naming_its_years() {
    let engine = generated(300, 8).await;
    assert_eq!(
        engine.years().await.unwrap(),
        (2014..=2020).collect::<Vec<_>>()
    );
    let hebei = RuleSet::builtin("hebei-2016").unwrap();
    let county = RuleSet::builtin("county-2016").unwrap();
    for year in [2030, 1999, i32::MIN, i32::MAX] {
        let errors = [
            engine.metrics(year, Some(Level::City)).await.err(),
            engine.evaluate(&hebei, year).await.err(),
            engine.evaluate(&county, year).await.err(),
            engine.audit(&hebei, year).await.err(),
            engine.causes(year, None).await.err(),
            engine.transitions(year, None).await.err(),
        ];
        for err in errors {
            let err = err.expect("an error, not zero poverty");
            assert_eq!(err.kind(), ErrorKind::Data, "{err}");
            let msg = err.to_string();
            assert!(msg.contains(&year.to_string()), "{msg}");
            assert!(msg.contains("2014–2020"), "{msg}");
        }
    }
    // The registry's first year has no previous snapshot: every household
    // is `not_in_previous`, no error.
    let t = collect(
        engine
            .transitions(2014, Some(Level::Province))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(text(&t, "households"), text(&t, "not_in_previous"));
    assert!(engine.notes(2016).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_year_without_a_poverty_line_says_so() {
    let households = [2016, 2013]
        .iter()
        .enumerate()
        .map(|(i, y)| {
            hh_row(
                &format!("H{i}"),
                *y,
                V1,
                2,
                "poor",
                2013,
                None,
                "illness",
                Some(5000.0),
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    let engine = engine(&[
        ("regions", REGIONS_CSV),
        ("households", &format!("{HH_HEADER}\n{households}\n")),
    ])
    .await;
    let notes = engine.notes(2013).await.unwrap();
    assert_eq!(notes.len(), 1);
    assert!(notes[0].contains("no poverty line for 2013"), "{notes:?}");
    assert!(engine.notes(2016).await.unwrap().is_empty());
    // The year still evaluates: the income indicator is unknown.
    let hebei = RuleSet::builtin("hebei-2016").unwrap();
    let out = collect(engine.evaluate(&hebei, 2013).await.unwrap()).await;
    assert_eq!(text(&out, "unknown"), vec![Some("income".into())]);
}

#[test]
fn the_engine_never_blocks_the_callers_runtime() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};
    // One thread: whatever the engine does (file work, planning, queries)
    // must leave the other task room to run.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let data = tempfile::tempdir().unwrap();
    let tables = tuopin::synth::generate_tables(&tuopin::GenerateOptions {
        households: 1500,
        seed: 4,
        ..Default::default()
    })
    .unwrap();
    for (name, batches) in &tables {
        tuopin::output::write_batches(batches, data.path().join(format!("{name}.parquet")))
            .unwrap();
    }
    let store = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let done = Arc::new(AtomicBool::new(false));
        let gaps = Arc::new(Mutex::new(Vec::new()));
        let (d, g) = (done.clone(), gaps.clone());
        let ticker = tokio::spawn(async move {
            let mut last = Instant::now();
            let mut ticks = 0usize;
            while !d.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(2)).await;
                g.lock().unwrap().push(last.elapsed());
                last = Instant::now();
                ticks += 1;
            }
            ticks
        });
        let options = tuopin::OpenOptions {
            store: Some(store.path().join("st")),
            cache: false,
            memory_limit: None,
            ..Default::default()
        };
        for _ in 0..2 {
            // First validates into the store, then reopens it.
            let ds = tuopin::Dataset::open_with(data.path(), &options)
                .await
                .unwrap();
            let engine = Engine::new(ds).await.unwrap();
            let m = engine.metrics(2016, None).await.unwrap();
            assert!(count(&collect(m).await) > 0);
        }
        done.store(true, Ordering::Relaxed);
        let ticks = ticker.await.unwrap();
        assert!(ticks > 10, "the other task ran {ticks} times");
        let worst = gaps
            .lock()
            .unwrap()
            .iter()
            .max()
            .copied()
            .unwrap_or_default();
        assert!(
            worst < Duration::from_millis(500),
            "the other task waited {worst:?} at once"
        );
    });
}

#[tokio::test]
async fn a_failing_validation_plan_names_its_table_and_file() {
    let dir = write_dir(&[
        ("regions", REGIONS_CSV),
        ("households", &clashing_households()),
    ]);
    let options = tuopin::OpenOptions {
        store: None,
        cache: false,
        memory_limit: Some(4 << 10),
        ..Default::default()
    };
    let err = tuopin::Dataset::open_with(dir.path(), &options)
        .await
        .expect_err("4 KiB cannot validate");
    let msg = err.to_string();
    assert!(msg.contains("loading table `regions`"), "{msg}");
    assert!(msg.contains("regions.csv"), "{msg}");
    assert_eq!(err.kind(), ErrorKind::Query, "{msg}");
}

#[tokio::test]
async fn a_parquet_file_with_a_damaged_embedded_schema_does_not_panic() {
    // Found by the load_parquet fuzz target: a mutated `ARROW:schema`
    // footer entry made the Arrow decoder panic. Column types now come
    // from the Parquet schema itself.
    // Also found: a footer with a negative column offset made the Parquet
    // reader assert; such a footer is now refused naming the file.
    for name in [
        "damaged-arrow-schema.parquet",
        "negative-offset.parquet",
        "bad-bit-width.parquet",
    ] {
        damaged_parquet_does_not_panic(name).await;
    }
}

#[tokio::test]
async fn a_panic_inside_the_parquet_decoder_is_an_error_naming_the_file() {
    // Found by the CI fuzz run of load_parquet: a dictionary page whose
    // bit width is 40 makes the Parquet decoder assert (in release builds
    // too). The panic is contained where tables are read and validated,
    // in memory and when streaming into a store, and reported as a load
    // error naming the table and the file.
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/bad-bit-width.parquet");
    for with_store in [false, true] {
        let dir = write_dir(&[("regions", REGIONS_CSV)]);
        std::fs::copy(&fixture, dir.path().join("households.parquet")).unwrap();
        let store = tempfile::tempdir().unwrap();
        let options = tuopin::OpenOptions {
            store: with_store.then(|| store.path().join("s")),
            cache: false,
            memory_limit: None,
            ..Default::default()
        };
        let err = tuopin::Dataset::open_with(dir.path(), &options)
            .await
            .expect_err("a damaged page is not data");
        let msg = err.to_string();
        assert!(msg.contains("loading table `households`"), "{msg}");
        assert!(msg.contains("households.parquet"), "{msg}");
        assert!(msg.contains("damaged data"), "{msg}");
        assert!(msg.contains("bit"), "{msg}");
        assert_eq!(err.kind(), ErrorKind::Data, "{msg}");
        assert!(
            !store.path().join("s").exists(),
            "nothing is left in the store's place"
        );
    }
}

async fn damaged_parquet_does_not_panic(name: &str) {
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let dir = write_dir(&[("regions", REGIONS_CSV)]);
    std::fs::copy(&fixture, dir.path().join("households.parquet")).unwrap();
    match tuopin::Dataset::open_with(dir.path(), &tuopin::OpenOptions::in_memory()).await {
        Ok(ds) => {
            let s = ds
                .summary()
                .iter()
                .find(|s| s.table == "households")
                .unwrap();
            assert_eq!(s.rows, s.accepted + s.rejected);
        }
        Err(e) => assert!(e.to_string().contains("households"), "{e}"),
    }
}
