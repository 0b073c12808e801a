//! Registry exports as users have them (DESIGN §8): the same registry as
//! English UTF-8 CSV and as a GB18030 export with Chinese headers, labels,
//! 是/否, 2016年12月31日 dates and thousands separators reads into the same
//! validated tables, rejects and outcomes; each value form; the `--columns`
//! map; the store is not reused across reading options; exports written by
//! `io::exporting` (GB18030 CSV, Excel in parts) read as the Parquet
//! dataset they came from; Excel results.

mod common;

use std::path::Path;

use common::*;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::csv::WriterBuilder;
use tuopin::io::exporting::{export_dataset, ExportFormat, ExportHeaders, ExportOptions};
use tuopin::{ColumnMap, Dataset, Encoding, Engine, OpenOptions, RuleSet};

/// The English header of each Chinese one, inverted: English → Chinese.
fn chinese_header(map: &ColumnMap, table: &str, english: &str) -> String {
    let zh = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/crates/core/columns/zh.toml"
    ))
    .unwrap();
    // The first header of `table` that maps to `english`.
    let section = format!("[headers.{table}]");
    let body = zh.split(&section).nth(1).unwrap_or("");
    for line in body.lines().take_while(|l| !l.starts_with('[')) {
        if let Some((k, v)) = line.split_once(" = ") {
            let (k, v) = (k.trim_matches('"'), v.trim_matches('"'));
            if v == english && map.english(table, k) == Some(english) {
                return k.to_string();
            }
        }
    }
    english.to_string()
}

/// One Chinese label of each value of `column`.
fn chinese_label(column: &str, value: &str) -> Option<&'static str> {
    Some(match (column, value) {
        ("category", "general") => "一般贫困户",
        ("category", "dibao") => "低保贫困户",
        ("category", "tekun") => "特困供养贫困户",
        ("status", "poor") => "未脱贫",
        ("status", "exited") => "已脱贫",
        ("status", "returned") => "返贫",
        ("primary_cause", "illness") => "因病",
        ("primary_cause", "disability") => "因残",
        ("primary_cause", "schooling") => "因学",
        ("primary_cause", "disaster") => "因灾",
        ("primary_cause", "land") => "缺土地",
        ("primary_cause", "water") => "缺水",
        ("primary_cause", "skills") => "缺技术",
        ("primary_cause", "labor") => "缺劳力",
        ("primary_cause", "capital") => "缺资金",
        ("primary_cause", "transport") => "交通条件落后",
        ("primary_cause", "motivation") => "自身发展动力不足",
        ("primary_cause", "other") => "其他",
        ("poor_county", "national") => "国家级",
        ("poor_county", "provincial") => "省级",
        _ => return None,
    })
}

/// A cell as the national system would export it.
fn exported(column: &str, value: &str) -> String {
    if let Some(label) = chinese_label(column, value) {
        return label.to_string();
    }
    match value {
        "true" => return "是".into(),
        "false" => return "否".into(),
        _ => {}
    }
    let b = value.as_bytes();
    if b.len() == 10 && b[4] == b'-' && b[7] == b'-' {
        let (y, m, d) = (&value[..4], &value[5..7], &value[8..]);
        if let (Ok(m), Ok(d)) = (m.parse::<u32>(), d.parse::<u32>()) {
            if (1..=12).contains(&m) && (1..=31).contains(&d) {
                return format!("{y}年{m}月{d}日");
            }
        }
    }
    if column.ends_with("_income") || column == "business_expense" {
        if let Ok(v) = value.parse::<i64>() {
            if v >= 1000 {
                return format!("\"{},{:03}\"", v / 1000, v % 1000);
            }
        }
    }
    value.to_string()
}

/// `batches` as English UTF-8 CSV text.
fn csv(batches: &[RecordBatch]) -> String {
    let mut out = Vec::new();
    {
        let mut w = WriterBuilder::new().with_header(true).build(&mut out);
        for b in batches {
            w.write(b).unwrap();
        }
    }
    String::from_utf8(out).unwrap()
}

