//! Metrics, causes, transitions and village/county exit on a hand-built
//! registry whose every number is computed by hand below (DESIGN §3, §4).

mod common;

use common::*;
use tuopin::{Engine, Level, RuleSet};

/// Two cities (B is western), three counties, four villages, one township
/// without villages; eight households in 2016 and their 2015 snapshot.
const REGIONS: &str = "code,name,rural_population,poor_village,poor_county,western,exit_year
130000000000,P,,,,false,
130100000000,A,,,,,
130102000000,A1,,,national,,2017
130102001000,A1a,,,,,
130102001001,v1,100,true,,,2017
130102001002,v2,50,false,,,
130103000000,A2,,,,,
130103001000,A2a,,,,,
130103001001,v3,80,true,,,2016
130200000000,B,,,,true,
130202000000,B1,,,provincial,,
130202001000,B1a,,,,,
130202001001,v4,120,true,,,
130202002000,B1b,,,,,
";

const V1: &str = "130102001001";
const V2: &str = "130102001002";
const V3: &str = "130103001001";
const V4: &str = "130202001001";

fn households() -> String {
    let rows = [
        // 2016
        hh_row(
            "h1",
            2016,
            V1,
            4,
            "poor",
            2014,
            None,
            "illness",
            Some(8000.0),
        ),
        hh_row(
            "h2",
            2016,
            V1,
            2,
            "exited",
            2014,
            Some(2016),
            "illness",
            Some(8000.0),
        ),
        hh_row(
            "h3",
            2016,
            V1,
            3,
            "returned",
            2014,
            Some(2015),
            "labor",
            Some(6000.0),
        ),
        hh_row("h4", 2016, V2, 1, "poor", 2014, None, "illness", None),
        hh_row(
            "h5",
            2016,
            V3,
            5,
            "exited",
            2014,
            Some(2015),
            "disability",
            Some(20000.0),
        ),
        hh_row("h6", 2016, V3, 2, "poor", 2016, None, "", Some(3000.0)),
        hh_row("h7", 2016, V4, 3, "poor", 2014, None, "labor", Some(9300.0)),
        hh_row(
            "h8",
            2016,
            V4,
            2,
            "exited",
            2014,
            Some(2016),
            "illness",
            Some(5000.0),
        ),
        // 2015
        hh_row(
            "h1",
            2015,
            V1,
            4,
            "poor",
            2014,
            None,
            "illness",
            Some(7000.0),
        ),
        hh_row(
            "h2",
            2015,
            V1,
            2,
            "poor",
            2014,
            None,
            "illness",
            Some(5000.0),
        ),
        hh_row(
            "h3",
            2015,
            V1,
            3,
            "exited",
            2014,
            Some(2015),
            "labor",
            Some(9000.0),
        ),
        hh_row(
            "h4",
            2015,
            V2,
            1,
            "poor",
            2014,
            None,
            "illness",
            Some(1000.0),
        ),
        hh_row(
            "h5",
            2015,
            V3,
            5,
            "exited",
            2014,
            Some(2015),
            "disability",
            Some(18000.0),
        ),
        hh_row("h7", 2015, V4, 3, "poor", 2014, None, "labor", Some(6000.0)),
        hh_row(
            "h8",
            2015,
            V4,
            2,
            "poor",
            2014,
            None,
            "illness",
            Some(4000.0),
        ),
    ];
    format!("{HH_HEADER}\n{}\n", rows.join("\n"))
}

const LINES: &str = "year,poverty_line,monitoring_line\n2015,2800,\n2016,3000,4000\n";

const MEMBERS: &str = "household_id,year,person_id,relation,sex,birth_year,id_number,education,in_school,health,labor,migrant_months
h1,2016,h1-1,head,M,1970,,junior,false,healthy,normal,6
h1,2016,h1-2,spouse,F,1972,,junior,false,healthy,normal,12
h1,2016,h1-3,child,F,1995,,senior,false,healthy,normal,5
h7,2016,h7-1,head,M,1980,,primary,false,healthy,normal,8
h1,2015,h1-1,head,M,1970,,junior,false,healthy,normal,12
";

const ASSISTANCE: &str = "household_id,year,helper_id,helper_type,measure
h1,2016,c1,cadre,industry
h1,2016,c2,enterprise,employment
h6,2016,c1,cadre,health
h7,2016,c3,cadre,education
h2,2016,c1,cadre,industry
h4,2015,c1,cadre,industry
";

const FUNDS: &str =
    "project_id,year,region_code,source,sector,allocated,disbursed,households_benefited
F1,2016,130102000000,central,industry,100,80,
F2,2016,130102001001,county,housing,50,50,3
F3,2016,130200000000,provincial,infrastructure,200,100,
F4,2016,130000000000,central,education,1000,500,
F5,2015,130102001001,county,housing,70,70,
";

