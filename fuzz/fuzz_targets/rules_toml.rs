//! Rule files: TOML parsing, the static checks and the `when` sandbox.
//! No panic: an input is either refused with an error or compiles to
//! boolean expressions over the household facts.
#![no_main]

#[path = "common.rs"]
mod common;

use std::sync::OnceLock;

use datafusion::common::DFSchema;
use libfuzzer_sys::fuzz_target;

/// An engine over a one-household registry, for its session and schemas.
fn engine() -> &'static tuopin::Engine {
    static ENGINE: OnceLock<tuopin::Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("regions.csv"), common::REGIONS_CSV).expect("write");
        std::fs::write(dir.path().join("households.csv"), common::HOUSEHOLDS_CSV).expect("write");
        common::runtime().block_on(async {
            let ds = tuopin::Dataset::open_with(dir.path(), &tuopin::OpenOptions::in_memory())
                .await
                .expect("fixture");
            tuopin::Engine::new(ds).await.expect("engine")
        })
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(rules) = tuopin::RuleSet::from_toml(text) else {
        return;
    };
    assert!(rules.total_points().is_finite());
    let engine = engine();
    let schema = common::runtime()
        .block_on(engine.schema_of(rules.unit.facts_view()))
        .expect("facts schema");
    let schema = DFSchema::try_from(schema.as_ref().clone()).expect("schema");
    if let Ok(exprs) = rules.compile(&engine.context().state(), &schema) {
        assert_eq!(exprs.len(), rules.indicators.len());
        // A compiled household rule set evaluates.
        if rules.unit == tuopin::Unit::Household {
            let run = common::runtime().block_on(async {
                engine.evaluate(&rules, 2016).await?.collect().await?;
                Ok::<_, tuopin::Error>(())
            });
            if let Err(e) = run {
                // Only a failure at run time of a valid expression (say, a
                // division by zero) may remain; never a panic.
                assert!(
                    matches!(e.kind(), tuopin::ErrorKind::Query),
                    "unexpected error class: {e}"
                );
            }
        }
    }
});
