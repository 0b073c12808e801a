//! Disk-backed datasets (`OpenOptions::store`): the same accepted rows,
//! rejects, outcomes and metrics as in memory, with the tables kept as
//! Parquet files; and streamed result output.

mod common;

use std::path::Path;

use common::{collect, count, query, text};
use datafusion::arrow::array::RecordBatch;
use tuopin::{Dataset, Engine, EngineOptions, Level, OpenOptions, RuleSet};

const YEAR: i32 = 2016;

/// A generated registry (with deliberate faults) written to `dir` as
/// Parquet files of small row groups — so a streamed source has many row
/// groups split over several partitions — or as CSV.
fn write_registry(dir: &Path, format: &str) {
    write_registry_of(dir, format, None)
}

/// [`write_registry`] of `only_year`, if given: one year's registry is in
/// household order throughout, so a streamed load checks the household
/// references of members and assistance by a merge (`validate/streamed`).
fn write_registry_of(dir: &Path, format: &str, only_year: Option<i32>) {
    let tables = tuopin::synth::generate_tables(&tuopin::GenerateOptions {
        households: 600,
        seed: 23,
        faults: 0.03,
        only_year,
        ..Default::default()
    })
    .unwrap();
    for (name, batches) in &tables {
        let path = dir.join(format!("{name}.{format}"));
        if format == "parquet" {
            let file = std::fs::File::create(&path).unwrap();
            let props = parquet::file::properties::WriterProperties::builder()
                .set_max_row_group_row_count(Some(97))
                .build();
            let mut w =
                parquet::arrow::ArrowWriter::try_new(file, batches[0].schema(), Some(props))
                    .unwrap();
            for b in batches {
                w.write(b).unwrap();
            }
            w.close().unwrap();
        } else {
            tuopin::output::write_batches(batches, &path).unwrap();
        }
    }
}

