//! Registry exports as users have them (DESIGN §8): the same registry as
//! English UTF-8 CSV and as a GB18030 export with Chinese headers, labels,
//! 是/否, 2016年12月31日 dates and thousands separators reads into the same
//! validated tables, rejects and outcomes; each value form; the `--columns`
//! map; the store is not reused across reading options.

mod common;

use std::path::Path;

use common::*;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::csv::WriterBuilder;
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
    let outcomes = collect(engine.evaluate(&hebei, 2016).await.unwrap()).await;
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
