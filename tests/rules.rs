//! The exit-rule engine: the three-valued outcome rule on hand-computed
//! households, rule-loading errors, CSV vs Parquet, `evaluate_many`, and
//! every audit flag (DESIGN §3).

mod common;

use common::*;
use datafusion::prelude::col;
use tuopin::{Engine, Error, RuleSet};

const V1: &str = "130102001001";

/// One 2016 household of size 4 with the given indicator values.
#[allow(clippy::too_many_arguments)]
fn case(
    id: &str,
    net: f64,
    housing: &str,
    dropouts: &str,
    medical: &str,
    pension: (&str, &str),
    water: &str,
    electricity: &str,
) -> String {
    format!(
        "{id},2016,{V1},4,general,poor,2014,,illness,{net},0,0,0,0,{housing},{dropouts},{medical},{},{},{water},{electricity},false,,,",
        pension.1, pension.0
    )
}

/// The worked examples of DESIGN §3 under hebei-2016 (2016 line 2,952),
/// plus exactly 80 points.
fn design_examples() -> String {
    let rows = [
        case("A", 11960.0, "true", "0", "3", ("2", "2"), "true", "true"),
        case("B", 11808.0, "true", "0", "4", ("2", "2"), "true", "true"),
        case("C", 12000.0, "true", "0", "4", ("1", "2"), "", "false"),
        case("D", 12000.0, "true", "0", "4", ("1", "2"), "", "true"),
        case("E", 12000.0, "", "0", "4", ("2", "2"), "true", "true"),
        case("F", 12000.0, "true", "0", "4", ("1", "2"), "false", "false"),
        case("G", 12000.0, "true", "0", "4", ("2", "2"), "false", "false"),
        case("H", 12000.0, "true", "1", "4", ("2", "2"), "true", "true"),
        case("I", 0.0, "true", "0", "4", ("2", "2"), "true", "true"),
    ];
    format!("{HH_HEADER}\n{}\n", rows.join("\n"))
}