/// The engine over `dir` validated in memory, and the one over a store at
/// `store` (validated in memory first or streamed from the sources, as
/// `staging_limit` says).
async fn engines(dir: &Path, store: &Path, staging_limit: Option<u64>) -> (Engine, Engine) {
    let memory = Engine::new(
        Dataset::open_with(dir, &tuopin::OpenOptions::in_memory())
            .await
            .unwrap(),
    )
    .await
    .unwrap();
    let options = OpenOptions {
        store: Some(store.to_path_buf()),
        cache: false,
        memory_limit: Some(64 << 20),
        staging_limit,
        ..Default::default()
    };
    let disk = Engine::with_options(
        Dataset::open_with(dir, &options).await.unwrap(),
        EngineOptions {
            memory_limit: Some(64 << 20),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    (memory, disk)
}

/// `Engine::rejects` streams the ledger in its own order, whatever the
/// number of partitions (DataFusion split a one-partition MemTable across
/// the cores, and the tables' batches came out interleaved).
#[tokio::test]
async fn the_ledger_streams_in_its_order() {
    let dir = tempfile::tempdir().unwrap();
    write_registry(dir.path(), "parquet");
    let dataset = Dataset::open_with(dir.path(), &OpenOptions::in_memory())
        .await
        .unwrap();
    let engine = Engine::with_options(
        dataset,
        EngineOptions {
            target_partitions: 4,
            // DataFusion splits a scan of more rows than a batch holds.
            batch_size: 16,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let ledger = engine.dataset().rejects();
    assert!(ledger.len() >= 4, "{} batches", ledger.len());
    // One stream: split across partitions, the order would depend on
    // which partition ran first (this small ledger often came out whole).
    let plan = engine
        .rejects()
        .await
        .unwrap()
        .create_physical_plan()
        .await
        .unwrap();
    use datafusion::physical_plan::ExecutionPlanProperties;
    assert_eq!(plan.output_partitioning().partition_count(), 1);
    let streamed = collect(engine.rejects().await.unwrap()).await;
    for col in ["table", "row", "key", "column", "problem", "file"] {
        assert_eq!(text(&streamed, col), text(ledger, col), "rejects.{col}");
    }
}

/// Every column of `a` and `b` as text, in order.
fn assert_same(a: &[RecordBatch], b: &[RecordBatch], what: &str) {
    assert_eq!(count(a), count(b), "{what}: row count");
    let schema = a.first().map(|x| x.schema()).expect("rows");
    for f in schema.fields() {
        assert_eq!(text(a, f.name()), text(b, f.name()), "{what}.{}", f.name());
    }
}

/// Whether the `__row` column of the Parquet file at `path` is strictly
/// ascending (the store keeps the sources' row order).
fn rows_ascending(path: &Path) -> bool {
    let file = std::fs::File::open(path).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.unwrap();
        let a = batch
            .column_by_name("__row")
            .unwrap()
            .as_any()
            .downcast_ref::<datafusion::arrow::array::Int64Array>()
            .unwrap()
            .clone();
        rows.extend(a.values().iter().copied());
    }
    !rows.is_empty() && rows.windows(2).all(|w| w[0] < w[1])
}

/// The footer of Parquet file `file`.
fn footer(file: &Path) -> parquet::file::metadata::ParquetMetaData {
    parquet::file::metadata::ParquetMetaDataReader::new()
        .parse_and_finish(&std::fs::File::open(file).unwrap())
        .unwrap()
}

/// The compressions of the column chunks of Parquet file `file`.
fn chunk_codecs(file: &Path) -> Vec<parquet::basic::Compression> {
    let footer = footer(file);
    let columns = footer.row_groups().iter().flat_map(|g| g.columns());
    columns.map(|c| c.compression()).collect()
}

/// The row groups of Parquet file `file`.
fn row_groups(file: &Path) -> usize {
    footer(file).num_row_groups()
}

async fn same_everything(format: &str, staging_limit: Option<u64>) {
    same_everything_of(format, staging_limit, None).await
}

async fn same_everything_of(format: &str, staging_limit: Option<u64>, only_year: Option<i32>) {
    let dir = tempfile::tempdir().unwrap();
    let store = tempfile::tempdir().unwrap();
    write_registry_of(dir.path(), format, only_year);
    let (memory, disk) = engines(dir.path(), store.path(), staging_limit).await;

    // Loading: the same summary and the same rejects ledger (rows numbered
    // across row groups and partitions exactly as a whole read numbers them).
    let (m, d) = (memory.dataset(), disk.dataset());
    assert!(m.reject_count() > 0, "faults were generated");
    assert_eq!(m.summary().len(), d.summary().len());
    for (sm, sd) in m.summary().iter().zip(d.summary()) {
        assert_eq!(
            (&sm.table, sm.rows, sm.accepted, sm.rejected),
            (&sd.table, sd.rows, sd.accepted, sd.rejected)
        );
    }
    for col in ["table", "row", "key", "column", "problem"] {
        assert_eq!(
            text(m.rejects(), col),
            text(d.rejects(), col),
            "rejects.{col}"
        );
    }

    // The tables are on disk, not in memory, and hold the same rows.
    for name in ["households", "members", "regions"] {
        let t = d.table(name).unwrap();
        let file = t.file().expect("stored table has a file");
        assert!(file.starts_with(std::fs::canonicalize(store.path()).unwrap()));
        assert!(file.is_file(), "{}", file.display());
        assert!(t.batches.is_empty());
        assert!(rows_ascending(file), "{name} keeps the source order");
        let source = dir.path().join(format!("{name}.parquet"));
        if format == "parquet" && staging_limit == Some(0) && row_groups(&source) <= 64 {
            // Streamed from Parquet (in few enough row groups to follow):
            // the columns the typing kept are the source's chunks
            // (uncompressed, as the test wrote them) wherever no value
            // changed; tuopin's own are LZ4.
            let codecs = chunk_codecs(file);
            assert!(
                codecs.contains(&parquet::basic::Compression::UNCOMPRESSED),
                "{name}"
            );
            assert!(
                codecs.contains(&parquet::basic::Compression::LZ4_RAW),
                "{name}"
            );
        }
        assert_eq!(t.num_rows(), m.table(name).unwrap().num_rows(), "{name}");
        assert!(m.table(name).unwrap().file().is_none());
    }
    let sql = "SELECT * FROM households ORDER BY household_id, year";
    assert_same(
        &query(&memory, sql).await,
        &query(&disk, sql).await,
        "households",
    );
    let sql = "SELECT * FROM members ORDER BY person_id, year";
    assert_same(
        &query(&memory, sql).await,
        &query(&disk, sql).await,
        "members",
    );
    // The household links (crate::links) are carried the same way on disk
    // and never show in the public tables.
    for (t, order) in [
        ("households", "household_id, year"),
        ("members", "person_id, year"),
        ("assistance", "household_id, year, helper_id, measure"),
    ] {
        let sql = format!("SELECT * FROM __{t}_linked ORDER BY {order}");
        let linked = query(&memory, &sql).await;
        assert!(count(&linked) > 0, "{t} has linked rows");
        assert_same(&linked, &query(&disk, &sql).await, &format!("linked {t}"));
        for e in [&memory, &disk] {
            let public = e.schema_of(t).await.unwrap();
            assert!(public.fields().iter().all(|f| !f.name().starts_with("__")));
            assert_eq!(
                e.schema_of(&format!("__{t}_linked"))
                    .await
                    .unwrap()
                    .fields()
                    .len(),
                public.fields().len() + tuopin::links::columns(t).len(),
                "{t}"
            );
        }
    }

    // Outcomes and metrics.
    let hebei = RuleSet::builtin("hebei-2016").unwrap();
    let outcomes = |e: Engine| {
        let hebei = hebei.clone();
        async move {
            let df = e.evaluate(&hebei, YEAR).await.unwrap();
            collect(
                df.sort_by(vec![datafusion::prelude::col("household_id")])
                    .unwrap(),
            )
            .await
        }
    };
    assert_same(
        &outcomes(memory.clone()).await,
        &outcomes(disk.clone()).await,
        "outcomes",
    );
    let metrics = |e: Engine| async move {
        let df = e.metrics(YEAR, None).await.unwrap();
        let sorted = df
            .sort_by(vec![
                datafusion::prelude::col("level"),
                datafusion::prelude::col("code"),
            ])
            .unwrap();
        collect(sorted).await
    };
    let mm = metrics(memory.clone()).await;
    assert_eq!(
        count(&mm),
        m.table("regions").unwrap().num_rows(),
        "a row per region"
    );
    assert_same(&mm, &metrics(disk.clone()).await, "metrics");
    let county = |e: Engine| async move {
        let df = e.metrics(YEAR, Some(Level::County)).await.unwrap();
        collect(df.sort_by(vec![datafusion::prelude::col("code")]).unwrap()).await
    };
    assert_same(&county(memory).await, &county(disk).await, "county metrics");
}

#[tokio::test]
async fn parquet_sources_stream_into_the_store_with_identical_results() {
    same_everything("parquet", Some(0)).await;
}

/// One year in household order: members and assistance find their
/// households by a merge as they stream (the registry of every year is
/// not in key order, and goes through the joins).
#[tokio::test]
async fn a_registry_in_household_order_streams_through_the_merge_with_identical_results() {
    same_everything_of("parquet", Some(0), Some(YEAR)).await;
}

#[tokio::test]
async fn parquet_sources_validated_in_memory_first_give_identical_results() {
    same_everything("parquet", Some(u64::MAX)).await;
}

#[tokio::test]
async fn csv_sources_are_stored_with_identical_results() {
    same_everything("csv", Some(0)).await;
    same_everything("csv", None).await;
}

#[tokio::test]
async fn results_are_written_as_they_stream() {
    let engine = common::generated(300, 5).await;
    let hebei = RuleSet::builtin("hebei-2016").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sorted = || async {
        engine
            .evaluate(&hebei, YEAR)
            .await
            .unwrap()
            .sort_by(vec![datafusion::prelude::col("household_id")])
            .unwrap()
    };
    let expected = collect(sorted().await).await;
    let pq = dir.path().join("out/outcomes.parquet");
    let rows = tuopin::output::write_dataframe(sorted().await, &pq)
        .await
        .unwrap();
    assert_eq!(rows, count(&expected));
    let back: Vec<RecordBatch> =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            std::fs::File::open(&pq).unwrap(),
        )
        .unwrap()
        .build()
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_same(&expected, &back, "parquet output");

    let csv = dir.path().join("outcomes.csv");
    let rows = tuopin::output::write_dataframe(sorted().await, &csv)
        .await
        .unwrap();
    let written = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(
        written.lines().count(),
        rows + 1,
        "header + one line per row"
    );
    assert!(written.starts_with("household_id,year,"));

    let err = tuopin::output::write_dataframe(sorted().await, dir.path().join("x.txt"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("unknown output format"), "{err}");
}

#[tokio::test]
async fn a_store_is_reused_until_a_source_changes() {
    let dir = tempfile::tempdir().unwrap();
    let store = tempfile::tempdir().unwrap();
    write_registry(dir.path(), "parquet");
    let options = OpenOptions {
        store: Some(store.path().to_path_buf()),
        cache: false,
        memory_limit: None,
        ..Default::default()
    };
    let stored = store.path().join("households.parquet");
    let modified = || std::fs::metadata(&stored).unwrap().modified().unwrap();

    let first = Dataset::open_with(dir.path(), &options).await.unwrap();
    let written = modified();
    assert!(store.path().join("tuopin-store.toml").is_file());

    // Same sources: reused as it is (nothing rewritten), same answers.
    let second = Dataset::open_with(dir.path(), &options).await.unwrap();
    assert_eq!(modified(), written, "reused, not validated again");
    assert_eq!(first.summary(), second.summary());
    assert!(first.reject_count() > 0);
    for col in ["table", "row", "key", "column", "problem"] {
        assert_eq!(text(first.rejects(), col), text(second.rejects(), col));
    }
    let metrics = |ds: Dataset| async move {
        let e = Engine::new(ds).await.unwrap();
        let df = e.metrics(YEAR, None).await.unwrap();
        collect(
            df.sort_by(vec![
                datafusion::prelude::col("level"),
                datafusion::prelude::col("code"),
            ])
            .unwrap(),
        )
        .await
    };
    assert_same(
        &metrics(first.clone()).await,
        &metrics(second).await,
        "metrics of a reused store",
    );

    // A source changes (an optional table removed): validated again.
    std::fs::remove_file(dir.path().join("assessments.parquet")).unwrap();
    let third = Dataset::open_with(dir.path(), &options).await.unwrap();
    assert_ne!(modified(), written, "validated again");
    assert!(third.table("assessments").is_none());
    assert!(first.table("assessments").is_some());
    assert_eq!(
        third.table("households").unwrap().num_rows(),
        first.table("households").unwrap().num_rows()
    );

    // A store written before household links existed (its assistance file
    // lacks them) is validated again, and the links are back.
    let assistance = store.path().join("assistance.parquet");
    let file = std::fs::File::open(&assistance).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let old: Vec<RecordBatch> = reader
        .map(|b| {
            let b = b.unwrap();
            let keep: Vec<usize> = (0..b.num_columns())
                .filter(|i| b.schema().field(*i).name() != "__hid")
                .collect();
            b.project(&keep).unwrap()
        })
        .collect();
    let file = std::fs::File::create(&assistance).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, old[0].schema(), None).unwrap();
    for b in &old {
        w.write(b).unwrap();
    }
    w.close().unwrap();
    let before = modified();
    let relinked = Engine::new(Dataset::open_with(dir.path(), &options).await.unwrap())
        .await
        .unwrap();
    assert_ne!(modified(), before, "validated again");
    let linked = query(
        &relinked,
        "SELECT count(__hid) AS n FROM __assistance_linked",
    )
    .await;
    assert_eq!(
        text(&linked, "n"),
        vec![Some(
            third.table("assistance").unwrap().num_rows().to_string()
        )]
    );

    // A store without its manifest (say, interrupted) is validated again.
    std::fs::remove_file(store.path().join("tuopin-store.toml")).unwrap();
    let before = modified();
    Dataset::open_with(dir.path(), &options).await.unwrap();
    assert_ne!(modified(), before);
}

#[tokio::test]
async fn a_damaged_source_names_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = tempfile::tempdir().unwrap();
    write_registry(dir.path(), "parquet");
    // Overwrite the start of the first column chunk (after the 4-byte
    // magic): the footer still reads, the data does not.
    let path = dir.path().join("households.parquet");
    let mut bytes = std::fs::read(&path).unwrap();
    for b in bytes.iter_mut().skip(4).take(400) {
        *b = 0xAB;
    }
    std::fs::write(&path, bytes).unwrap();
    let options = OpenOptions {
        store: Some(store.path().to_path_buf()),
        cache: false,
        memory_limit: None,
        ..Default::default()
    };
    let err = Dataset::open_with(dir.path(), &options).await.unwrap_err();
    assert!(
        err.to_string().contains("households.parquet"),
        "error names the file: {err}"
    );
}

#[tokio::test]
async fn rejects_are_listed_under_a_small_memory_limit() {
    // The rejects ledger is sorted once, not per check: sorting the union
    // of ~25 checks reserved 10 MB per branch and failed below ~32 MiB.
    let dir = tempfile::tempdir().unwrap();
    write_registry(dir.path(), "csv");
    let unlimited = Dataset::open_with(dir.path(), &tuopin::OpenOptions::in_memory())
        .await
        .unwrap();
    assert!(unlimited.reject_count() > 100);
    for store in [None, Some(tempfile::tempdir().unwrap())] {
        let options = OpenOptions {
            store: store.as_ref().map(|s| s.path().to_path_buf()),
            cache: false,
            memory_limit: Some(16 << 20),
            ..Default::default()
        };
        let limited = Dataset::open_with(dir.path(), &options).await.unwrap();
        for col in ["table", "row", "key", "column", "problem"] {
            assert_eq!(
                text(unlimited.rejects(), col),
                text(limited.rejects(), col),
                "rejects.{col}"
            );
        }
    }
}

/// Every file of `dir` with its bytes (to show sources are untouched).
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

#[tokio::test]
async fn a_store_in_or_around_the_sources_is_refused_before_writing() {
    for format in ["parquet", "csv"] {
        let dir = tempfile::tempdir().unwrap();
        write_registry(dir.path(), format);
        let before = snapshot(dir.path());
        let inside = dir.path().join("store");
        let parent = dir.path().parent().unwrap().to_path_buf();
        for store in [dir.path().to_path_buf(), inside.clone(), parent] {
            let options = OpenOptions {
                store: Some(store.clone()),
                cache: false,
                memory_limit: None,
                ..Default::default()
            };
            let err = Dataset::open_with(dir.path(), &options)
                .await
                .expect_err("refused");
            let msg = err.to_string();
            assert!(matches!(err, tuopin::Error::Store { .. }), "{msg}");
            assert_eq!(err.kind(), tuopin::ErrorKind::Data);
            // Both paths are named.
            assert!(msg.contains(&store.display().to_string()), "{msg}");
            let canonical = std::fs::canonicalize(dir.path()).unwrap();
            assert!(msg.contains(&canonical.display().to_string()), "{msg}");
        }
        assert!(!inside.exists(), "nothing written");
        assert_eq!(snapshot(dir.path()), before, "{format} sources untouched");
        // And the dataset still opens.
        assert!(
            Dataset::open_with(dir.path(), &tuopin::OpenOptions::in_memory())
                .await
                .is_ok()
        );
    }
}

#[tokio::test]
async fn a_folder_that_is_not_a_store_is_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    write_registry(dir.path(), "parquet");
    let other = tempfile::tempdir().unwrap();
    std::fs::write(other.path().join("notes.txt"), "mine").unwrap();
    let options = OpenOptions {
        store: Some(other.path().to_path_buf()),
        cache: false,
        memory_limit: None,
        ..Default::default()
    };
    let err = Dataset::open_with(dir.path(), &options)
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("not a tuopin store"), "{err}");
    assert_eq!(
        std::fs::read_to_string(other.path().join("notes.txt")).unwrap(),
        "mine"
    );
    assert_eq!(std::fs::read_dir(other.path()).unwrap().count(), 1);
}