/// The English CSV of `table` rewritten as a Chinese export (no cell of
/// these tables holds a comma or a quote, checked).
fn as_export(table: &str, english: &str) -> String {
    let map = ColumnMap::builtin();
    let mut lines = english.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let mut out = header
        .iter()
        .map(|h| chinese_header(&map, table, h))
        .collect::<Vec<_>>()
        .join(",");
    out.push('\n');
    for line in lines {
        assert!(!line.contains('"'), "{line}");
        let cells: Vec<&str> = line.split(',').collect();
        assert_eq!(cells.len(), header.len(), "{line}");
        let row: Vec<String> = header
            .iter()
            .zip(cells)
            .map(|(h, v)| exported(h, v))
            .collect();
        out.push_str(&row.join(","));
        out.push('\n');
    }
    out
}

async fn open(dir: &Path) -> Dataset {
    Dataset::open_with(dir, &OpenOptions::in_memory())
        .await
        .expect("opens")
}

/// Everything a load gives, as comparable text.
async fn snapshot(ds: Dataset) -> Vec<Vec<Option<String>>> {
    let rejects = ds.rejects().to_vec();
    let engine = Engine::new(ds).await.unwrap();
    let hebei = RuleSet::builtin("hebei-2016").unwrap();
    let mut out = Vec::new();
    let households = query(
        &engine,
        "SELECT * FROM households ORDER BY household_id, year",
    )
    .await;
    for f in households[0].schema().fields() {
        out.push(text(&households, f.name()));
    }
    for c in ["table", "row", "column", "problem"] {
        out.push(text(&rejects, c));
    }
    // In household order: a query's rows come from every partition as
    // they finish, so its order is not the table's.
    let outcomes = engine
        .evaluate(&hebei, 2016)
        .await
        .unwrap()
        .sort(vec![
            datafusion::prelude::col("household_id").sort(true, false)
        ])
        .unwrap();
    let outcomes = collect(outcomes).await;
    out.push(text(&outcomes, "household_id"));
    out.push(text(&outcomes, "outcome"));
    out
}

#[tokio::test]
async fn a_gb18030_export_with_chinese_headers_reads_as_the_english_csv() {
    let tables = tuopin::synth::generate_tables(&tuopin::GenerateOptions {
        households: 400,
        seed: 7,
        faults: 0.03,
        only_year: Some(2016),
        ..Default::default()
    })
    .unwrap();
    let english = tempfile::tempdir().unwrap();
    let export = tempfile::tempdir().unwrap();
    for (name, batches) in &tables {
        if !["regions", "households"].contains(name) {
            continue;
        }
        let text = csv(batches);
        std::fs::write(english.path().join(format!("{name}.csv")), &text).unwrap();
        let chinese = as_export(name, &text);
        let (gbk, _, unmappable) = encoding_rs::GB18030.encode(&chinese);
        assert!(!unmappable);
        std::fs::write(export.path().join(format!("{name}.csv")), &*gbk).unwrap();
    }
    // The export really is GB18030 with Chinese headers.
    let raw = std::fs::read(export.path().join("households.csv")).unwrap();
    assert!(std::str::from_utf8(&raw).is_err());
    let a = snapshot(open(english.path()).await).await;
    let b = snapshot(open(export.path()).await).await;
    assert!(!a[a.len() - 3].is_empty(), "the faults gave rejects");
    assert_eq!(a, b);
}

