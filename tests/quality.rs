//! The national system's consistency checks (DESIGN §8): each check on a
//! household crafted to fire it, nulls that must not fire, and none of the
//! checks that cannot apply on clean generated data.

mod common;

use common::*;

const V: &str = "130102001001";

/// A 2016 household of `size` persons with `wage` as its whole income.
#[allow(clippy::too_many_arguments)]
fn row(
    id: &str,
    size: i32,
    status: &str,
    cause: &str,
    wage: i32,
    housing: bool,
    dropouts: i32,
) -> String {
    let exit_year = if status == "exited" { "2016" } else { "" };
    format!(
        "{id},2016,{V},{size},general,{status},2014,{exit_year},{cause},{wage},0,0,0,0,{housing},{dropouts},{size},{size},{size},true,true,false,,,"
    )
}

const MEMBERS_HEADER: &str =
    "household_id,year,person_id,relation,sex,birth_year,id_number,education,in_school,health,labor,migrant_months";

/// A member: (household, person, id number, in school, health, labour, months).
fn member(
    h: &str,
    p: &str,
    id: &str,
    school: &str,
    health: &str,
    labor: &str,
    months: &str,
) -> String {
    format!("{h},2016,{p},other,,,{id},,{school},{health},{labor},{months}")
}

const SHARED_ID: &str = "11010519491231002X";

#[tokio::test]
async fn each_check_fires_on_its_household_and_nulls_do_not() {
    let households = [
        row("Q1", 1, "exited", "other", 1000, true, 0), // below the line
        row("Q2", 1, "exited", "other", 9000, true, 1), // dropouts
        row("Q3", 1, "exited", "other", 9000, false, 0), // unsafe housing
        row("Q4", 2, "poor", "illness", 5000, true, 0), // all healthy
        row("Q5", 2, "poor", "schooling", 5000, true, 0), // nobody in school
        row("Q6", 2, "poor", "disability", 5000, true, 0), // nobody disabled
        row("Q7", 1, "poor", "other", 3000, true, 0),   // wage, no worker
        row("Q8", 1, "poor", "other", 0, true, 0),      // income 0
        row("Q9", 2, "poor", "illness", 5000, true, 0), // health unknown: not judged
        row("Q10", 2, "poor", "illness", 5000, true, 0), // one member ill
    ];
    let members = [
        member("Q4", "P41", SHARED_ID, "", "healthy", "", ""),
        member("Q4", "P42", "", "", "healthy", "", ""),
        member("Q5", "P51", SHARED_ID, "false", "", "", ""),
        member("Q5", "P52", "", "false", "", "", ""),
        member("Q6", "P61", "", "", "healthy", "", ""),
        member("Q6", "P62", "", "", "chronic", "", ""),
        member("Q7", "P71", "", "", "", "none", "0"),
        member("Q9", "P91", "", "", "", "", ""),
        member("Q9", "P92", "", "", "", "", ""),
        member("Q10", "P101", "", "", "healthy", "", ""),
        member("Q10", "P102", "", "", "serious", "", ""),
    ];
    let engine = engine(&[
        ("regions", REGIONS_CSV),
        (
            "households",
            &format!("{HH_HEADER}\n{}\n", households.join("\n")),
        ),
        (
            "members",
            &format!("{MEMBERS_HEADER}\n{}\n", members.join("\n")),
        ),
    ])
    .await;
    let rejects = collect(engine.rejects().await.unwrap()).await;
    assert_eq!(count(&rejects), 0, "{:?}", text(&rejects, "problem"));
    let b = collect(engine.quality(2016).await.unwrap()).await;
    let got: Vec<(String, String, String)> = text(&b, "table")
        .into_iter()
        .zip(text(&b, "key"))
        .zip(text(&b, "check"))
        .map(|((t, k), c)| (t.unwrap(), k.unwrap(), c.unwrap()))
        .collect();
    let want: Vec<(String, String, String)> = [
        ("households", "Q1/2016", "exited_below_line"),
        ("households", "Q2/2016", "exited_with_dropouts"),
        ("households", "Q3/2016", "exited_unsafe_housing"),
        ("households", "Q4/2016", "illness_all_healthy"),
        ("households", "Q5/2016", "schooling_no_student"),
        ("households", "Q6/2016", "disability_none_disabled"),
        ("households", "Q7/2016", "wage_without_worker"),
        ("households", "Q8/2016", "income_out_of_range"),
        ("members", "P41/2016", "duplicate_id_number"),
        ("members", "P51/2016", "duplicate_id_number"),
    ]
    .iter()
    .map(|(t, k, c)| (t.to_string(), k.to_string(), c.to_string()))
    .collect();
    assert_eq!(got, want);
    let details: Vec<String> = text(&b, "detail").into_iter().flatten().collect();
    assert!(
        details[0].contains("1000") && details[0].contains("2952"),
        "{}",
        details[0]
    );
    assert!(
        details[8].contains(SHARED_ID) && details[8].contains("2 households"),
        "{}",
        details[8]
    );
    assert!(engine.quality(2031).await.is_err());
}

#[tokio::test]
async fn clean_generated_data_has_no_duplicate_ids_or_impossible_incomes() {
    let engine = generated(2000, 5).await;
    let b = collect(engine.quality(2016).await.unwrap()).await;
    let checks: Vec<String> = text(&b, "check").into_iter().flatten().collect();
    assert!(
        !checks.iter().any(|c| c == "duplicate_id_number"),
        "{checks:?}"
    );
    for c in &checks {
        assert!(tuopin::quality::check_names().any(|n| n == c), "{c}");
    }
}