#[tokio::test]
async fn a_store_is_written_aside_and_renamed_into_place() {
    let dir = tempfile::tempdir().unwrap();
    write_registry(dir.path(), "parquet");
    let root = tempfile::tempdir().unwrap();
    let store = root.path().join("st");
    let options = OpenOptions {
        store: Some(store.clone()),
        cache: false,
        memory_limit: None,
        ..Default::default()
    };
    Dataset::open_with(dir.path(), &options).await.unwrap();
    // Only the store itself is left beside it: no temporary folder.
    let names: Vec<String> = std::fs::read_dir(root.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["st".to_string()]);
    assert!(store.join("tuopin-store.toml").is_file());
    assert!(store.join("TUOPIN-STORE").is_file());
    // A half store left by a crash (a temporary folder) is ignored, and a
    // store whose manifest is gone is rebuilt whole.
    std::fs::create_dir(root.path().join(".st.tmp-1-1")).unwrap();
    std::fs::remove_file(store.join("tuopin-store.toml")).unwrap();
    let again = Dataset::open_with(dir.path(), &options).await.unwrap();
    assert!(store.join("tuopin-store.toml").is_file());
    assert!(again.table("households").unwrap().num_rows() > 0);
}

#[tokio::test]
async fn two_opens_of_one_dataset_into_one_store_both_succeed_and_agree() {
    let dir = tempfile::tempdir().unwrap();
    write_registry(dir.path(), "parquet");
    let root = tempfile::tempdir().unwrap();
    let options = OpenOptions {
        store: Some(root.path().join("shared")),
        cache: false,
        memory_limit: None,
        ..Default::default()
    };
    let (a, b) = tokio::join!(
        Dataset::open_with(dir.path(), &options),
        Dataset::open_with(dir.path(), &options)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.summary(), b.summary());
    for col in ["table", "row", "key", "column", "problem"] {
        assert_eq!(text(a.rejects(), col), text(b.rejects(), col));
    }
    let outcomes = |ds: Dataset| async move {
        let e = Engine::new(ds).await.unwrap();
        let rules = RuleSet::builtin("hebei-2016").unwrap();
        let df = e.evaluate(&rules, YEAR).await.unwrap();
        collect(
            df.sort_by(vec![datafusion::prelude::col("household_id")])
                .unwrap(),
        )
        .await
    };
    assert_same(&outcomes(a).await, &outcomes(b).await, "two opens");
}
