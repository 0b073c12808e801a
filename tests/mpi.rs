//! The multidimensional poverty index (DESIGN §9) on a fixture computed by
//! hand: weights 0.5 / 0.3 / 0.2 (income, housing, water), six households
//! in two villages, one left out for an unknown indicator.

mod common;

use common::*;
use datafusion::arrow::array::RecordBatch;
use tuopin::{Engine, Level, RuleSet};

const V1: &str = "130102001001";
const V2: &str = "130102001002";

const RULES: &str = r#"
name = "three"
unit = "household"
[[indicator]]
key = "income"
points = 50
when = "per_capita_net_income > poverty_line"
[[indicator]]
key = "housing"
points = 30
when = "safe_housing"
[[indicator]]
key = "water"
points = 20
when = "safe_water"
"#;

/// A 2016 household: `wage` is its whole income (2016 line: 2,952).
fn row(id: &str, village: &str, size: i32, wage: i32, housing: &str, water: &str) -> String {
    format!(
        "{id},2016,{village},{size},general,poor,2014,,illness,{wage},0,0,0,0,{housing},0,{size},{size},{size},{water},true,false,,,"
    )
}

async fn fixture() -> Engine {
    let rows = [
        row("H1", V1, 2, 4000, "true", "true"),    // income: c = 0.5
        row("H2", V1, 3, 6000, "false", "true"),   // income, housing: c = 0.8
        row("H3", V1, 1, 9000, "true", "true"),    // none: c = 0
        row("H4", V2, 4, 20000, "false", "false"), // housing, water: c = 0.5
        row("H5", V2, 2, 1000, "true", ""),        // water unknown: left out
        row("H6", V2, 1, 9000, "true", "false"),   // water: c = 0.2
    ];
    let households = format!("{HH_HEADER}\n{}\n", rows.join("\n"));
    engine(&[("regions", REGIONS_CSV), ("households", &households)]).await
}

fn rules() -> RuleSet {
    RuleSet::from_toml(RULES).unwrap()
}

/// The row of `code` at cut-off `k`.
fn at(b: &[RecordBatch], code: &str, k: f64) -> usize {
    let codes = text(b, "code");
    let ks = floats(b, "k");
    (0..codes.len())
        .find(|i| codes[*i].as_deref() == Some(code) && ks[*i] == Some(k))
        .unwrap_or_else(|| panic!("no row {code} k={k}"))
}

fn value(b: &[RecordBatch], column: &str, i: usize) -> Option<f64> {
    floats(b, column)[i]
}