#[tokio::test]
async fn each_value_form_and_each_reject() {
    let header = HH_HEADER
        .replace("household_id", "户编号")
        .replace("safe_housing", "住房安全")
        .replace("village_reviewed_on", "村评议日期");
    let rows = [
        // 是 / 2016年12月1日 / "12,000" / full-width digits
        "H1,2016,130102001001,３,一般贫困户,已脱贫,2014,2016,因病,\"12,000\",0,0,0,0,是,0,3,3,3,有,true,true,2016年12月1日,2016/12/10,20161220",
        // 否 / plain forms
        "H2,2016,130102001001,2,低保贫困户,未脱贫,2014,,其它,100,0,0,0,0,否,0,2,2,2,无,true,false,,,",
        // not a bool, not a date, not a number, not a label: four rejects
        "H3,2016,130102001002,2,一般,未脱贫,2014,,因病,12.000.5,0,0,0,0,也许,0,2,2,2,true,true,false,明天,,",
    ];
    let households = format!("{header}\n{}\n", rows.join("\n"));
    let dir = write_dir(&[("regions", REGIONS_CSV), ("households", &households)]);
    let ds = open(dir.path()).await;
    let rejects = ds.rejects().to_vec();
    let engine = Engine::new(ds).await.unwrap();
    let b = query(
        &engine,
        "SELECT household_id, size, category, status, primary_cause, wage_income, safe_housing, \
         safe_water, CAST(village_reviewed_on AS VARCHAR) AS r, \
         CAST(township_audited_on AS VARCHAR) AS t, CAST(county_approved_on AS VARCHAR) AS c \
         FROM households ORDER BY household_id",
    )
    .await;
    assert_eq!(
        text(&b, "household_id"),
        [Some("H1".into()), Some("H2".into())]
    );
    assert_eq!(text(&b, "size"), [Some("3".into()), Some("2".into())]);
    assert_eq!(
        text(&b, "category"),
        [Some("general".into()), Some("dibao".into())]
    );
    assert_eq!(
        text(&b, "status"),
        [Some("exited".into()), Some("poor".into())]
    );
    assert_eq!(
        text(&b, "primary_cause"),
        [Some("illness".into()), Some("other".into())]
    );
    assert_eq!(floats(&b, "wage_income"), [Some(12000.0), Some(100.0)]);
    assert_eq!(
        text(&b, "safe_housing"),
        [Some("true".into()), Some("false".into())]
    );
    assert_eq!(
        text(&b, "safe_water"),
        [Some("true".into()), Some("false".into())]
    );
    assert_eq!(text(&b, "r"), [Some("2016-12-01".into()), None]);
    assert_eq!(text(&b, "t"), [Some("2016-12-10".into()), None]);
    assert_eq!(text(&b, "c"), [Some("2016-12-20".into()), None]);
    // H3: each bad value a reject naming it, raw.
    let problems: Vec<String> = text(&rejects, "problem").into_iter().flatten().collect();
    for raw in ["'12.000.5'", "'也许'", "'明天'", "'一般'"] {
        assert!(
            problems.iter().any(|p| p.contains(raw)),
            "{raw} in {problems:?}"
        );
    }
}

#[tokio::test]
async fn a_columns_file_adds_headers_and_labels_and_the_store_notices() {
    let header = HH_HEADER.replace("household_id", "家庭编号");
    let row = "H1,2016,130102001001,2,普通户,poor,2014,,illness,100,0,0,0,0,true,0,2,2,2,true,true,false,,,";
    let households = format!("{header}\n{row}\n");
    let dir = write_dir(&[("regions", REGIONS_CSV), ("households", &households)]);
    let store = tempfile::tempdir().unwrap();
    let plain = OpenOptions {
        store: Some(store.path().join("s")),
        ..Default::default()
    };
    // Without the map: 家庭编号 is an extra column, household_id missing.
    let err = Dataset::open_with(dir.path(), &plain).await.unwrap_err();
    assert!(err.to_string().contains("household_id"), "{err}");
    let mine = ColumnMap::from_toml(
        "[headers.households]\n\"家庭编号\" = \"household_id\"\n[labels.category]\n\"普通户\" = \"general\"\n",
    )
    .unwrap();
    let mapped = OpenOptions {
        columns: Some(mine),
        encoding: Encoding::Utf8,
        ..plain.clone()
    };
    let ds = Dataset::open_with(dir.path(), &mapped).await.unwrap();
    assert!(!ds.reused_store());
    let engine = Engine::new(ds).await.unwrap();
    let b = query(&engine, "SELECT household_id, category FROM households").await;
    assert_eq!(text(&b, "household_id"), [Some("H1".into())]);
    assert_eq!(text(&b, "category"), [Some("general".into())]);
    // Same options: reused; other options: validated again.
    assert!(Dataset::open_with(dir.path(), &mapped)
        .await
        .unwrap()
        .reused_store());
    let more = ColumnMap::from_toml("[labels.status]\n\"贫困户\" = \"poor\"\n").unwrap();
    let other_map = OpenOptions {
        columns: Some(mapped.columns.clone().unwrap().extended(&more)),
        ..mapped.clone()
    };
    assert!(!Dataset::open_with(dir.path(), &other_map)
        .await
        .unwrap()
        .reused_store());
    // A forced encoding is honoured (not a reused store): this UTF-8 file
    // read as GB18030 has no 家庭编号 header.
    let gb = OpenOptions {
        encoding: Encoding::Gb18030,
        ..mapped.clone()
    };
    let err = Dataset::open_with(dir.path(), &gb).await.unwrap_err();
    assert!(err.to_string().contains("household_id"), "{err}");
}