const ASSESSMENTS: &str = "year,village_code,household_id,sample,finding,recognized
2016,130102001001,h2,exited,ok,true
2016,130102001001,h2,exited,mistaken_exit,true
2016,130102001002,,exited,ok,false
2016,130102001002,,exited,ok,
2016,130102001001,,non_registered,missed,true
2016,130102001001,,non_registered,ok,true
2016,130202001001,h8,exited,ok,true
2016,130202001001,h8,exited,ok,true
2016,130202001001,,non_registered,ok,true
";

async fn fixture() -> Engine {
    let hh = households();
    engine(&[
        ("regions", REGIONS),
        ("households", &hh),
        ("poverty_lines", LINES),
        ("members", MEMBERS),
        ("assistance", ASSISTANCE),
        ("funds", FUNDS),
        ("assessments", ASSESSMENTS),
    ])
    .await
}

/// Expected metrics of one region, computed by hand.
struct Expect {
    code: &'static str,
    rural: Option<f64>,
    registered: (f64, f64),
    poor: (f64, f64),
    exited: (f64, f64),
    returned: f64,
    mean: Option<f64>,
    median: Option<f64>,
    fgt: Option<(f64, f64, f64)>,
    villages: (f64, f64),
    counties: (f64, f64),
    migrants: f64,
    assisted: Option<f64>,
    funds: (f64, f64),
}

fn expectations() -> Vec<Expect> {
    let v1_fgt = (7.0 / 9.0, 7.0 / 27.0, 7.0 / 81.0);
    let v3_fgt = (2.0 / 7.0, 1.0 / 7.0, 1.0 / 14.0);
    let v4_fgt = (2.0 / 5.0, 1.0 / 15.0, 1.0 / 90.0);
    vec![
        Expect {
            code: "130000000000",
            rural: Some(350.0),
            registered: (8.0, 22.0),
            poor: (5.0, 13.0),
            exited: (2.0, 4.0),
            returned: 1.0,
            mean: Some(59300.0 / 21.0),
            median: Some(2500.0),
            fgt: Some((11.0 / 21.0, 11.0 / 63.0, 4.0 / 63.0)),
            villages: (3.0, 2.0),
            counties: (2.0, 2.0),
            migrants: 3.0,
            assisted: Some(0.6),
            funds: (1350.0, 730.0),
        },
        Expect {
            code: "130100000000",
            rural: Some(230.0),
            registered: (6.0, 17.0),
            poor: (4.0, 10.0),
            exited: (1.0, 2.0),
            returned: 1.0,
            mean: Some(45000.0 / 16.0),
            median: Some(2000.0),
            fgt: Some((9.0 / 16.0, 5.0 / 24.0, 23.0 / 288.0)),
            villages: (2.0, 1.0),
            counties: (1.0, 1.0),
            migrants: 2.0,
            assisted: Some(0.5),
            funds: (150.0, 130.0),
        },
        Expect {
            code: "130200000000",
            rural: Some(120.0),
            registered: (2.0, 5.0),
            poor: (1.0, 3.0),
            exited: (1.0, 2.0),
            returned: 0.0,
            mean: Some(2860.0),
            median: Some(3100.0),
            fgt: Some(v4_fgt),
            villages: (1.0, 1.0),
            counties: (1.0, 1.0),
            migrants: 1.0,
            assisted: Some(1.0),
            funds: (200.0, 100.0),
        },
        Expect {
            code: "130102000000",
            rural: Some(150.0),
            registered: (4.0, 10.0),
            poor: (3.0, 8.0),
            exited: (1.0, 2.0),
            returned: 1.0,
            mean: Some(22000.0 / 9.0),
            median: Some(2000.0),
            fgt: Some(v1_fgt),
            villages: (1.0, 1.0),
            counties: (1.0, 1.0),
            migrants: 2.0,
            assisted: Some(1.0 / 3.0),
            funds: (150.0, 130.0),
        },
        Expect {
            code: "130103000000",
            rural: Some(80.0),
            registered: (2.0, 7.0),
            poor: (1.0, 2.0),
            exited: (0.0, 0.0),
            returned: 0.0,
            mean: Some(23000.0 / 7.0),
            median: Some(4000.0),
            fgt: Some(v3_fgt),
            villages: (1.0, 0.0),
            counties: (0.0, 0.0),
            migrants: 0.0,
            assisted: Some(1.0),
            funds: (0.0, 0.0),
        },
        Expect {
            code: "130202000000",
            rural: Some(120.0),
            registered: (2.0, 5.0),
            poor: (1.0, 3.0),
            exited: (1.0, 2.0),
            returned: 0.0,
            mean: Some(2860.0),
            median: Some(3100.0),
            fgt: Some(v4_fgt),
            villages: (1.0, 1.0),
            counties: (1.0, 1.0),
            migrants: 1.0,
            assisted: Some(1.0),
            funds: (0.0, 0.0),
        },
        Expect {
            code: "130102001000",
            rural: Some(150.0),
            registered: (4.0, 10.0),
            poor: (3.0, 8.0),
            exited: (1.0, 2.0),
            returned: 1.0,
            mean: Some(22000.0 / 9.0),
            median: Some(2000.0),
            fgt: Some(v1_fgt),
            villages: (1.0, 1.0),
            counties: (0.0, 0.0),
            migrants: 2.0,
            assisted: Some(1.0 / 3.0),
            funds: (50.0, 50.0),
        },
        Expect {
            code: "130202002000",
            rural: None,
            registered: (0.0, 0.0),
            poor: (0.0, 0.0),
            exited: (0.0, 0.0),
            returned: 0.0,
            mean: None,
            median: None,
            fgt: None,
            villages: (0.0, 0.0),
            counties: (0.0, 0.0),
            migrants: 0.0,
            assisted: None,
            funds: (0.0, 0.0),
        },
        Expect {
            code: V1,
            rural: Some(100.0),
            registered: (3.0, 9.0),
            poor: (2.0, 7.0),
            exited: (1.0, 2.0),
            returned: 1.0,
            mean: Some(22000.0 / 9.0),
            median: Some(2000.0),
            fgt: Some(v1_fgt),
            villages: (1.0, 1.0),
            counties: (0.0, 0.0),
            migrants: 2.0,
            assisted: Some(0.5),
            funds: (50.0, 50.0),
        },
        Expect {
            code: V2,
            rural: Some(50.0),
            registered: (1.0, 1.0),
            poor: (1.0, 1.0),
            exited: (0.0, 0.0),
            returned: 0.0,
            mean: None,
            median: None,
            fgt: None,
            villages: (0.0, 0.0),
            counties: (0.0, 0.0),
            migrants: 0.0,
            assisted: Some(0.0),
            funds: (0.0, 0.0),
        },
        Expect {
            code: V3,
            rural: Some(80.0),
            registered: (2.0, 7.0),
            poor: (1.0, 2.0),
            exited: (0.0, 0.0),
            returned: 0.0,
            mean: Some(23000.0 / 7.0),
            median: Some(4000.0),
            fgt: Some(v3_fgt),
            villages: (1.0, 0.0),
            counties: (0.0, 0.0),
            migrants: 0.0,
            assisted: Some(1.0),
            funds: (0.0, 0.0),
        },
        Expect {
            code: V4,
            rural: Some(120.0),
            registered: (2.0, 5.0),
            poor: (1.0, 3.0),
            exited: (1.0, 2.0),
            returned: 0.0,
            mean: Some(2860.0),
            median: Some(3100.0),
            fgt: Some(v4_fgt),
            villages: (1.0, 1.0),
            counties: (0.0, 0.0),
            migrants: 1.0,
            assisted: Some(1.0),
            funds: (0.0, 0.0),
        },
    ]
}