#[tokio::test]
async fn every_column_by_hand_at_two_cutoffs() {
    let engine = fixture().await;
    let b = collect(
        engine
            .mpi(&rules(), 2016, Some(Level::Village), &[0.5, 0.2])
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(count(&b), 4, "two villages × two cut-offs");
    // Village 1 at k = 0.5: persons 6; poor H1 (2, c 0.5 ≥ k) and H2 (3).
    let i = at(&b, V1, 0.5);
    assert_eq!(text(&b, "population")[i].as_deref(), Some("6"));
    assert_eq!(text(&b, "excluded_households")[i].as_deref(), Some("0"));
    close(value(&b, "H", i), 5.0 / 6.0, "V1 H");
    close(value(&b, "A", i), 3.4 / 5.0, "V1 A");
    close(value(&b, "M0", i), 3.4 / 6.0, "V1 M0");
    close(value(&b, "uncensored_income", i), 5.0 / 6.0, "V1 u income");
    close(
        value(&b, "uncensored_housing", i),
        3.0 / 6.0,
        "V1 u housing",
    );
    close(value(&b, "uncensored_water", i), 0.0, "V1 u water");
    close(value(&b, "censored_income", i), 5.0 / 6.0, "V1 c income");
    close(value(&b, "censored_housing", i), 0.5, "V1 c housing");
    close(
        value(&b, "contribution_income", i),
        2.5 / 3.4,
        "V1 contribution income",
    );
    close(
        value(&b, "contribution_housing", i),
        0.9 / 3.4,
        "V1 contribution housing",
    );
    close(
        value(&b, "contribution_water", i),
        0.0,
        "V1 contribution water",
    );
    // Village 2 at k = 0.5: H5 left out; persons 5; poor H4 (4, c 0.5).
    let i = at(&b, V2, 0.5);
    assert_eq!(text(&b, "population")[i].as_deref(), Some("5"));
    assert_eq!(text(&b, "excluded_households")[i].as_deref(), Some("1"));
    close(value(&b, "H", i), 0.8, "V2 H");
    close(value(&b, "A", i), 0.5, "V2 A");
    close(value(&b, "M0", i), 0.4, "V2 M0");
    close(value(&b, "uncensored_water", i), 1.0, "V2 u water");
    close(value(&b, "censored_water", i), 0.8, "V2 c water");
    close(
        value(&b, "contribution_housing", i),
        0.6,
        "V2 contribution housing",
    );
    close(
        value(&b, "contribution_water", i),
        0.4,
        "V2 contribution water",
    );
    // At k = 0.2 H6 (c = 0.2, exactly k) is poor too.
    let i = at(&b, V2, 0.2);
    close(value(&b, "H", i), 1.0, "V2 H at 0.2");
    close(value(&b, "A", i), 2.2 / 5.0, "V2 A at 0.2");
    close(value(&b, "M0", i), 2.2 / 5.0, "V2 M0 at 0.2");
    close(
        value(&b, "contribution_water", i),
        1.0 / 2.2,
        "V2 water at 0.2",
    );
    // Every row: M0 = H·A and the contributions add up to 1.
    for i in 0..count(&b) {
        let (h, a, m0) = (value(&b, "H", i), value(&b, "A", i), value(&b, "M0", i));
        close(m0, h.unwrap() * a.unwrap(), "M0 = H·A");
        let sum: f64 = ["income", "housing", "water"]
            .iter()
            .map(|k| value(&b, &format!("contribution_{k}"), i).unwrap())
            .sum();
        close(Some(sum), 1.0, "Σ contributions");
    }
}

#[tokio::test]
async fn k_of_one_and_below_the_smallest_weight() {
    let engine = fixture().await;
    let b = collect(
        engine
            .mpi(&rules(), 2016, Some(Level::Village), &[1.0, 0.1])
            .await
            .unwrap(),
    )
    .await;
    // k = 1: poor only if deprived in everything; nobody is: A and the
    // contributions are null, H and M0 are 0.
    for v in [V1, V2] {
        let i = at(&b, v, 1.0);
        assert_eq!(value(&b, "H", i), Some(0.0));
        assert_eq!(value(&b, "M0", i), Some(0.0));
        assert_eq!(value(&b, "A", i), None, "{v}: no poor, A null");
        assert_eq!(value(&b, "contribution_income", i), None);
    }
    // k = 0.1, below the smallest weight: anyone deprived in anything.
    let i = at(&b, V1, 0.1);
    close(value(&b, "H", i), 5.0 / 6.0, "V1 H at 0.1");
    let i = at(&b, V2, 0.1);
    close(value(&b, "H", i), 1.0, "V2 H at 0.1");
}

#[tokio::test]
async fn every_level_in_one_query_rolls_up() {
    let engine = fixture().await;
    let ks = [0.2, 0.5];
    let all = collect(engine.mpi(&rules(), 2016, None, &ks).await.unwrap()).await;
    // Province, city, county, township, two villages; each at two k.
    assert_eq!(count(&all), 12);
    for level in [Level::County, Level::Village, Level::Province] {
        let one = collect(engine.mpi(&rules(), 2016, Some(level), &ks).await.unwrap()).await;
        for i in 0..count(&one) {
            let code = text(&one, "code")[i].clone().unwrap();
            let k = floats(&one, "k")[i].unwrap();
            let j = at(&all, &code, k);
            for c in ["H", "A", "M0", "contribution_water"] {
                assert_eq!(value(&one, c, i), value(&all, c, j), "{code} {k} {c}");
            }
        }
    }
    // The county's population and M0·population are the sums of its
    // villages' (the township between them has the same).
    for k in ks {
        let county = at(&all, "130102000000", k);
        let pop = |i: usize| {
            text(&all, "population")[i]
                .as_deref()
                .unwrap()
                .parse::<f64>()
                .unwrap()
        };
        let (v1, v2) = (at(&all, V1, k), at(&all, V2, k));
        assert_eq!(pop(county), pop(v1) + pop(v2));
        close(
            Some(value(&all, "M0", county).unwrap() * pop(county)),
            value(&all, "M0", v1).unwrap() * pop(v1) + value(&all, "M0", v2).unwrap() * pop(v2),
            "county M0·population",
        );
        assert_eq!(
            text(&all, "excluded_households")[county].as_deref(),
            Some("1")
        );
    }
}

#[tokio::test]
async fn weights_arguments_and_units_are_checked() {
    let engine = fixture().await;
    // An explicit weight replaces the points; weights are normalised.
    let weighted = RULES.replace("points = 20\n", "points = 20\nweight = 50\n");
    let rules = RuleSet::from_toml(&weighted).unwrap();
    let w = rules.mpi_weights().unwrap();
    close(Some(w[0]), 50.0 / 130.0, "income weight");
    close(Some(w[2]), 50.0 / 130.0, "water weight");
    for bad in [0.0, -0.1, 1.5, f64::NAN] {
        let err = engine
            .mpi(&rules, 2016, None, &[bad])
            .await
            .expect_err("bad k");
        assert!(err.to_string().contains("cut-off"), "{err}");
    }
    assert!(engine.mpi(&rules, 2016, None, &[]).await.is_err());
    let county = RuleSet::builtin("county-2016").unwrap();
    assert!(engine.mpi(&county, 2016, None, &[0.5]).await.is_err());
    let err = engine
        .mpi(&rules, 2031, None, &[0.5])
        .await
        .expect_err("year");
    assert!(err.to_string().contains("2031"));
    let negative = RULES.replace("points = 20\n", "points = 20\nweight = -1\n");
    assert!(RuleSet::from_toml(&negative).is_err());
}

#[tokio::test]
async fn the_exit_rules_are_also_an_index() {
    // hebei-2016 on generated data: one row per city and k, shares in
    // [0, 1], M0 = H·A.
    let engine = generated(1500, 12).await;
    let hebei = RuleSet::builtin("hebei-2016").unwrap();
    let b = collect(
        engine
            .mpi(&hebei, 2016, Some(Level::City), &[1.0 / 3.0])
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(count(&b), 11);
    for i in 0..count(&b) {
        for c in ["H", "M0", "uncensored_income", "censored_pension"] {
            let v = value(&b, c, i).unwrap();
            assert!((0.0..=1.0).contains(&v), "{c} = {v}");
        }
        if let (Some(h), Some(a), Some(m0)) =
            (value(&b, "H", i), value(&b, "A", i), value(&b, "M0", i))
        {
            close(Some(m0), h * a, "M0 = H·A");
        }
    }
}

#[tokio::test]
async fn change_over_time_by_hand() {
    // 2014 and 2015: H2 is also deprived in water (c = 1.0), H4 only in
    // housing (c = 0.3); 2016 as above.
    let row_y = |y: i32, id: &str, v: &str, size: i32, wage: i32, housing: &str, water: &str| {
        row(id, v, size, wage, housing, water).replacen(",2016,", &format!(",{y},"), 1)
    };
    let mut rows = vec![
        row("H1", V1, 2, 4000, "true", "true"),
        row("H2", V1, 3, 6000, "false", "true"),
        row("H3", V1, 1, 9000, "true", "true"),
        row("H4", V2, 4, 20000, "false", "false"),
        row("H5", V2, 2, 1000, "true", ""),
        row("H6", V2, 1, 9000, "true", "false"),
    ];
    for y in [2014, 2015] {
        rows.push(row_y(y, "H1", V1, 2, 4000, "true", "true"));
        rows.push(row_y(y, "H2", V1, 3, 6000, "false", "false"));
        rows.push(row_y(y, "H3", V1, 1, 9000, "true", "true"));
        rows.push(row_y(y, "H4", V2, 4, 20000, "false", "true"));
        rows.push(row_y(y, "H6", V2, 1, 9000, "true", "false"));
    }
    let households = format!("{HH_HEADER}\n{}\n", rows.join("\n"));
    let engine = engine(&[("regions", REGIONS_CSV), ("households", &households)]).await;
    let one = collect(
        engine
            .mpi_change(&rules(), 2015, 2016, Some(Level::Village), 0.5)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(count(&one), 2);
    let i = at(&one, V1, 0.5);
    assert_eq!(text(&one, "from_year")[i].as_deref(), Some("2015"));
    assert_eq!(text(&one, "to_year")[i].as_deref(), Some("2016"));
    // V1: H 5/6 both years; A 0.8 → 0.68; M0 4/6 → 3.4/6.
    close(value(&one, "H_abs", i), 0.0, "H_abs");
    close(value(&one, "H_rel", i), 0.0, "H_rel");
    close(value(&one, "A_from", i), 0.8, "A_from");
    close(value(&one, "A_to", i), 0.68, "A_to");
    close(value(&one, "A_abs", i), -0.12, "A_abs");
    close(value(&one, "A_rel", i), -0.15, "A_rel");
    close(value(&one, "A_ann", i), -0.15, "A_ann over one year");
    close(value(&one, "M0_abs", i), -0.1, "M0_abs");
    close(value(&one, "M0_rel", i), -0.15, "M0_rel");
    // V2: nobody poor in 2015 at k = 0.5 (H4 0.3, H6 0.2): M0 0 → 0.4;
    // the relative and annualised changes of a zero are null.
    let i = at(&one, V2, 0.5);
    close(value(&one, "M0_from", i), 0.0, "M0_from");
    close(value(&one, "M0_abs", i), 0.4, "M0_abs");
    assert_eq!(value(&one, "M0_rel", i), None);
    assert_eq!(value(&one, "M0_ann", i), None);
    assert_eq!(value(&one, "A_from", i), None, "no poor in 2015: A null");
    // Over two years the annualised change is the geometric mean.
    let two = collect(
        engine
            .mpi_change(&rules(), 2014, 2016, Some(Level::Village), 0.5)
            .await
            .unwrap(),
    )
    .await;
    let i = at(&two, V1, 0.5);
    close(value(&two, "A_rel", i), -0.15, "A_rel over two years");
    close(
        value(&two, "A_ann", i),
        0.85f64.sqrt() - 1.0,
        "A_ann over two years",
    );
    assert!(engine
        .mpi_change(&rules(), 2016, 2016, None, 0.5)
        .await
        .is_err());
}

/// `RULES` with each indicator repeated `times` times under new keys
/// (same conditions, same points): every score, so every H, A and M0, is
/// unchanged, while the plan carries `3 × times` indicators.
fn repeated(times: usize) -> RuleSet {
    let mut toml = String::from("name = \"repeated\"\nunit = \"household\"\n");
    for t in 0..times {
        for (key, points, when) in [
            ("income", 50, "per_capita_net_income > poverty_line"),
            ("housing", 30, "safe_housing"),
            ("water", 20, "safe_water"),
        ] {
            toml.push_str(&format!(
                "[[indicator]]\nkey = \"{key}_{t}\"\npoints = {points}\nwhen = \"{when}\"\n"
            ));
        }
    }
    RuleSet::from_toml(&toml).unwrap()
}

#[tokio::test]
async fn many_indicators_give_the_same_index_and_more_than_62_are_refused() {
    let engine = fixture().await;
    let ks = [0.2, 0.5, 0.8];
    let three = collect(engine.mpi(&rules(), 2016, None, &ks).await.unwrap()).await;
    // 60 indicators: the deprivation pattern uses 60 bits of a BIGINT.
    let sixty = collect(engine.mpi(&repeated(20), 2016, None, &ks).await.unwrap()).await;
    assert_eq!(count(&three), count(&sixty));
    for i in 0..count(&three) {
        for c in ["H", "A", "M0"] {
            match (value(&three, c, i), value(&sixty, c, i)) {
                (Some(a), Some(b)) => close(Some(b), a, c),
                (a, b) => assert_eq!(a, b, "{c} row {i}"),
            }
        }
        assert_eq!(
            text(&three, "excluded_households")[i],
            text(&sixty, "excluded_households")[i]
        );
        // Each of the 20 copies of income carries a twentieth of its share.
        if let Some(c) = value(&three, "contribution_income", i) {
            close(
                value(&sixty, "contribution_income_0", i),
                c / 20.0,
                "copy's share",
            );
        }
    }
    let err = engine
        .mpi(&repeated(21), 2016, None, &[0.5])
        .await
        .expect_err("63 indicators");
    assert!(err.to_string().contains("at most 62"), "{err}");
}

/// Rows come in order of level (province first), code and k — on a
/// generated registry run in several partitions with small batches, for
/// cut-offs given in no order.
#[tokio::test]
async fn rows_come_in_order_of_level_code_and_k() {
    let engine = generated_with(
        3_000,
        7,
        tuopin::EngineOptions {
            target_partitions: 4,
            batch_size: 256,
            ..Default::default()
        },
    )
    .await;
    let hebei = RuleSet::builtin("hebei-2016").unwrap();
    let ks = [0.5, 0.2, 1.0 / 3.0];
    let b = collect(engine.mpi(&hebei, 2016, None, &ks).await.unwrap()).await;
    let levels = text(&b, "level");
    let codes = text(&b, "code");
    let k = floats(&b, "k");
    let rank = |l: &str| {
        ["province", "city", "county", "township", "village"]
            .iter()
            .position(|x| *x == l)
            .unwrap()
    };
    let keys: Vec<(usize, String, f64)> = (0..count(&b))
        .map(|i| {
            (
                rank(levels[i].as_deref().unwrap()),
                codes[i].clone().unwrap(),
                k[i].unwrap(),
            )
        })
        .collect();
    assert!(keys.len() > 300, "{} rows", keys.len());
    // Every level is there, each region once per cut-off, in order.
    assert_eq!(keys.first().unwrap().0, 0);
    assert_eq!(keys.last().unwrap().0, 4);
    for pair in keys.windows(2) {
        let (a, c) = (&pair[0], &pair[1]);
        assert!(
            (a.0, &a.1) < (c.0, &c.1) || ((a.0, &a.1) == (c.0, &c.1) && a.2 < c.2),
            "{a:?} before {c:?}"
        );
    }
    assert_eq!(keys.len() % 3, 0);
    // The counts and k are never null, and the schema says so.
    let schema = b[0].schema();
    for name in ["level", "year", "k", "population", "excluded_households"] {
        assert!(
            !schema.field_with_name(name).unwrap().is_nullable(),
            "{name}"
        );
    }
    assert!(schema.field_with_name("H").unwrap().is_nullable());
}

/// An index reads only the facts its conditions name (the plan's facts
/// are narrowed to them): a rule set over an extra column of the
/// households and a column the facts view derives (`monitoring_line`,
/// 1.5 × 2,952 = 4,428 in 2016), by hand.
#[tokio::test]
async fn conditions_over_extra_and_derived_columns() {
    // The fixture's households with an extra column `road`.
    let rows = [
        ("H1", V1, 2, 4000, "yes"), // below the monitoring line: c = 0.5
        ("H2", V1, 3, 6000, "no"),  // both: c = 1
        ("H3", V1, 1, 9000, "yes"), // none: c = 0
        ("H4", V2, 4, 20000, "no"), // road: c = 0.5
        ("H5", V2, 2, 1000, ""),    // road unknown: left out
        ("H6", V2, 1, 9000, "yes"), // none
    ]
    .map(|(id, village, size, wage, road)| {
        format!("{},{road}", row(id, village, size, wage, "true", "true"))
    });
    let households = format!("{HH_HEADER},road\n{}\n", rows.join("\n"));
    let engine = engine(&[("regions", REGIONS_CSV), ("households", &households)]).await;
    let rules = RuleSet::from_toml(
        r#"
name = "extra"
unit = "household"
[[indicator]]
key = "road"
points = 50
when = "road = 'yes'"
[[indicator]]
key = "monitored"
points = 50
when = "per_capita_net_income > monitoring_line"
"#,
    )
    .unwrap();
    let b = collect(
        engine
            .mpi(&rules, 2016, Some(Level::Village), &[0.5])
            .await
            .unwrap(),
    )
    .await;
    // V1: 6 persons, poor H1 (2, c = 0.5) and H2 (3, c = 1).
    let v1 = at(&b, V1, 0.5);
    close(value(&b, "H", v1), 5.0 / 6.0, "H of V1");
    close(value(&b, "A", v1), 4.0 / 5.0, "A of V1");
    close(value(&b, "M0", v1), 4.0 / 6.0, "M0 of V1");
    close(value(&b, "censored_road", v1), 3.0 / 6.0, "road of V1");
    close(
        value(&b, "censored_monitored", v1),
        5.0 / 6.0,
        "monitored of V1",
    );
    // V2: 5 persons (H5 left out), poor H4 (4, c = 0.5).
    let v2 = at(&b, V2, 0.5);
    assert_eq!(text(&b, "excluded_households")[v2].as_deref(), Some("1"));
    assert_eq!(text(&b, "population")[v2].as_deref(), Some("5"));
    close(value(&b, "H", v2), 4.0 / 5.0, "H of V2");
    close(value(&b, "M0", v2), 0.4, "M0 of V2");
    close(
        value(&b, "uncensored_monitored", v2),
        0.0,
        "monitored of V2",
    );
}
