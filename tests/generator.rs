//! The synthetic generator: deterministic, Hebei-shaped at full scale,
//! proportional when scaled down, with falling incidence (DESIGN §6).

mod common;

use common::*;
use tuopin::synth::{self, GenerateOptions};
use tuopin::{Dataset, Engine, Level};

fn shape(households: usize) -> (usize, usize, usize, usize, usize, usize, usize, usize) {
    let r = synth::regions(households, 2016);
    let level = |n: &str| {
        r.rows
            .iter()
            .filter(|x| {
                tuopin::codes::RegionCode::parse(&x.code)
                    .map(|c| c.level().as_str() == n)
                    .unwrap_or(false)
            })
            .count()
    };
    let national = r
        .rows
        .iter()
        .filter(|x| x.poor_county == Some("national"))
        .count();
    let provincial = r
        .rows
        .iter()
        .filter(|x| x.poor_county == Some("provincial"))
        .count();
    let poor_villages = r
        .rows
        .iter()
        .filter(|x| x.poor_village == Some(true))
        .count();
    (
        level("province"),
        level("city"),
        level("county"),
        level("township"),
        level("village"),
        national,
        provincial,
        poor_villages,
    )
}

#[test]
fn full_scale_is_shaped_like_hebei() {
    let (p, c, d, t, v, nat, prov, pv) = shape(synth::FULL_SCALE);
    assert_eq!((p, c), (1, 11));
    assert!((160..=176).contains(&d), "counties {d}");
    assert_eq!((nat, prov), (45, 17));
    assert!((2100..=2300).contains(&t), "townships {t}");
    assert!((47_000..=51_000).contains(&v), "villages {v}");
    assert!((7_200..=7_600).contains(&pv), "poor villages {pv}");
}

#[test]
fn smaller_scales_keep_the_proportions() {
    let (_, c, d, t, v, nat, prov, pv) = shape(synth::FULL_SCALE / 10);
    assert_eq!(c, 11);
    assert!((15..=19).contains(&d), "counties {d}");
    let designated = (nat + prov) as f64 / d as f64;
    assert!(
        (designated - 62.0 / 168.0).abs() < 0.08,
        "designated share {designated}"
    );
    assert!(nat > prov && prov >= 1);
    assert!((200..=240).contains(&t), "townships {t}");
    let pv_share = pv as f64 / v as f64;
    assert!(
        (pv_share - 7400.0 / 49000.0).abs() < 0.01,
        "poor village share {pv_share}"
    );
}

#[test]
fn national_scale_keeps_twelve_digit_codes() {
    // 30 million households: ~2,400 counties, far past 99 per Hebei city.
    let r = synth::regions(30_000_000, 2016);
    let mut codes = std::collections::HashSet::new();
    for row in &r.rows {
        assert!(
            tuopin::codes::RegionCode::parse(&row.code).is_ok(),
            "malformed code {}",
            row.code
        );
        assert!(
            codes.insert(row.code.clone()),
            "duplicate code {}",
            row.code
        );
    }
    for row in &r.rows {
        let code = tuopin::codes::RegionCode::parse(&row.code).unwrap();
        if let Some(parent) = code.parent() {
            assert!(
                codes.contains(parent.as_str()),
                "parent of {} missing",
                row.code
            );
        }
    }
    let (p, c, d, ..) = shape(30_000_000);
    assert_eq!(p, 1);
    assert!(c > 11 && c <= 99, "cities {c}");
    assert!((2_300..=2_600).contains(&d), "counties {d}");
    let too_many = synth::generate_tables(&GenerateOptions {
        households: synth::MAX_HOUSEHOLDS + 1,
        ..Default::default()
    });
    assert!(too_many.is_err());
}