fn opt_close(got: Option<f64>, want: Option<f64>, what: &str) {
    match want {
        Some(w) => close(got, w, what),
        None => assert_eq!(got, None, "{what}: expected null"),
    }
}

#[tokio::test]
async fn every_metric_matches_hand_computation() {
    let engine = fixture().await;
    assert_eq!(engine.dataset().reject_count(), 0, "fixture is clean");
    let b = collect(engine.metrics(2016, None).await.unwrap()).await;
    // Every region has a row, including the township without villages.
    assert_eq!(count(&b), 14);
    let codes = text(&b, "code");
    let get = |name: &str| floats(&b, name);
    let cols = [
        "rural_population",
        "registered_households",
        "registered_population",
        "poor_households",
        "poor_population",
        "exited_households",
        "exited_population",
        "returned_households",
        "poverty_incidence",
        "mean_income",
        "median_income",
        "fgt0",
        "fgt1",
        "fgt2",
        "poor_villages",
        "poor_villages_remaining",
        "poor_counties",
        "poor_counties_remaining",
        "migrant_workers",
        "assisted_share",
        "funds_allocated",
        "funds_disbursed",
        "disbursement_rate",
    ];
    let values: Vec<Vec<Option<f64>>> = cols.iter().map(|c| get(c)).collect();
    let col = |name: &str, row: usize| values[cols.iter().position(|c| *c == name).unwrap()][row];
    for e in expectations() {
        let row = codes
            .iter()
            .position(|c| c.as_deref() == Some(e.code))
            .unwrap_or_else(|| panic!("no row for {}", e.code));
        let w = |what: &str| format!("{} {what}", e.code);
        opt_close(
            col("rural_population", row),
            e.rural,
            &w("rural_population"),
        );
        close(
            col("registered_households", row),
            e.registered.0,
            &w("registered_households"),
        );
        close(
            col("registered_population", row),
            e.registered.1,
            &w("registered_population"),
        );
        close(col("poor_households", row), e.poor.0, &w("poor_households"));
        close(col("poor_population", row), e.poor.1, &w("poor_population"));
        close(
            col("exited_households", row),
            e.exited.0,
            &w("exited_households"),
        );
        close(
            col("exited_population", row),
            e.exited.1,
            &w("exited_population"),
        );
        close(
            col("returned_households", row),
            e.returned,
            &w("returned_households"),
        );
        opt_close(
            col("poverty_incidence", row),
            e.rural.map(|r| e.poor.1 / r),
            &w("poverty_incidence"),
        );
        opt_close(col("mean_income", row), e.mean, &w("mean_income"));
        opt_close(col("median_income", row), e.median, &w("median_income"));
        opt_close(col("fgt0", row), e.fgt.map(|f| f.0), &w("fgt0"));
        opt_close(col("fgt1", row), e.fgt.map(|f| f.1), &w("fgt1"));
        opt_close(col("fgt2", row), e.fgt.map(|f| f.2), &w("fgt2"));
        close(col("poor_villages", row), e.villages.0, &w("poor_villages"));
        close(
            col("poor_villages_remaining", row),
            e.villages.1,
            &w("poor_villages_remaining"),
        );
        close(col("poor_counties", row), e.counties.0, &w("poor_counties"));
        close(
            col("poor_counties_remaining", row),
            e.counties.1,
            &w("poor_counties_remaining"),
        );
        close(
            col("migrant_workers", row),
            e.migrants,
            &w("migrant_workers"),
        );
        opt_close(col("assisted_share", row), e.assisted, &w("assisted_share"));
        close(
            col("funds_allocated", row),
            e.funds.0,
            &w("funds_allocated"),
        );
        close(
            col("funds_disbursed", row),
            e.funds.1,
            &w("funds_disbursed"),
        );
        let rate = (e.funds.0 > 0.0).then(|| e.funds.1 / e.funds.0);
        opt_close(col("disbursement_rate", row), rate, &w("disbursement_rate"));
    }
    let levels = text(&b, "level");
    let row = codes
        .iter()
        .position(|c| c.as_deref() == Some("130202002000"))
        .unwrap();
    assert_eq!(levels[row].as_deref(), Some("township"));
}