#[tokio::test]
async fn an_excel_export_reads_its_table_sheet_with_cells_as_written() {
    // tests/fixtures/xlsx/make.py wrote these with openpyxl: Chinese
    // headers and labels, numbers and dates as Excel cells, a first sheet
    // that is not the table, and "两人" in a number column.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/xlsx");
    let ds = open(&dir).await;
    let rejects = ds.rejects().to_vec();
    let engine = Engine::new(ds).await.unwrap();
    let b = query(
        &engine,
        "SELECT household_id, year, village_code, size, category, status, wage_income, \
         safe_housing, CAST(village_reviewed_on AS VARCHAR) AS r \
         FROM households ORDER BY household_id",
    )
    .await;
    assert_eq!(
        text(&b, "household_id"),
        [Some("H1".into()), Some("H2".into())]
    );
    assert_eq!(text(&b, "year"), [Some("2016".into()), Some("2016".into())]);
    assert_eq!(
        text(&b, "village_code"),
        [Some("130102001001".into()), Some("130102001001".into())]
    );
    assert_eq!(text(&b, "size"), [Some("3".into()), Some("2".into())]);
    assert_eq!(
        text(&b, "category"),
        [Some("general".into()), Some("dibao".into())]
    );
    assert_eq!(
        text(&b, "status"),
        [Some("exited".into()), Some("poor".into())]
    );
    assert_eq!(floats(&b, "wage_income"), [Some(12000.0), Some(100.5)]);
    assert_eq!(
        text(&b, "safe_housing"),
        [Some("true".into()), Some("false".into())]
    );
    assert_eq!(text(&b, "r"), [Some("2016-12-01".into()), None]);
    // H3's size is text: one reject on row 3 naming the raw cell.
    assert_eq!(text(&rejects, "row"), [Some("3".into())]);
    assert_eq!(text(&rejects, "column"), [Some("size".into())]);
    assert!(text(&rejects, "problem")[0]
        .as_deref()
        .unwrap()
        .contains("'两人'"));
    let regions = query(
        &engine,
        "SELECT name, poor_village, poor_county FROM regions WHERE code = '130102001001' \
         OR code = '130102000000' ORDER BY code",
    )
    .await;
    assert_eq!(
        text(&regions, "name"),
        [Some("甲县".into()), Some("一村".into())]
    );
    assert_eq!(
        text(&regions, "poor_county"),
        [Some("national".into()), None]
    );
    assert_eq!(text(&regions, "poor_village"), [None, Some("true".into())]);
}

/// Export options with Chinese headers in `format`.
fn chinese(format: ExportFormat, part_rows: usize) -> ExportOptions {
    ExportOptions {
        format,
        headers: ExportHeaders::Chinese,
        encoding: Encoding::Gb18030,
        part_rows,
        ..ExportOptions::default()
    }
}

