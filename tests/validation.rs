//! Loading and validation: every row fault of DESIGN §2.4 lands in
//! `rejects` with its row, key, column and problem, and the accepted rows
//! are exactly the rest; structural faults fail the load.

mod common;

use std::sync::Arc;

use common::*;
use datafusion::arrow::array::{BinaryArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use tuopin::codes::id_check_char;
use tuopin::{Dataset, Error};

const V1: &str = "130102001001";

#[allow(clippy::too_many_arguments)]
fn row(
    id: &str,
    village: &str,
    size: &str,
    category: &str,
    status: &str,
    exit: &str,
    cause: &str,
    wage: &str,
    medical: &str,
    eligible: &str,
    enrolled: &str,
) -> String {
    format!("{id},2016,{village},{size},{category},{status},2014,{exit},{cause},{wage},0,0,0,0,true,0,{medical},{eligible},{enrolled},true,true,false,,,")
}

/// (row number, household_id, expected column, expected problem fragment)
fn faulty_households() -> (String, Vec<(i64, &'static str, &'static str, &'static str)>) {
    let rows = vec![
        row(
            "H01", V1, "3", "general", "poor", "", "illness", "5000", "3", "2", "2",
        ),
        row(
            "H02",
            "13010200100X",
            "3",
            "general",
            "poor",
            "",
            "illness",
            "5000",
            "3",
            "2",
            "2",
        ),
        row(
            "H03",
            "130102001009",
            "3",
            "general",
            "poor",
            "",
            "illness",
            "5000",
            "3",
            "2",
            "2",
        ),
        row(
            "H04", V1, "0", "general", "poor", "", "illness", "5000", "0", "0", "0",
        ),
        row(
            "H05", V1, "3", "general", "poor", "", "illness", "-5", "3", "2", "2",
        ),
        row(
            "H06", V1, "3", "general", "poor", "", "illness", "5000", "5", "2", "2",
        ),
        row(
            "H07", V1, "3", "general", "poor", "", "illness", "5000", "3", "2", "2",
        ),
        row(
            "H07", V1, "2", "general", "poor", "", "illness", "4000", "2", "2", "2",
        ),
        row(
            "H09", V1, "3", "rich", "poor", "", "illness", "5000", "3", "2", "2",
        ),
        row(
            "H10", V1, "3", "general", "gone", "", "illness", "5000", "3", "2", "2",
        ),
        row(
            "H11", V1, "3", "general", "poor", "", "bad luck", "5000", "3", "2", "2",
        ),
        row(
            "H12", V1, "3", "general", "exited", "", "illness", "5000", "3", "2", "2",
        ),
        row(
            "H13", V1, "abc", "general", "poor", "", "illness", "5000", "3", "2", "2",
        ),
        row(
            "H14", V1, "3", "general", "poor", "", "illness", "5000", "3", "2", "3",
        ),
        row(
            "H15",
            "130102001000",
            "3",
            "general",
            "poor",
            "",
            "illness",
            "5000",
            "3",
            "2",
            "2",
        ),
        row(
            "H16", V1, "4", "dibao", "exited", "2016", "", "", "4", "3", "3",
        ),
        row(
            "H17", V1, "3", "general", "poor", "", "illness", "5000", "3", "4", "2",
        ),
    ];
    let expected = vec![
        (
            2,
            "H02/2016",
            "village_code",
            "malformed region code '13010200100X'",
        ),
        (
            3,
            "H03/2016",
            "village_code",
            "unknown village 130102001009",
        ),
        (4, "H04/2016", "size", "size 0 is below 1"),
        (5, "H05/2016", "wage_income", "negative value -5"),
        (
            6,
            "H06/2016",
            "medical_enrolled",
            "medical_enrolled 5 exceeds size 3",
        ),
        (
            7,
            "H07/2016",
            "year",
            "duplicate key (2 rows share household_id, year)",
        ),
        (
            8,
            "H07/2016",
            "year",
            "duplicate key (2 rows share household_id, year)",
        ),
        (9, "H09/2016", "category", "unknown value 'rich'"),
        (10, "H10/2016", "status", "unknown value 'gone'"),
        (11, "H11/2016", "primary_cause", "unknown value 'bad luck'"),
        (
            12,
            "H12/2016",
            "exit_year",
            "exit_year missing for an exited household",
        ),
        (13, "H13/2016", "size", "cannot read 'abc' as int32"),
        (
            14,
            "H14/2016",
            "pension_enrolled",
            "pension_enrolled 3 exceeds pension_eligible 2",
        ),
        (15, "H15/2016", "village_code", "is not a village code"),
        (
            17,
            "H17/2016",
            "pension_eligible",
            "pension_eligible 4 exceeds size 3",
        ),
    ];
    (format!("{HH_HEADER}\n{}\n", rows.join("\n")), expected)
}

fn valid_id(first17: &str) -> String {
    format!("{first17}{}", id_check_char(first17).expect("17 digits"))
}

fn members() -> String {
    let good = valid_id("13010219800101001");
    let first = "13010219800101002";
    let right = id_check_char(first).expect("digits");
    let wrong = if right == '0' { '1' } else { '0' };
    format!(
        "household_id,year,person_id,relation,sex,birth_year,id_number,education,in_school,health,labor,migrant_months
H01,2016,H01-1,head,M,1980,{good},junior,false,healthy,normal,8
H01,2016,H01-2,spouse,F,1981,{first}{wrong},junior,false,healthy,normal,0
H99,2016,H99-1,head,M,1980,,junior,false,healthy,normal,0
H01,2016,H01-3,child,X,2005,,primary,true,healthy,none,0
H01,2016,H01-4,child,F,2006,,primary,true,healthy,none,13
H01,2016,H01-5,child,F,2006,123,primary,true,healthy,none,0
"
    )
}

#[tokio::test]
async fn every_household_fault_is_rejected_with_its_row_and_problem() {
    let (hh, expected) = faulty_households();
    let dir = write_dir(&[("regions", REGIONS_CSV), ("households", &hh)]);
    let ds = open(dir.path()).await;
    let rejects = ds.rejects().to_vec();
    let tables = text(&rejects, "table");
    let rows = text(&rejects, "row");
    let keys = text(&rejects, "key");
    let columns = text(&rejects, "column");
    let problems = text(&rejects, "problem");
    for (r, key, column, fragment) in &expected {
        let found = (0..rows.len()).any(|i| {
            tables[i].as_deref() == Some("households")
                && rows[i].as_deref() == Some(r.to_string().as_str())
                && keys[i].as_deref() == Some(*key)
                && columns[i].as_deref() == Some(*column)
                && problems[i].as_deref().is_some_and(|p| p.contains(fragment))
        });
        assert!(
            found,
            "row {r} {key}: no reject on {column} containing {fragment:?}; rejects: {problems:?}"
        );
    }
    // Every reject is one we expected (no spurious faults).
    for i in 0..rows.len() {
        let r: i64 = rows[i].as_deref().unwrap().parse().unwrap();
        assert!(
            expected.iter().any(|e| e.0 == r),
            "unexpected reject {:?} {:?}",
            rows[i],
            problems[i]
        );
    }
    // The accepted rows are exactly the rest.
    let accepted = ds.table("households").unwrap();
    let ids = text(&accepted.batches, "household_id");
    assert_eq!(ids, vec![Some("H01".to_string()), Some("H16".to_string())]);
    let summary = ds
        .summary()
        .iter()
        .find(|s| s.table == "households")
        .unwrap();
    assert_eq!(
        (summary.rows, summary.accepted, summary.rejected),
        (17, 2, 15)
    );
    assert!(summary.source.ends_with("households.csv"));
}

#[tokio::test]
async fn member_faults_and_orphans_are_rejected() {
    let (hh, _) = faulty_households();
    let m = members();
    let dir = write_dir(&[
        ("regions", REGIONS_CSV),
        ("households", &hh),
        ("members", &m),
    ]);
    let ds = open(dir.path()).await;
    let rejects = ds.rejects().to_vec();
    let tables = text(&rejects, "table");
    let keys = text(&rejects, "key");
    let columns = text(&rejects, "column");
    let problems = text(&rejects, "problem");
    let member = |key: &str, column: &str, fragment: &str| {
        (0..keys.len()).any(|i| {
            tables[i].as_deref() == Some("members")
                && keys[i].as_deref() == Some(key)
                && columns[i].as_deref() == Some(column)
                && problems[i].as_deref().is_some_and(|p| p.contains(fragment))
        })
    };
    assert!(member("H01-2/2016", "id_number", "check digit"));
    assert!(member("H01-5/2016", "id_number", "malformed ID number"));
    assert!(member(
        "H99-1/2016",
        "household_id",
        "unknown household H99"
    ));
    assert!(member("H01-3/2016", "sex", "unknown value 'X'"));
    assert!(member("H01-4/2016", "migrant_months", "outside 0..12"));
    let accepted = text(&ds.table("members").unwrap().batches, "person_id");
    assert_eq!(accepted, vec![Some("H01-1".to_string())]);
}

#[tokio::test]
async fn rejected_rows_are_left_out_of_queries() {
    let (hh, _) = faulty_households();
    let engine = engine(&[("regions", REGIONS_CSV), ("households", &hh)]).await;
    let b = collect(
        engine
            .sql("SELECT count(*) AS n FROM household_facts")
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(text(&b, "n"), vec![Some("2".to_string())]);
    let r = collect(
        engine
            .sql("SELECT count(*) AS n FROM rejects WHERE \"table\" = 'households'")
            .await
            .unwrap(),
    )
    .await;
    let all = collect(engine.rejects().await.unwrap()).await;
    assert_eq!(
        text(&r, "n"),
        vec![Some("15".to_string())],
        "{:?}",
        text(&all, "problem")
    );
}

#[tokio::test]
async fn region_faults() {
    let regions = format!("{REGIONS_CSV}1301020010XX,坏村,10,,,,\n130102001001,重复,10,,,,\n130199001001,孤村,10,,,,\n130102001003,负村,-4,,,,\n130102000000,\n");
    let hh = format!("{HH_HEADER}\n");
    let dir = write_dir(&[("regions", &regions), ("households", &hh)]);
    let ds = open(dir.path()).await;
    let rejects = ds.rejects().to_vec();
    let problems = text(&rejects, "problem");
    let keys = text(&rejects, "key");
    let has = |key: &str, fragment: &str| {
        (0..keys.len()).any(|i| {
            keys[i].as_deref() == Some(key)
                && problems[i].as_deref().is_some_and(|p| p.contains(fragment))
        })
    };
    assert!(has("1301020010XX", "malformed region code"));
    assert!(has("130102001001", "duplicate key"));
    assert!(has("130102000000", "duplicate key"));
    assert!(has("130102000000", "missing value"), "{problems:?}");
    assert!(has(
        "130199001001",
        "parent region 130199001000 not in regions"
    ));
    assert!(has("130102001003", "negative value -4"));
    // Both rows sharing a duplicated code are rejected.
    let codes = text(&ds.table("regions").unwrap().batches, "code");
    assert!(!codes.contains(&Some("130102001001".to_string())));
}

#[tokio::test]
async fn missing_required_column_fails_naming_file_and_column() {
    let hh = "household_id,year,village_code,category,status\nH1,2016,130102001001,general,poor\n";
    let dir = write_dir(&[("regions", REGIONS_CSV), ("households", hh)]);
    let err = Dataset::open_with(dir.path(), &tuopin::OpenOptions::in_memory())
        .await
        .unwrap_err();
    match &err {
        Error::Schema {
            table,
            source_name,
            column,
            ..
        } => {
            assert_eq!(table, "households");
            assert!(source_name.ends_with("households.csv"));
            assert_eq!(column.as_deref(), Some("size"));
        }
        other => panic!("expected a schema error, got {other}"),
    }
    assert!(err.to_string().contains("column `size`"));
}

#[tokio::test]
async fn missing_required_table_and_folder() {
    let dir = write_dir(&[("regions", REGIONS_CSV)]);
    let err = Dataset::open_with(dir.path(), &tuopin::OpenOptions::in_memory())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::MissingTable { ref table, .. } if table == "households"),
        "{err}"
    );
    let err = Dataset::open(dir.path().join("nope")).await.unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
}

#[tokio::test]
async fn uncastable_type_fails_the_load() {
    let schema = Arc::new(Schema::new(vec![
        Field::new("household_id", DataType::Utf8, false),
        Field::new("year", DataType::Int32, false),
        Field::new("village_code", DataType::Utf8, false),
        Field::new("size", DataType::Binary, false),
        Field::new("category", DataType::Utf8, false),
        Field::new("status", DataType::Utf8, false),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(datafusion::arrow::array::StringArray::from(vec!["H1"])),
            Arc::new(datafusion::arrow::array::Int32Array::from(vec![2016])),
            Arc::new(datafusion::arrow::array::StringArray::from(vec![
                "130102001001",
            ])),
            Arc::new(BinaryArray::from(vec![b"x".as_ref()])),
            Arc::new(datafusion::arrow::array::StringArray::from(vec!["general"])),
            Arc::new(datafusion::arrow::array::StringArray::from(vec!["poor"])),
        ],
    )
    .unwrap();
    let generated = tuopin::synth::generate_tables(&tuopin::GenerateOptions {
        households: 50,
        ..Default::default()
    })
    .unwrap();
    let regions = generated
        .into_iter()
        .find(|(n, _)| *n == "regions")
        .unwrap()
        .1;
    let err = Dataset::from_batches([("regions", regions), ("households", vec![batch])])
        .await
        .unwrap_err();
    match err {
        Error::Schema {
            column, message, ..
        } => {
            assert_eq!(column.as_deref(), Some("size"));
            assert!(message.contains("cannot be cast"), "{message}");
        }
        other => panic!("expected a schema error, got {other}"),
    }
}

#[tokio::test]
async fn csv_and_parquet_loads_are_identical() {
    let tables = tuopin::synth::generate_tables(&tuopin::GenerateOptions {
        households: 400,
        seed: 11,
        faults: 0.02,
        ..Default::default()
    })
    .unwrap();
    let (_csv, b) = loads_agree(&tables).await;
    assert!(b.reject_count() > 0, "faults were generated");
}

/// Load `tables` written as CSV and as Parquet, assert the two loads
/// agree — every table's column types and values, the rejects ledger row
/// by row — and return both folders' datasets (CSV, Parquet).
async fn loads_agree(tables: &[(&str, Vec<RecordBatch>)]) -> (Dataset, Dataset) {
    let csv = tempfile::tempdir().unwrap();
    let pq = tempfile::tempdir().unwrap();
    for (name, batches) in tables {
        tuopin::output::write_batches(batches, csv.path().join(format!("{name}.csv"))).unwrap();
        tuopin::output::write_batches(batches, pq.path().join(format!("{name}.parquet"))).unwrap();
    }
    let a = open(csv.path()).await;
    let b = open(pq.path()).await;
    for name in a.table_names() {
        let ta = a.table(name).unwrap();
        let tb = b.table(name).unwrap();
        assert_eq!(ta.schema.fields().len(), tb.schema.fields().len(), "{name}");
        for f in tb.schema.fields() {
            assert_eq!(
                ta.schema.field_with_name(f.name()).unwrap().data_type(),
                f.data_type(),
                "{name}.{}",
                f.name()
            );
            assert_eq!(
                text(&ta.batches, f.name()),
                text(&tb.batches, f.name()),
                "{name}.{}",
                f.name()
            );
        }
    }
    for col in ["table", "row", "key", "column", "problem"] {
        assert_eq!(
            text(a.rejects(), col),
            text(b.rejects(), col),
            "rejects.{col}"
        );
    }
    (a, b)
}

#[tokio::test]
async fn nan_and_infinite_numbers_are_rejected() {
    let hh = format!(
        "{HH_HEADER}\n{}\n{}\n{}\n",
        row("H1", V1, "3", "general", "poor", "", "illness", "NaN", "3", "2", "2"),
        row("H2", V1, "3", "general", "poor", "", "illness", "inf", "3", "2", "2"),
        row("H3", V1, "3", "general", "poor", "", "illness", "5000", "3", "2", "2"),
    );
    let dir = write_dir(&[("regions", REGIONS_CSV), ("households", &hh)]);
    let ds = open(dir.path()).await;
    let rejects = ds.rejects().to_vec();
    assert_eq!(
        text(&rejects, "key"),
        vec![Some("H1/2016".to_string()), Some("H2/2016".to_string())]
    );
    assert_eq!(
        text(&rejects, "column"),
        vec![
            Some("wage_income".to_string()),
            Some("wage_income".to_string())
        ]
    );
    let problems = text(&rejects, "problem");
    assert!(
        problems.iter().all(|p| p
            .as_deref()
            .is_some_and(|p| p.starts_with("not a finite number"))),
        "{problems:?}"
    );
    let accepted = ds.table("households").map(|t| t.num_rows()).unwrap_or(0);
    assert_eq!(accepted, 1);
}

/// Code-list columns are read from Parquet as dictionaries and checked
/// once per distinct value: labels, blanks, unknown codes and nulls in
/// them come out as they do from CSV (text read row by row), the
/// validated column is text again, and each case is what DESIGN §2.4/§8
/// say.
#[tokio::test]
async fn code_list_columns_read_as_dictionaries_agree_with_csv() {
    use datafusion::arrow::array::{Array, StringArray};
    let mut tables = tuopin::synth::generate_tables(&tuopin::GenerateOptions {
        households: 200,
        seed: 5,
        ..Default::default()
    })
    .unwrap();
    // The first member rows' relations: a Chinese label (spaces around it
    // too), blank text, an unknown code, null.
    let cases: [Option<&str>; 6] = [
        Some("户主"),
        Some(" 户主 "),
        Some("  "),
        Some("\u{3000}"),
        Some("nonsense"),
        None,
    ];
    let members = &mut tables
        .iter_mut()
        .find(|(name, _)| *name == "members")
        .unwrap()
        .1;
    let first = members[0].clone();
    let at = first.schema().index_of("relation").unwrap();
    let old = first
        .column(at)
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap()
        .clone();
    let relation: StringArray = (0..old.len())
        .map(|i| match cases.get(i) {
            Some(case) => *case,
            None => old.is_valid(i).then(|| old.value(i)),
        })
        .collect();
    let mut columns = first.columns().to_vec();
    columns[at] = Arc::new(relation);
    members[0] = RecordBatch::try_new(first.schema(), columns).unwrap();

    let (_, b) = loads_agree(&tables).await;
    let tb = b.table("members").unwrap();
    assert_eq!(
        tb.schema.field_with_name("relation").unwrap().data_type(),
        &DataType::Utf8
    );
    // Labels read as the value, blanks as null, null kept; the unknown
    // code (row 5) rejected with its value.
    let relations = text(&tb.batches, "relation");
    assert_eq!(
        relations[..5],
        [
            Some("head".to_string()),
            Some("head".to_string()),
            None,
            None,
            None
        ]
    );
    let problems: Vec<(Option<String>, Option<String>)> = text(b.rejects(), "row")
        .into_iter()
        .zip(text(b.rejects(), "problem"))
        .collect();
    assert_eq!(
        problems,
        [(
            Some("5".to_string()),
            Some(format!(
                "unknown value 'nonsense' (expected {})",
                tuopin::schema::RELATIONS.join(", ")
            ))
        )]
    );
}

/// Only the code-list columns validation read as dictionaries become text
/// again: an extra column that comes as a dictionary of numbers keeps its
/// type.
#[tokio::test]
async fn an_extra_dictionary_of_numbers_keeps_its_type() {
    use datafusion::arrow::array::{DictionaryArray, Int64Array, Int8Array};
    use datafusion::arrow::datatypes::Int8Type;
    let mut tables = tuopin::synth::generate_tables(&tuopin::GenerateOptions {
        households: 50,
        seed: 3,
        ..Default::default()
    })
    .unwrap();
    let households = &mut tables
        .iter_mut()
        .find(|(name, _)| *name == "households")
        .unwrap()
        .1;
    let kind = DataType::Dictionary(Box::new(DataType::Int8), Box::new(DataType::Int64));
    for batch in households.iter_mut() {
        let n = batch.num_rows();
        let keys = Int8Array::from_iter_values((0..n).map(|i| (i % 2) as i8));
        let extra =
            DictionaryArray::<Int8Type>::try_new(keys, Arc::new(Int64Array::from(vec![7, 9])))
                .unwrap();
        let mut fields: Vec<Field> = batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields.push(Field::new("survey_round", kind.clone(), false));
        let mut columns = batch.columns().to_vec();
        columns.push(Arc::new(extra));
        *batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap();
    }
    let ds = Dataset::from_batches(tables).await.unwrap();
    let t = ds.table("households").unwrap();
    assert_eq!(
        t.schema
            .field_with_name("survey_round")
            .unwrap()
            .data_type(),
        &kind
    );
    assert_eq!(
        text(&t.batches, "survey_round")[..2],
        [Some("7".into()), Some("9".into())]
    );
}