#[tokio::test]
async fn single_levels_equal_the_all_query() {
    // Hand-made fixture, and a generated registry where every level has
    // many regions (one level is aggregated straight from households, all
    // levels are rolled up from village rows: two plans, one answer).
    single_levels_equal_all(&fixture().await).await;
    single_levels_equal_all(&generated(3000, 41).await).await;
}

async fn single_levels_equal_all(engine: &Engine) {
    let all = collect(engine.metrics(2016, None).await.unwrap()).await;
    assert!(count(&all) > 0);
    let mut from_levels = Vec::new();
    for level in Level::ALL {
        from_levels.extend(collect(engine.metrics(2016, Some(level)).await.unwrap()).await);
    }
    let schema = all[0].schema();
    for field in schema.fields() {
        assert_eq!(
            text(&all, field.name()),
            text(&from_levels, field.name()),
            "{}",
            field.name()
        );
    }
}

#[tokio::test]
async fn members_and_assistance_carry_their_households_links() {
    let engine = fixture().await;
    // The link columns stay out of the public tables.
    for t in ["households", "members", "assistance"] {
        let schema = engine.schema_of(t).await.unwrap();
        let hidden: Vec<_> = schema
            .fields()
            .iter()
            .filter(|f| f.name().starts_with("__"))
            .map(|f| f.name().clone())
            .collect();
        assert!(hidden.is_empty(), "{t} shows {hidden:?}");
    }
    // By hand: households are numbered in file order (2016: h1 = 1 … h8 = 8,
    // then 2015: h1 = 9 … h8 = 15); the village code as an integer; poor
    // for `poor`/`returned`.
    let links = |t: &str, order: &str| {
        let carried = tuopin::links::columns(t).join(", ");
        let sql = format!(
            "SELECT concat_ws(' ', household_id, year, {carried}) AS l \
             FROM __{t}_linked ORDER BY {order}"
        );
        let engine = engine.clone();
        async move { text(&query(&engine, &sql).await, "l") }
    };
    let want = |rows: &[&str]| rows.iter().map(|r| Some(r.to_string())).collect::<Vec<_>>();
    assert_eq!(
        links("members", "person_id, year").await,
        want(&[
            "h1 2015 130102001001",
            "h1 2016 130102001001",
            "h1 2016 130102001001",
            "h1 2016 130102001001",
            "h7 2016 130202001001",
        ])
    );
    assert_eq!(
        links("assistance", "household_id, year, helper_id").await,
        want(&[
            "h1 2016 1 130102001001 true",
            "h1 2016 1 130102001001 true",
            "h2 2016 2 130102001001 false",
            "h4 2015 12 130102001002 true",
            "h6 2016 6 130103001001 true",
            "h7 2016 7 130202001001 true",
        ])
    );
    // The households' own link is their row number, one per household.
    let rows = query(
        &engine,
        "SELECT count(DISTINCT __row) AS n, count(*) AS m FROM __households_linked",
    )
    .await;
    assert_eq!(floats(&rows, "n"), vec![Some(15.0)]);
    assert_eq!(floats(&rows, "m"), vec![Some(15.0)]);
}