#[tokio::test]
async fn the_same_registry_as_parquet_as_gb18030_csv_and_as_excel_parts_reads_the_same() {
    let parquet = tempfile::tempdir().unwrap();
    tuopin::generate(
        &tuopin::GenerateOptions {
            households: 300,
            seed: 11,
            faults: 0.03,
            only_year: Some(2016),
            ..Default::default()
        },
        parquet.path(),
    )
    .unwrap();
    let csv_dir = tempfile::tempdir().unwrap();
    let written = export_dataset(
        parquet.path(),
        csv_dir.path(),
        &chinese(ExportFormat::Csv, 1_000_000),
    )
    .await
    .unwrap();
    assert!(written.iter().any(|p| p.ends_with("households.csv")));
    // GB18030 with the national system's headers, labels and dates.
    let raw = std::fs::read(csv_dir.path().join("households.csv")).unwrap();
    let (decoded, _, bad) = encoding_rs::GB18030.decode(&raw);
    assert!(!bad && std::str::from_utf8(&raw).is_err());
    let header = decoded.lines().next().unwrap();
    assert!(
        header.starts_with("户编号,年度,村代码,家庭人口数,贫困户属性,脱贫状态"),
        "{header}"
    );
    assert!(decoded.contains("一般贫困户") && decoded.contains(",是,") && decoded.contains("日"));

    // Excel in parts of 100 rows: households (300 + faulty rows) is a folder.
    let xlsx_dir = tempfile::tempdir().unwrap();
    export_dataset(
        parquet.path(),
        xlsx_dir.path(),
        &chinese(ExportFormat::Xlsx, 100),
    )
    .await
    .unwrap();
    let parts = xlsx_dir.path().join("households");
    assert!(parts.join("households-0001.xlsx").is_file());
    assert!(parts.join("households-0003.xlsx").is_file());
    assert!(!xlsx_dir.path().join("households.xlsx").exists());

    let a = open(parquet.path()).await;
    let rejects_a = a.rejects().to_vec();
    let a = snapshot(a).await;
    let b = snapshot(open(csv_dir.path()).await).await;
    assert!(!a[a.len() - 3].is_empty(), "the faults gave rejects");
    assert_eq!(a, b, "Parquet and GB18030 CSV");

    let c = open(xlsx_dir.path()).await;
    let rejects_c = c.rejects().to_vec();
    let summary = c.summary().to_vec();
    let c = snapshot(c).await;
    // Same tables and outcomes; rejects: same table, column and problem,
    // `row` within the part named by `file`.
    let n = a.len();
    assert_eq!(a[..n - 6], c[..n - 6], "households");
    assert_eq!(a[n - 2..], c[n - 2..], "outcomes");
    assert_eq!(a[n - 6], c[n - 6], "rejects: table");
    assert_eq!(a[n - 4..n - 2], c[n - 4..n - 2], "rejects: column, problem");
    let files = text(&rejects_c, "file");
    let rows_c = text(&rejects_c, "row");
    let tables = text(&rejects_c, "table");
    let rows_a = text(&rejects_a, "row");
    assert!(text(&rejects_a, "file").iter().all(Option::is_none));
    let mut households = 0;
    for i in 0..files.len() {
        let row: i64 = rows_c[i].as_deref().unwrap().parse().unwrap();
        let global = match files[i].as_deref() {
            Some(f) => {
                let k: i64 = f
                    .strip_prefix(&format!(
                        "{}/{}-",
                        tables[i].as_deref().unwrap(),
                        tables[i].as_deref().unwrap()
                    ))
                    .and_then(|s| s.strip_suffix(".xlsx"))
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!((1..=100).contains(&row), "{f} row {row}");
                households += 1;
                (k - 1) * 100 + row
            }
            None => row,
        };
        assert_eq!(Some(global.to_string()), rows_a[i], "reject {i}");
    }
    assert!(households > 0, "some rejects name their part");
    let hh = summary.iter().find(|s| s.table == "households").unwrap();
    assert!(
        hh.notes.iter().any(|n| n.contains("parts")),
        "{:?}",
        hh.notes
    );
}

#[tokio::test]
async fn parts_with_other_columns_are_refused_naming_the_part() {
    let dir = write_dir(&[("regions", REGIONS_CSV)]);
    let parts = dir.path().join("households");
    std::fs::create_dir(&parts).unwrap();
    std::fs::write(
        parts.join("a.csv"),
        format!(
            "{HH_HEADER}\n{}\n",
            hh_row(
                "H1",
                2016,
                "130102001001",
                3,
                "poor",
                2014,
                None,
                "illness",
                Some(9000.0)
            )
        ),
    )
    .unwrap();
    // The second part names its columns in Chinese and in another order:
    // fine. The third lacks a column: an error naming it.
    let chinese_header = HH_HEADER.replacen("household_id,year", "年度,户编号", 1);
    let row = hh_row(
        "H2",
        2016,
        "130102001001",
        2,
        "poor",
        2014,
        None,
        "illness",
        Some(9000.0),
    );
    let (id, rest) = row.split_once(',').unwrap();
    let (year, rest) = rest.split_once(',').unwrap();
    std::fs::write(
        parts.join("b.csv"),
        format!("{chinese_header}\n{year},{id},{rest}\n"),
    )
    .unwrap();
    let ds = open(dir.path()).await;
    let engine = Engine::new(ds).await.unwrap();
    let b = query(
        &engine,
        "SELECT household_id, size FROM households ORDER BY household_id",
    )
    .await;
    assert_eq!(
        text(&b, "household_id"),
        [Some("H1".into()), Some("H2".into())]
    );
    assert_eq!(text(&b, "size"), [Some("3".into()), Some("2".into())]);

    let short = HH_HEADER.replace(",county_approved_on", "");
    let row = hh_row(
        "H3",
        2016,
        "130102001001",
        2,
        "poor",
        2014,
        None,
        "illness",
        Some(9000.0),
    );
    let row = &row[..row.rfind(',').unwrap()];
    std::fs::write(parts.join("c.csv"), format!("{short}\n{row}\n")).unwrap();
    let err = Dataset::open_with(dir.path(), &OpenOptions::in_memory())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("c.csv") && err.contains("county_approved_on"),
        "{err}"
    );
    // A folder and a file for one table: refused.
    std::fs::remove_file(parts.join("c.csv")).unwrap();
    std::fs::write(dir.path().join("households.csv"), HH_HEADER).unwrap();
    let err = Dataset::open_with(dir.path(), &OpenOptions::in_memory())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("several files"), "{err}");
}

