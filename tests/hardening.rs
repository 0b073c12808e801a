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
        "INSERT INTO rejects VALUES ('t', 1, 'k', 'c', 'p')".to_string(),
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
        .sql_with("CREATE VIEW mine AS SELECT count(*) AS n FROM households", write)
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
        assert!(err.to_string().contains("registered by tuopin"), "{q}: {err}");
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