#[tokio::test]
async fn migrant_workers_are_null_without_members() {
    let hh = households();
    let engine = engine(&[
        ("regions", REGIONS),
        ("households", &hh),
        ("poverty_lines", LINES),
    ])
    .await;
    let b = collect(engine.metrics(2016, Some(Level::Province)).await.unwrap()).await;
    assert_eq!(floats(&b, "migrant_workers"), vec![None]);
    // No funds table: zero allocated, no rate.
    assert_eq!(floats(&b, "funds_allocated"), vec![Some(0.0)]);
    assert_eq!(floats(&b, "disbursement_rate"), vec![None]);
}

#[tokio::test]
async fn causes_by_hand() {
    let engine = fixture().await;
    let b = collect(engine.causes(2016, Some(Level::Province)).await.unwrap()).await;
    let causes = text(&b, "primary_cause");
    let hh = floats(&b, "households");
    let pop = floats(&b, "population");
    let poor = floats(&b, "poor_households");
    let share = floats(&b, "share");
    let expect = [
        (Some("illness"), 4.0, 9.0, 2.0, 0.5),
        (Some("labor"), 2.0, 6.0, 2.0, 0.25),
        (Some("disability"), 1.0, 5.0, 0.0, 0.125),
        (None, 1.0, 2.0, 1.0, 0.125),
    ];
    assert_eq!(causes.len(), expect.len());
    for (cause, h, p, pr, s) in expect {
        let i = causes
            .iter()
            .position(|c| c.as_deref() == cause)
            .unwrap_or_else(|| panic!("{cause:?}"));
        close(hh[i], h, "households");
        close(pop[i], p, "population");
        close(poor[i], pr, "poor_households");
        close(share[i], s, "share");
    }
    let v = collect(engine.causes(2016, Some(Level::Village)).await.unwrap()).await;
    let codes = text(&v, "code");
    let causes = text(&v, "primary_cause");
    let share = floats(&v, "share");
    let i = (0..codes.len())
        .find(|i| codes[*i].as_deref() == Some(V1) && causes[*i].as_deref() == Some("illness"))
        .unwrap();
    close(share[i], 2.0 / 3.0, "v1 illness share");
}