#[tokio::test]
async fn excel_results_have_typed_cells_and_chinese_headers_on_request() {
    use calamine::{open_workbook_auto, Data, Reader};
    let engine = engine(&[
        ("regions", REGIONS_CSV),
        (
            "households",
            &format!(
                "{HH_HEADER}\n{}\n",
                hh_row(
                    "H1",
                    2016,
                    "130102001001",
                    3,
                    "poor",
                    2014,
                    None,
                    "illness",
                    Some(9000.0)
                )
            ),
        ),
    ])
    .await;
    let df = engine
        .sql(
            "SELECT household_id, village_code, year, size, wage_income / 3 AS third, safe_housing, \
             DATE '2016-12-31' AS on_day, make_array('a', 'b') AS failed, \
             CAST(NULL AS BIGINT) AS missing FROM households",
        )
        .await
        .unwrap();
    let df = tuopin::io::exporting::with_headers(df, ExportHeaders::Chinese, &ColumnMap::builtin())
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("result.xlsx");
    assert_eq!(tuopin::output::write_dataframe(df, &path).await.unwrap(), 1);
    let mut book = open_workbook_auto(&path).unwrap();
    assert_eq!(book.sheet_names(), ["result"]);
    let range = book.worksheet_range("result").unwrap();
    let rows: Vec<&[Data]> = range.rows().collect();
    let header: Vec<String> = rows[0].iter().map(|c| c.to_string()).collect();
    assert_eq!(
        header,
        [
            "户编号",
            "村代码",
            "年度",
            "家庭人口数",
            "third",
            "住房安全",
            "on_day",
            "failed",
            "missing"
        ]
    );
    let r = rows[1];
    assert_eq!(r[0], Data::String("H1".into()));
    // Codes are text in tuopin, and stay text.
    assert_eq!(r[1], Data::String("130102001001".into()));
    assert_eq!(r[2], Data::Float(2016.0));
    assert_eq!(r[3], Data::Float(3.0));
    assert_eq!(r[4], Data::Float(3000.0));
    assert_eq!(r[5], Data::Bool(true));
    match &r[6] {
        Data::DateTime(d) => {
            let (y, m, day, ..) = d.to_ymd_hms_milli();
            assert_eq!((y, m, day), (2016, 12, 31));
        }
        other => panic!("not a date cell: {other:?}"),
    }
    assert_eq!(r[7], Data::String("a;b".into()));
    assert_eq!(r.get(8).cloned().unwrap_or(Data::Empty), Data::Empty);
}

#[tokio::test]
async fn opening_reports_the_bytes_read_and_validation() {
    let dir = write_dir(&[
        ("regions", REGIONS_CSV),
        (
            "households",
            &format!(
                "{HH_HEADER}\n{}\n",
                hh_row(
                    "H1",
                    2016,
                    "130102001001",
                    3,
                    "poor",
                    2014,
                    None,
                    "illness",
                    Some(9000.0)
                )
            ),
        ),
    ]);
    let total: u64 = ["regions.csv", "households.csv"]
        .iter()
        .map(|f| std::fs::metadata(dir.path().join(f)).unwrap().len())
        .sum();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let options = OpenOptions {
        progress: Some(std::sync::Arc::new(
            move |stage: &str, done: u64, all: u64| {
                log.lock().unwrap().push((stage.to_string(), done, all));
            },
        )),
        ..OpenOptions::in_memory()
    };
    Dataset::open_with(dir.path(), &options).await.unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.first(), Some(&("reading".to_string(), 0, total)));
    let reads: Vec<u64> = seen
        .iter()
        .filter(|s| s.0 == "reading")
        .map(|s| s.1)
        .collect();
    assert!(reads.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
    assert_eq!(reads.last(), Some(&total));
    assert_eq!(
        seen[seen.len() - 2..],
        [
            ("validating".to_string(), 0, 1),
            ("validating".to_string(), 1, 1)
        ]
    );
}