async fn outcomes(
    engine: &Engine,
    rules: &RuleSet,
) -> Vec<(String, f64, String, String, String, String)> {
    let df = engine
        .evaluate(rules, 2016)
        .await
        .unwrap()
        .sort(vec![col("household_id").sort(true, false)])
        .unwrap();
    let b = collect(df).await;
    let ids = text(&b, "household_id");
    let score = floats(&b, "score");
    let outcome = text(&b, "outcome");
    let vetoed = text(&b, "vetoed_by");
    let unknown = text(&b, "unknown");
    let failed = text(&b, "failed");
    (0..ids.len())
        .map(|i| {
            (
                ids[i].clone().unwrap(),
                score[i].unwrap(),
                outcome[i].clone().unwrap(),
                vetoed[i].clone().unwrap(),
                unknown[i].clone().unwrap(),
                failed[i].clone().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn hebei_2016_worked_examples() {
    let hh = design_examples();
    let engine = engine(&[("regions", REGIONS_CSV), ("households", &hh)]).await;
    let got = outcomes(&engine, &RuleSet::builtin("hebei-2016").unwrap()).await;
    let expect = [
        // id, score, outcome, vetoed_by, unknown
        ("A", 90.0, "stay", "medical", ""),
        ("B", 70.0, "stay", "income", ""),
        ("C", 70.0, "undetermined", "", "safe_water"),
        ("D", 80.0, "exit", "", "safe_water"),
        ("E", 85.0, "undetermined", "", "safe_housing"),
        ("F", 70.0, "stay", "", ""),
        ("G", 80.0, "exit", "", ""),
        ("H", 85.0, "stay", "education", ""),
        ("I", 70.0, "stay", "income", ""),
    ];
    assert_eq!(got.len(), expect.len());
    for (g, e) in got.iter().zip(expect) {
        assert_eq!(g.0, e.0);
        assert_eq!(g.1, e.1, "{} score", e.0);
        assert_eq!(g.2, e.2, "{} outcome", e.0);
        assert_eq!(g.3, e.3, "{} vetoed_by", e.0);
        assert_eq!(g.4, e.4, "{} unknown", e.0);
    }
    // failed lists every failed indicator, in declaration order.
    assert_eq!(got[5].5, "pension;safe_water;electricity");
    // The pass columns are three-valued.
    let b = collect(
        engine
            .evaluate(&RuleSet::builtin("hebei-2016").unwrap(), 2016)
            .await
            .unwrap()
            .filter(col("household_id").eq(datafusion::prelude::lit("C")))
            .unwrap(),
    )
    .await;
    assert_eq!(text(&b, "pass_safe_water"), vec![None]);
    assert_eq!(text(&b, "pass_electricity"), vec![Some("false".into())]);
    assert_eq!(text(&b, "pass_income"), vec![Some("true".into())]);
}

#[tokio::test]
async fn national_2016_needs_all_four() {
    let hh = design_examples();
    let engine = engine(&[("regions", REGIONS_CSV), ("households", &hh)]).await;
    let got = outcomes(&engine, &RuleSet::builtin("national-2016").unwrap()).await;
    let outcome: Vec<&str> = got.iter().map(|g| g.2.as_str()).collect();
    // A medical, B income, E unknown housing, H dropouts, I income.
    assert_eq!(
        outcome,
        [
            "stay",
            "stay",
            "exit",
            "exit",
            "undetermined",
            "exit",
            "exit",
            "stay",
            "stay"
        ]
    );
}

/// A custom rule set to reach 79 and 80 points and an unknown that cannot
/// change a `stay`.
const CUSTOM: &str = r#"
name = "custom"
unit = "household"
pass_score = 80
[[indicator]]
key = "a"
points = 40
veto = true
when = "size >= 1"
[[indicator]]
key = "b"
points = 39
when = "safe_water"
[[indicator]]
key = "c"
points = 1
when = "electricity"
[[indicator]]
key = "d"
points = 5
when = "dropouts = 0"
"#;

#[tokio::test]
async fn score_boundaries_and_unknowns() {
    // id: water, electricity, dropouts → score, unknown points
    let rows = [
        case("P79", 0.0, "true", "1", "4", ("2", "2"), "true", "false"), // 40+39 = 79, no unknown → stay
        case("P80", 0.0, "true", "1", "4", ("2", "2"), "true", "true"),  // 80 → exit
        case("U1", 0.0, "true", "1", "4", ("2", "2"), "true", ""), // 79 + 1 unknown → undetermined
        case("U2", 0.0, "true", "", "4", ("2", "2"), "false", "false"), // 40 + 5 unknown < 80 → stay
        case("U3", 0.0, "true", "", "4", ("2", "2"), "true", "true"),   // 80 + unknown 5 → exit
    ];
    let hh = format!("{HH_HEADER}\n{}\n", rows.join("\n"));
    let engine = engine(&[("regions", REGIONS_CSV), ("households", &hh)]).await;
    let got = outcomes(&engine, &RuleSet::from_toml(CUSTOM).unwrap()).await;
    let got: Vec<(&str, f64, &str)> = got
        .iter()
        .map(|g| (g.0.as_str(), g.1, g.2.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("P79", 79.0, "stay"),
            ("P80", 80.0, "exit"),
            ("U1", 79.0, "undetermined"),
            ("U2", 40.0, "stay"),
            ("U3", 80.0, "exit")
        ]
    );
}

async fn compile_err(toml: &str) -> String {
    let hh = design_examples();
    let engine = engine(&[("regions", REGIONS_CSV), ("households", &hh)]).await;
    let rules = match RuleSet::from_toml(toml) {
        Ok(r) => r,
        Err(e) => return e.to_string(),
    };
    match engine.evaluate(&rules, 2016).await {
        Ok(_) => panic!("rule set should not compile: {toml}"),
        Err(e) => {
            assert!(
                matches!(e, Error::Rule { .. }),
                "expected a rule error, got {e}"
            );
            e.to_string()
        }
    }
}

fn one(when: &str) -> String {
    format!("name = \"bad\"\nunit = \"household\"\n[[indicator]]\nkey = \"k\"\npoints = 10\nwhen = \"{when}\"\n")
}

#[tokio::test]
async fn rule_loading_errors_name_rule_set_indicator_and_cause() {
    let cases: Vec<(String, Vec<&str>)> = vec![
        (one("safe_watr"), vec!["rule set `bad`", "indicator `k`", "unknown column `safe_watr`", "did you mean `safe_water`"]),
        (one("size + 1"), vec!["indicator `k`", "must be boolean", "Int"]),
        (one("size IN (SELECT size FROM households)"), vec!["indicator `k`", "subqueries are not allowed"]),
        (one("EXISTS (SELECT 1)"), vec!["subqueries are not allowed"]),
        (one("sum(size) > 1"), vec!["indicator `k`", "aggregate function"]),
        (one("row_number() OVER () > 1"), vec!["window function"]),
        (one("read_csv('x.csv') IS NULL"), vec!["indicator `k`", "read_csv"]),
        (one("h.size > 1"), vec!["qualified name `h.size`"]),
        (one("size > 1; DROP TABLE x"), vec!["cannot parse"]),
        (
            "name = \"dup\"\nunit = \"household\"\n[[indicator]]\nkey = \"a\"\nwhen = \"true\"\n[[indicator]]\nkey = \"a\"\nwhen = \"true\"\n".into(),
            vec!["rule set `dup`", "indicator `a`", "duplicate indicator key"],
        ),
        (
            "name = \"neg\"\nunit = \"household\"\n[[indicator]]\nkey = \"a\"\npoints = -1\nwhen = \"true\"\n".into(),
            vec!["rule set `neg`", "indicator `a`", "points must be >= 0"],
        ),
        (
            "name = \"high\"\nunit = \"household\"\npass_score = 11\n[[indicator]]\nkey = \"a\"\npoints = 10\nwhen = \"true\"\n".into(),
            vec!["rule set `high`", "pass_score 11 is above the total of 10 points"],
        ),
        ("name = \"t\"\nunit = \"parish\"\n".into(), vec!["rule set `t`", "invalid TOML", "parish"]),
        ("name = \"t\"\nunit = \"household\"\n[[indicator]]\nkey = \"a\"\nwhen = \"true\"\ncolour = 1\n".into(), vec!["invalid TOML", "colour"]),
        ("this is not toml".into(), vec!["invalid TOML"]),
    ];
    for (toml, fragments) in cases {
        let msg = compile_err(&toml).await;
        for f in fragments {
            assert!(msg.contains(f), "{msg:?} should contain {f:?}");
        }
    }
}

#[tokio::test]
async fn unknown_builtin_lists_the_known_ones() {
    let err = RuleSet::builtin("hebei-2017").unwrap_err();
    assert!(err.to_string().contains("hebei-2016"), "{err}");
    assert_eq!(
        RuleSet::builtin_names(),
        ["national-2016", "hebei-2016", "village-2016", "county-2016"]
    );
}

#[tokio::test]
async fn same_outcomes_from_csv_and_parquet() {
    let tables = tuopin::synth::generate_tables(&tuopin::GenerateOptions {
        households: 600,
        seed: 5,
        ..Default::default()
    })
    .unwrap();
    let csv = tempfile::tempdir().unwrap();
    let pq = tempfile::tempdir().unwrap();
    for (name, batches) in &tables {
        tuopin::output::write_batches(batches, csv.path().join(format!("{name}.csv"))).unwrap();
        tuopin::output::write_batches(batches, pq.path().join(format!("{name}.parquet"))).unwrap();
    }
    let a = Engine::new(open(csv.path()).await).await.unwrap();
    let b = Engine::new(open(pq.path()).await).await.unwrap();
    let rules = RuleSet::builtin("hebei-2016").unwrap();
    let sort = || vec![col("household_id").sort(true, false)];
    let ra = collect(
        a.evaluate(&rules, 2017)
            .await
            .unwrap()
            .sort(sort())
            .unwrap(),
    )
    .await;
    let rb = collect(
        b.evaluate(&rules, 2017)
            .await
            .unwrap()
            .sort(sort())
            .unwrap(),
    )
    .await;
    assert!(count(&ra) > 100);
    for c in ["household_id", "score", "outcome", "failed", "unknown"] {
        assert_eq!(text(&ra, c), text(&rb, c), "{c}");
    }
}

#[tokio::test]
async fn evaluate_many_equals_separate_evaluations() {
    let engine = generated(3000, 3).await;
    let hebei = RuleSet::builtin("hebei-2016").unwrap();
    let sets = vec![
        hebei.with_pass_score("p70", 70.0).unwrap(),
        hebei.clone(),
        hebei.with_pass_score("p90", 90.0).unwrap(),
        RuleSet::builtin("national-2016").unwrap(),
    ];
    let sort = || vec![col("household_id").sort(true, false)];
    let many = collect(
        engine
            .evaluate_many(&sets, 2016)
            .await
            .unwrap()
            .sort(sort())
            .unwrap(),
    )
    .await;
    let mut exits = Vec::new();
    for r in &sets {
        let one = collect(
            engine
                .evaluate(r, 2016)
                .await
                .unwrap()
                .sort(sort())
                .unwrap(),
        )
        .await;
        assert_eq!(
            text(&many, &format!("outcome_{}", r.name)),
            text(&one, "outcome"),
            "{}",
            r.name
        );
        assert_eq!(
            text(&many, &format!("score_{}", r.name)),
            text(&one, "score"),
            "{}",
            r.name
        );
        exits.push(
            text(&one, "outcome")
                .iter()
                .filter(|o| o.as_deref() == Some("exit"))
                .count(),
        );
    }
    // A higher pass mark never lets more households exit.
    assert!(exits[0] >= exits[1] && exits[1] >= exits[2], "{exits:?}");
    assert!(
        exits[0] > exits[2],
        "pass marks should matter on generated data: {exits:?}"
    );
    // Names must be distinct and units equal.
    assert!(engine
        .evaluate_many(&[hebei.clone(), hebei.clone()], 2016)
        .await
        .is_err());
    assert!(engine
        .evaluate_many(&[hebei, RuleSet::builtin("village-2016").unwrap()], 2016)
        .await
        .is_err());
}

#[tokio::test]
async fn every_audit_flag_on_a_crafted_household() {
    let ok = "true,0,4,2,2,true,true";
    let rows = [
        // approved although the outcome is stay (income too low)
        format!("N1,2016,{V1},4,general,exited,2014,2016,illness,1000,0,0,0,0,{ok},true,2016-10-01,2016-11-01,2016-12-01"),
        // poor, meets every indicator, not proposed
        format!("N2,2016,{V1},4,general,poor,2014,,illness,20000,0,0,0,0,{ok},false,,,"),
        // township audit without a village review
        format!("N3,2016,{V1},4,general,exited,2014,2016,illness,20000,0,0,0,0,{ok},true,,2016-11-01,2016-12-01"),
        // approved after 31 December
        format!("N4,2016,{V1},4,general,exited,2014,2016,illness,20000,0,0,0,0,{ok},true,2016-10-01,2016-11-01,2017-01-05"),
        // exited without county approval
        format!("N5,2016,{V1},4,general,exited,2014,2016,illness,20000,0,0,0,0,{ok},true,2016-10-01,2016-11-01,"),
        // a clean exit: no flag
        format!("N6,2016,{V1},4,general,exited,2014,2016,illness,20000,0,0,0,0,{ok},true,2016-10-01,2016-11-01,2016-12-01"),
        // dates not ascending
        format!("N7,2016,{V1},4,general,exited,2014,2016,illness,20000,0,0,0,0,{ok},true,2016-11-20,2016-11-01,2016-12-01"),
    ];
    let hh = format!("{HH_HEADER}\n{}\n", rows.join("\n"));
    let engine = engine(&[("regions", REGIONS_CSV), ("households", &hh)]).await;
    let df = engine
        .audit(&RuleSet::builtin("hebei-2016").unwrap(), 2016)
        .await
        .unwrap();
    let b = collect(
        df.sort(vec![
            col("household_id").sort(true, false),
            col("flag").sort(true, false),
        ])
        .unwrap(),
    )
    .await;
    let got: Vec<(String, String)> = text(&b, "household_id")
        .into_iter()
        .zip(text(&b, "flag"))
        .map(|(h, f)| (h.unwrap(), f.unwrap()))
        .collect();
    let expect = [
        ("N1", "approved_not_eligible"),
        ("N2", "eligible_not_proposed"),
        ("N3", "steps_out_of_order"),
        ("N4", "late_approval"),
        ("N5", "exited_without_approval"),
        ("N7", "steps_out_of_order"),
    ];
    let expect: Vec<(String, String)> = expect
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(got, expect);
    let detail = text(&b, "detail");
    assert!(
        detail[0].as_deref().unwrap().contains("outcome is stay"),
        "{detail:?}"
    );
}