#[tokio::test]
async fn transitions_by_hand() {
    let engine = fixture().await;
    let b = collect(engine.transitions(2016, None).await.unwrap()).await;
    let codes = text(&b, "code");
    let get = |code: &str, col: &str| {
        let i = codes
            .iter()
            .position(|c| c.as_deref() == Some(code))
            .unwrap();
        floats(&b, col)[i]
    };
    let expect = [
        ("130000000000", 8.0, 1.0, 2.0, 1.0, 3.0, 1.0),
        (V1, 3.0, 0.0, 1.0, 1.0, 1.0, 0.0),
        (V2, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0),
        (V3, 2.0, 1.0, 0.0, 0.0, 0.0, 1.0),
        (V4, 2.0, 0.0, 1.0, 0.0, 1.0, 0.0),
        ("130202002000", 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
    ];
    for (code, hh, new, exited, returned, still, missing) in expect {
        close(get(code, "households"), hh, &format!("{code} households"));
        close(
            get(code, "newly_identified"),
            new,
            &format!("{code} newly_identified"),
        );
        close(get(code, "exited"), exited, &format!("{code} exited"));
        close(get(code, "returned"), returned, &format!("{code} returned"));
        close(
            get(code, "still_poor"),
            still,
            &format!("{code} still_poor"),
        );
        close(
            get(code, "not_in_previous"),
            missing,
            &format!("{code} not_in_previous"),
        );
    }
}

#[tokio::test]
async fn village_exit_uses_inherited_western_threshold() {
    let engine = fixture().await;
    let rules = RuleSet::builtin("village-2016").unwrap();
    let b = collect(engine.evaluate(&rules, 2016).await.unwrap()).await;
    let codes = text(&b, "code");
    let outcome = text(&b, "outcome");
    let got = |code: &str| {
        outcome[codes
            .iter()
            .position(|c| c.as_deref() == Some(code))
            .unwrap()]
        .clone()
    };
    // v1 7%, v2 2% (not below 2%), v3 2.5% (non-western) stay; v4 2.5% in
    // western city B passes the 3% threshold.
    assert_eq!(got(V1).as_deref(), Some("stay"));
    assert_eq!(got(V2).as_deref(), Some("stay"));
    assert_eq!(got(V3).as_deref(), Some("stay"));
    assert_eq!(got(V4).as_deref(), Some("exit"));
    assert_eq!(count(&b), 4, "one row per village");
}

/// 95 % Wilson score interval of x successes in n (DESIGN §9), by hand.
fn wilson(x: f64, n: f64) -> (f64, f64) {
    let z: f64 = 1.959963984540054;
    let p = x / n;
    let k = z * z / n;
    let centre = (p + k / 2.0) / (1.0 + k);
    let half = z * (p * (1.0 - p) / n + k / (4.0 * n)).sqrt() / (1.0 + k);
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

#[tokio::test]
async fn assessment_rates_carry_their_sample_size_and_wilson_interval() {
    let engine = fixture().await;
    let facts = query(
        &engine,
        "SELECT * FROM county_facts WHERE year = 2016 ORDER BY code",
    )
    .await;
    // A1: mistaken 1 of 4 exited samples, missed 1 of 2, recognised 4 of 5.
    for (rate, x, n) in [
        ("mistaken_exit_rate", 1.0, 4.0),
        ("missed_rate", 1.0, 2.0),
        ("recognition_rate", 4.0, 5.0),
    ] {
        let (lo, hi) = wilson(x, n);
        assert_eq!(
            text(&facts, &format!("{rate}_n"))[0],
            Some((n as i64).to_string())
        );
        close(floats(&facts, &format!("{rate}_low"))[0], lo, rate);
        close(floats(&facts, &format!("{rate}_high"))[0], hi, rate);
        // A2 has no assessment: n = 0, rate and bounds null.
        assert_eq!(text(&facts, &format!("{rate}_n"))[1], Some("0".into()));
        assert_eq!(floats(&facts, rate)[1], None);
        assert_eq!(floats(&facts, &format!("{rate}_low"))[1], None);
        assert_eq!(floats(&facts, &format!("{rate}_high"))[1], None);
    }
    // B1: no mistaken exit among its samples: the lower bound is 0.
    assert_eq!(floats(&facts, "mistaken_exit_rate_low")[2], Some(0.0));
    let n: f64 = text(&facts, "mistaken_exit_rate_n")[2]
        .as_deref()
        .unwrap()
        .parse()
        .unwrap();
    close(
        floats(&facts, "mistaken_exit_rate_high")[2],
        wilson(0.0, n).1,
        "B1 upper bound",
    );
    // A rule can judge on a bound.
    let toml = "name = \"strict\"\nunit = \"county\"\n[[indicator]]\nkey = \"clearly_low\"\n\
                points = 1\nwhen = \"mistaken_exit_rate_high < 0.02\"\n";
    let rules = RuleSet::from_toml(toml).unwrap();
    let out = engine.evaluate(&rules, 2016).await.unwrap();
    let out = collect(
        out.sort(vec![datafusion::prelude::col("code").sort(true, false)])
            .unwrap(),
    )
    .await;
    // A1's upper bound is far above 2 %; A2 has no sample (unknown); B1
    // found no mistaken exit, but in too few samples to show < 2 %.
    assert_eq!(
        text(&out, "outcome"),
        vec![
            Some("stay".into()),
            Some("undetermined".into()),
            Some("stay".into())
        ]
    );
}

#[tokio::test]
async fn county_exit_with_assessment_rates() {
    let engine = fixture().await;
    let sql = "SELECT code, mistaken_exit_rate, missed_rate, recognition_rate, poverty_incidence, \
        western FROM county_facts WHERE year = 2016 ORDER BY code";
    let facts = query(&engine, sql).await;
    assert_eq!(
        text(&facts, "code"),
        vec![
            Some("130102000000".into()),
            Some("130103000000".into()),
            Some("130202000000".into())
        ]
    );
    // A1: exited samples 4, one mistaken; non-registered 2, one missed;
    // recognized 5 of 5 answered... (true,true,false,true,true) = 4/5.
    let mistaken = floats(&facts, "mistaken_exit_rate");
    let missed = floats(&facts, "missed_rate");
    let recognition = floats(&facts, "recognition_rate");
    close(mistaken[0], 0.25, "A1 mistaken_exit_rate");
    close(missed[0], 0.5, "A1 missed_rate");
    close(recognition[0], 4.0 / 5.0, "A1 recognition_rate");
    assert_eq!(
        (mistaken[1], missed[1], recognition[1]),
        (None, None, None),
        "A2 has no assessment"
    );
    close(mistaken[2], 0.0, "B1 mistaken_exit_rate");
    close(missed[2], 0.0, "B1 missed_rate");
    close(recognition[2], 1.0, "B1 recognition_rate");
    assert_eq!(
        text(&facts, "western"),
        vec![
            Some("false".into()),
            Some("false".into()),
            Some("true".into())
        ]
    );

    let rules = RuleSet::builtin("county-2016").unwrap();
    let df = engine.evaluate(&rules, 2016).await.unwrap();
    let b = collect(
        df.sort(vec![datafusion::prelude::col("code").sort(true, false)])
            .unwrap(),
    )
    .await;
    assert_eq!(
        text(&b, "outcome"),
        vec![
            Some("stay".into()),
            Some("stay".into()),
            Some("exit".into())
        ]
    );
    assert_eq!(
        text(&b, "vetoed_by")[0].as_deref(),
        Some("incidence;mistaken_exit;missed;recognition")
    );
    assert_eq!(
        text(&b, "unknown")[1].as_deref(),
        Some("mistaken_exit;missed;recognition")
    );
}

#[tokio::test]
async fn roll_ups_are_consistent_on_generated_data() {
    let engine = generated(6000, 21).await;
    register_metrics_view(&engine, 2017).await;
    // Each level's counts equal the sum over the level below (children are
    // found by the parent code), and incidence is recomputed from sums.
    let sql = "
        SELECT p.level, p.code,
          p.registered_households - sum(c.registered_households) AS d1,
          p.poor_population - sum(c.poor_population) AS d2,
          p.exited_households - sum(c.exited_households) AS d3,
          p.returned_households - sum(c.returned_households) AS d4,
          p.poor_villages - sum(c.poor_villages) AS d5,
          p.migrant_workers - sum(c.migrant_workers) AS d6,
          p.rural_population - sum(c.rural_population) AS d7,
          abs(p.poverty_incidence - CAST(sum(c.poor_population) AS DOUBLE) / sum(c.rural_population)) AS d8
        FROM m p JOIN m c ON region_parent(c.code) = p.code
        GROUP BY p.level, p.code, p.registered_households, p.poor_population, p.exited_households,
                 p.returned_households, p.poor_villages, p.migrant_workers, p.rural_population, p.poverty_incidence";
    let b = query(&engine, sql).await;
    assert!(count(&b) >= 30, "parents with children: {}", count(&b));
    for d in ["d1", "d2", "d3", "d4", "d5", "d6", "d7"] {
        assert!(
            floats(&b, d).iter().all(|x| *x == Some(0.0)),
            "{d} not zero"
        );
    }
    assert!(
        floats(&b, "d8")
            .iter()
            .all(|x| x.is_some_and(|v| v < 1e-12)),
        "incidence"
    );
    // Household counts of the province equal the registry's rows that year.
    let n = query(
        &engine,
        "SELECT count(*) AS n FROM households WHERE year = 2017",
    )
    .await;
    let p = query(
        &engine,
        "SELECT registered_households AS n FROM m WHERE level = 'province'",
    )
    .await;
    assert_eq!(text(&n, "n"), text(&p, "n"));
}

#[tokio::test]
async fn weighted_median_without_group_by_uses_the_same_definition() {
    // No GROUP BY: DataFusion uses the single-group accumulator, not the
    // groups fast path; both must give the province median (2500).
    let engine = fixture().await;
    let direct = "SELECT weighted_median(per_capita_net_income, CAST(size AS BIGINT)) AS m \
        FROM household_facts WHERE year = 2016";
    let b = query(&engine, direct).await;
    close(floats(&b, "m")[0], 2500.0, "median");
}

#[tokio::test]
async fn medians_rolled_up_from_village_pairs_equal_direct_medians() {
    // metrics() computes each level's median from its villages'
    // `weighted_values` pairs; the direct median over the households of the
    // level (no roll-up) must be identical, at every level.
    let engine = generated(6000, 5).await;
    register_metrics_view(&engine, 2016).await;
    let mut checked = 0;
    for level in ["province", "city", "county", "township", "village"] {
        let sql = format!(
            "SELECT m.code, m.median_income AS got, d.med AS want FROM m JOIN ( \
               SELECT {level}_code AS code, weighted_median(per_capita_net_income, CAST(size AS BIGINT)) AS med \
               FROM household_facts WHERE year = 2016 GROUP BY {level}_code) d ON d.code = m.code \
             WHERE m.level = '{level}'"
        );
        let b = query(&engine, &sql).await;
        let (got, want) = (floats(&b, "got"), floats(&b, "want"));
        assert!(!got.is_empty(), "{level}: no rows");
        assert_eq!(got, want, "{level}");
        checked += got.len();
    }
    assert!(checked > 100, "regions checked: {checked}");
    // The pairs of a whole table, merged without GROUP BY, give the same
    // province median.
    let merged_once =
        "SELECT weighted_median(p) AS m FROM (SELECT weighted_values(per_capita_net_income, \
        CAST(size AS BIGINT)) AS p FROM household_facts WHERE year = 2016 GROUP BY village_code)";
    let b = query(&engine, merged_once).await;
    let p = query(
        &engine,
        "SELECT median_income AS m FROM m WHERE level = 'province'",
    )
    .await;
    assert_eq!(floats(&b, "m"), floats(&p, "m"));
    // Pairs merged twice (villages → counties with weighted_values(pairs),
    // counties → province) still give the same median.
    let merged_twice = "SELECT weighted_median(q) AS m FROM ( \
          SELECT weighted_values(p) AS q FROM ( \
            SELECT county_code, weighted_values(per_capita_net_income, CAST(size AS BIGINT)) AS p \
            FROM household_facts WHERE year = 2016 GROUP BY county_code, village_code) \
          GROUP BY county_code)";
    let c = query(&engine, merged_twice).await;
    assert_eq!(floats(&c, "m"), floats(&p, "m"));
}

#[tokio::test]
async fn memory_limit_keeps_results_or_fails_with_a_query_error() {
    let with = |limit: Option<usize>| {
        generated_with(
            4000,
            9,
            tuopin::EngineOptions {
                memory_limit: limit,
                ..Default::default()
            },
        )
    };
    let free = with(None).await;
    let limited = with(Some(64 << 20)).await;
    let a = collect(free.metrics(2016, None).await.unwrap()).await;
    let b = collect(limited.metrics(2016, None).await.unwrap()).await;
    assert_eq!(text(&a, "code"), text(&b, "code"));
    assert_eq!(floats(&a, "median_income"), floats(&b, "median_income"));
    assert_eq!(
        floats(&a, "poverty_incidence"),
        floats(&b, "poverty_incidence")
    );
    // Far too little memory: a typed query error, not a panic or a wrong result.
    let starved = with(Some(16 << 10)).await;
    let err = starved
        .metrics(2016, None)
        .await
        .unwrap()
        .collect()
        .await
        .map_err(tuopin::Error::from)
        .expect_err("16 KiB cannot hold the aggregation");
    assert_eq!(err.kind(), tuopin::ErrorKind::Query);
    assert!(err.to_string().contains("Resources exhausted"), "{err}");
}

#[tokio::test]
async fn metrics_are_identical_whatever_the_partitioning() {
    // Float sums are taken in DECIMAL, so how rows are split into parallel
    // partitions, and the order partial aggregates merge in, cannot change
    // a single bit (with double sums fgt1/fgt2/mean_income differ in the
    // last bits between partition counts, and between runs).
    let run = |partitions: usize| async move {
        let engine = generated_with(
            3000,
            7,
            tuopin::EngineOptions {
                target_partitions: partitions,
                batch_size: 256,
                ..Default::default()
            },
        )
        .await;
        collect(engine.metrics(2017, None).await.unwrap()).await
    };
    let first = run(1).await;
    for partitions in [2, 3, 7] {
        let other = run(partitions).await;
        for c in [
            "mean_income",
            "median_income",
            "fgt0",
            "fgt1",
            "fgt2",
            "funds_allocated",
            "disbursement_rate",
        ] {
            assert_eq!(
                floats(&first, c),
                floats(&other, c),
                "{c}, {partitions} partitions"
            );
        }
    }
}

/// Every column of `a` equals the same column of `b` (values and types;
/// field nullability may differ).
fn same_columns(
    a: &[arrow::record_batch::RecordBatch],
    b: &[arrow::record_batch::RecordBatch],
    what: &str,
) {
    let (a, b) = (
        arrow::compute::concat_batches(&a[0].schema(), a).unwrap(),
        arrow::compute::concat_batches(&b[0].schema(), b).unwrap(),
    );
    assert!(a.num_rows() > 0, "{what}: no rows");
    assert_eq!(a.num_columns(), b.num_columns(), "{what}");
    for (i, field) in a.schema().fields().iter().enumerate() {
        assert_eq!(field.name(), b.schema().field(i).name(), "{what}");
        assert_eq!(
            a.column(i).as_ref(),
            b.column(i).as_ref(),
            "{what}: {}",
            field.name()
        );
    }
}

#[tokio::test]
async fn one_year_facts_with_constant_lines_equal_the_view() {
    // metrics(year) and evaluate(year) read the year's household facts
    // with its lines written as constants instead of joining
    // `poverty_lines`: the rows must be those of the view — a year with
    // both lines (2016), one without a monitoring line (2015), and one
    // without a poverty_lines row at all (null lines).
    let without_2015 = engine(&[
        ("regions", REGIONS),
        ("households", &households()),
        (
            "poverty_lines",
            "year,poverty_line,monitoring_line\n2016,3000,4000\n",
        ),
    ])
    .await;
    for (engine, year) in [
        (fixture().await, 2016),
        (fixture().await, 2015),
        (without_2015, 2015),
    ] {
        let lines = engine
            .year_lines(year)
            .await
            .unwrap()
            .expect("constant lines");
        let inlined = collect(
            engine
                .household_facts(year)
                .await
                .unwrap()
                .sort(vec![
                    datafusion::prelude::col("household_id").sort(true, false)
                ])
                .unwrap(),
        )
        .await;
        let view = query(
            &engine,
            &format!("SELECT * FROM household_facts WHERE year = {year} ORDER BY household_id"),
        )
        .await;
        same_columns(&inlined, &view, &format!("{year}, lines {lines:?}"));
    }
    let engine = fixture().await;
    assert_eq!(
        engine.year_lines(2016).await.unwrap(),
        Some(tuopin::YearLines {
            poverty_line: Some(3000.0),
            monitoring_line: Some(4000.0)
        })
    );
    assert_eq!(
        engine.year_lines(2015).await.unwrap(),
        Some(tuopin::YearLines {
            poverty_line: Some(2800.0),
            monitoring_line: None
        })
    );
}