#[test]
fn same_seed_same_bytes_other_seed_other_data() {
    let opts = |seed| GenerateOptions {
        households: 1500,
        seed,
        ..Default::default()
    };
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let c = tempfile::tempdir().unwrap();
    synth::generate(&opts(9), a.path()).unwrap();
    synth::generate(&opts(9), b.path()).unwrap();
    synth::generate(&opts(10), c.path()).unwrap();
    let tables = [
        "regions",
        "households",
        "members",
        "poverty_lines",
        "assistance",
        "funds",
        "assessments",
    ];
    for t in tables {
        let f = format!("{t}.parquet");
        let x = std::fs::read(a.path().join(&f)).unwrap();
        let y = std::fs::read(b.path().join(&f)).unwrap();
        assert!(!x.is_empty(), "{t} written");
        assert_eq!(x, y, "{t} differs for the same seed");
    }
    let x = std::fs::read(a.path().join("households.parquet")).unwrap();
    let z = std::fs::read(c.path().join("households.parquet")).unwrap();
    assert_ne!(x, z, "another seed gives other households");
}

#[tokio::test]
async fn snapshots_2014_to_2020_with_falling_incidence() {
    let tables = synth::generate_tables(&GenerateOptions {
        households: 20_000,
        seed: 1,
        ..Default::default()
    })
    .unwrap();
    let ds = Dataset::from_batches(tables).await.unwrap();
    assert_eq!(ds.reject_count(), 0, "no faults unless asked");
    for t in [
        "regions",
        "households",
        "members",
        "poverty_lines",
        "assistance",
        "funds",
        "assessments",
    ] {
        assert!(ds.table(t).is_some_and(|x| x.num_rows() > 0), "{t} filled");
    }
    let engine = Engine::new(ds).await.unwrap();
    let years = collect(
        engine
            .sql("SELECT DISTINCT year FROM households ORDER BY year")
            .await
            .unwrap(),
    )
    .await;
    let years: Vec<String> = text(&years, "year").into_iter().flatten().collect();
    assert_eq!(
        years,
        (2014..=2020).map(|y| y.to_string()).collect::<Vec<_>>()
    );
    let mut last = f64::INFINITY;
    for y in 2014..=2020 {
        let m = collect(engine.metrics(y, Some(Level::Province)).await.unwrap()).await;
        let inc = floats(&m, "poverty_incidence")[0].unwrap();
        assert!(inc < last, "incidence {inc} in {y} not below {last}");
        last = inc;
    }
    // Incidence: a few percent in 2016-2017, near zero in 2020 (issue #20).
    let inc = |y: i32| {
        let engine = &engine;
        async move {
            let m = collect(engine.metrics(y, Some(Level::Province)).await.unwrap()).await;
            floats(&m, "poverty_incidence")[0].unwrap()
        }
    };
    for y in [2016, 2017] {
        let i = inc(y).await;
        assert!((0.01..0.07).contains(&i), "incidence {i} in {y}");
    }
    let i = inc(2020).await;
    assert!(i < 0.005, "incidence {i} in 2020");
    // Registered people per household (about 5.4 M / 2.07 M at full scale).
    let p = collect(engine.sql("SELECT CAST(sum(size) AS DOUBLE) / count(*) AS s FROM households WHERE year = 2020").await.unwrap()).await;
    let s = floats(&p, "s")[0].unwrap();
    assert!((2.4..2.8).contains(&s), "household size {s}");
    // About a third of the poor exit each year (2016: exits / poor at end of 2015).
    let q = collect(engine.sql("SELECT CAST(sum(CASE WHEN year = 2016 AND exit_year = 2016 THEN 1 ELSE 0 END) AS DOUBLE) / sum(CASE WHEN year = 2015 AND status <> 'exited' THEN 1 ELSE 0 END) AS r FROM households").await.unwrap()).await;
    let r = floats(&q, "r")[0].unwrap();
    assert!((0.2..0.45).contains(&r), "exit rate {r}");
}

#[tokio::test]
async fn faults_only_when_asked() {
    let tables = synth::generate_tables(&GenerateOptions {
        households: 2000,
        seed: 4,
        faults: 0.02,
        ..Default::default()
    })
    .unwrap();
    let ds = Dataset::from_batches(tables).await.unwrap();
    let rejected: usize = ds.summary().iter().map(|s| s.rejected).sum();
    assert!(rejected > 50, "faults present: {rejected}");
}
