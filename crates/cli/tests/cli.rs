//! The `tuopin` command end to end: exit codes of DESIGN §5 and outputs.

use std::process::Command;

fn tuopin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tuopin"))
}

/// Run `c`, assert it exits 0 (showing its stderr if not), and return its
/// standard output.
fn succeed(c: &mut Command) -> String {
    let out = c.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn generate(dir: &std::path::Path, faults: &str) {
    succeed(
        tuopin()
            .args([
                "generate",
                "--households",
                "800",
                "--seed",
                "3",
                "--faults",
                faults,
                "--out",
            ])
            .arg(dir),
    );
}

#[test]
fn validate_exit_codes() {
    let clean = tempfile::tempdir().unwrap();
    generate(clean.path(), "0");
    let out = tuopin().arg("validate").arg(clean.path()).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("households"));

    let faulty = tempfile::tempdir().unwrap();
    generate(faulty.path(), "0.05");
    let rejects = faulty.path().join("rejects.csv");
    let out = tuopin()
        .arg("validate")
        .arg(faulty.path())
        .arg("--out")
        .arg(&rejects)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = std::fs::read_to_string(&rejects).unwrap();
    assert!(text.starts_with("table,row,key,column,problem"), "{text}");
    assert!(text.lines().count() > 10);

    // A missing folder is an I/O error; a missing required column is data.
    let out = tuopin()
        .args(["validate", "/nonexistent/tuopin"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let broken = tempfile::tempdir().unwrap();
    std::fs::write(broken.path().join("regions.csv"), "code\n130000000000\n").unwrap();
    std::fs::write(broken.path().join("households.csv"), "household_id\nH1\n").unwrap();
    let out = tuopin()
        .arg("validate")
        .arg(broken.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("column `name`"));
}

#[test]
fn usage_and_rule_errors() {
    let out = tuopin().arg("frobnicate").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), "0");
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "name = \"x\"\nunit = \"household\"\n[[indicator]]\nkey = \"a\"\nwhen = \"safe_watr\"\n",
    )
    .unwrap();
    let out = tuopin()
        .arg("evaluate")
        .arg(dir.path())
        .arg("--rules")
        .arg(&bad)
        .args(["--year", "2016"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("did you mean `safe_water`"));
    let out = tuopin()
        .args(["rules", "check"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let out = tuopin()
        .arg("metrics")
        .arg(dir.path())
        .args(["--year", "2016", "--level", "district"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = tuopin()
        .arg("sql")
        .arg(dir.path())
        .arg("SELEC nonsense")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn evaluate_writes_csv_with_lists_as_text() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), "0");
    let out_file = dir.path().join("out.csv");
    succeed(
        tuopin()
            .arg("evaluate")
            .arg(dir.path())
            .args(["--rules", "hebei-2016", "--year", "2016", "--out"])
            .arg(&out_file),
    );
    let text = std::fs::read_to_string(&out_file).unwrap();
    let header = text.lines().next().unwrap();
    assert!(
        header.contains("pass_income") && header.contains("outcome") && header.contains("failed")
    );
    assert!(
        text.contains("pension;") || text.contains(";safe_water") || text.contains(";electricity")
    );
    let summary = tuopin()
        .arg("evaluate")
        .arg(dir.path())
        .args(["--rules", "hebei-2016", "--year", "2016"])
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&summary.stdout);
    assert!(
        s.contains("exit") && s.contains("top failing indicators"),
        "{s}"
    );
    for level in ["city", "all"] {
        succeed(
            tuopin()
                .arg("metrics")
                .arg(dir.path())
                .args(["--year", "2017", "--level", level]),
        );
    }
    let rules = tuopin()
        .args(["rules", "show", "hebei-2016"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&rules.stdout).contains("pass_score = 80"));
}

#[test]
fn demo_runs() {
    let s = succeed(tuopin().args(["demo", "--households", "3000"]));
    assert!(
        s.contains("hebei-2016") && s.contains("per city") && s.contains("county-2016"),
        "{s}"
    );
}

#[test]
fn a_store_on_the_dataset_folder_is_refused_and_the_sources_kept() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), "0");
    let read = |p: &std::path::Path| std::fs::read(p.join("households.parquet")).unwrap();
    let before = read(dir.path());
    let out = tuopin()
        .arg("--store")
        .arg(dir.path())
        .arg("validate")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is the dataset folder"), "{err}");
    assert_eq!(read(dir.path()), before);
    // The next open still works.
    let out = tuopin().arg("validate").arg(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn sql_is_read_only_and_years_outside_the_data_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), "0");
    let target = dir.path().join("copied.csv");
    let copy = format!(
        "COPY (SELECT household_id FROM households) TO '{}' STORED AS CSV",
        target.display()
    );
    let out = tuopin()
        .arg("sql")
        .arg(dir.path())
        .arg(&copy)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("read-only"));
    assert!(!target.exists());
    let out = tuopin()
        .arg("sql")
        .arg(dir.path())
        .arg(&copy)
        .arg("--allow-write")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(target.exists());

    let out = tuopin()
        .args(["metrics", "--year", "2030", "--level", "city"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no household snapshot for 2030"), "{err}");
    assert!(err.contains("2014–2020"), "{err}");

    let out = tuopin()
        .args(["metrics", "--year", "2016", "--memory-limit", "-1G"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("positive size"));
}

#[test]
fn a_closed_output_pipe_ends_quietly() {
    // The reader is gone before anything is written (as with `| head`
    // after its lines): exit 0, no panic message.
    let mut child = tuopin()
        .args(["rules", "show", "hebei-2016"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(0), "{err}");
}

#[test]
fn mpi_and_its_change() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), "0");
    let out_file = dir.path().join("mpi.csv");
    succeed(
        tuopin()
            .args([
                "mpi",
                "--rules",
                "hebei-2016",
                "--year",
                "2016",
                "--level",
                "city",
            ])
            .args(["--k", "0.33", "--k", "0.5", "--out"])
            .arg(&out_file)
            .arg(dir.path()),
    );
    let text = std::fs::read_to_string(&out_file).unwrap();
    assert!(
        text.starts_with("level,code,name,year,k,population,excluded_households,H,A,M0,"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 1 + 2 * 11);
    let change = succeed(
        tuopin()
            .args([
                "mpi",
                "--rules",
                "hebei-2016",
                "--from",
                "2015",
                "--to",
                "2016",
                "--level",
                "province",
            ])
            .arg(dir.path()),
    );
    assert!(change.contains("M0_ann"));
    // A county rule set is no index.
    let out = tuopin()
        .args(["mpi", "--rules", "county-2016", "--year", "2016"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn county_evaluation_shows_the_assessment_rates_with_their_intervals() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), "0");
    let s = succeed(
        tuopin()
            .args(["evaluate", "--rules", "county-2016", "--year", "2016"])
            .arg(dir.path()),
    );
    assert!(s.contains("95% Wilson intervals"), "{s}");
    for rate in ["mistaken_exit_rate", "missed_rate", "recognition_rate"] {
        assert!(s.contains(rate), "{rate}: {s}");
    }
    // Every county of the sample province has a row; each rate is a point
    // value with its interval and sample size, or `no sample`.
    let rows: Vec<&str> = s.lines().filter(|l| l.contains("| 13")).collect();
    assert!(!rows.is_empty(), "{s}");
    assert!(
        rows.iter()
            .all(|l| l.matches("n=").count() + l.matches("no sample").count() == 3),
        "{s}"
    );
    // A household rule set has no such table.
    let out = tuopin()
        .args(["evaluate", "--rules", "hebei-2016", "--year", "2016"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains("Wilson"));
}

/// `tuopin` with its cache root at `cache`.
fn tuopin_cached(cache: &std::path::Path) -> Command {
    let mut c = tuopin();
    c.env("TUOPIN_CACHE", cache);
    c
}

fn stdout_of(c: &mut Command) -> String {
    let out = c.output().unwrap();
    assert!(
        out.status.code().is_some_and(|c| c <= 1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_dataset_is_validated_once_into_its_default_store_and_reopened() {
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    generate(dir.path(), "0.01");
    let validate = |extra: &[&str]| {
        stdout_of(
            tuopin_cached(cache.path())
                .args(extra)
                .arg("validate")
                .arg(dir.path()),
        )
    };
    let first = validate(&[]);
    assert!(first.contains("validated into store"), "{first}");
    let second = validate(&[]);
    assert!(second.contains("reopened store"), "{second}");
    // The same summary and rejects either way, and in memory.
    let body = |s: &str| s.lines().skip(1).collect::<Vec<_>>().join("\n");
    assert_eq!(body(&first), body(&second));
    let in_memory = validate(&["--no-cache"]);
    assert!(in_memory.starts_with("in memory"), "{in_memory}");
    assert_eq!(body(&first), body(&in_memory));

    let list = stdout_of(tuopin_cached(cache.path()).args(["cache", "list"]));
    assert!(list.contains("(1 stores)"), "{list}");
    assert!(list.contains("current"), "{list}");
    let canonical = std::fs::canonicalize(dir.path()).unwrap();
    assert!(list.contains(&canonical.display().to_string()), "{list}");

    // A changed source makes the store stale, and the next open validates.
    let regions = dir.path().join("regions.parquet");
    let bytes = std::fs::read(&regions).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(&regions, &bytes).unwrap();
    let f = std::fs::File::options().write(true).open(&regions).unwrap();
    f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5))
        .unwrap();
    drop(f);
    let list = stdout_of(tuopin_cached(cache.path()).args(["cache", "list"]));
    assert!(list.contains("stale"), "{list}");
    assert!(validate(&[]).contains("validated into store"));

    // A second dataset gets its own store; clear DIR removes only its own.
    let other = tempfile::tempdir().unwrap();
    generate(other.path(), "0");
    stdout_of(
        tuopin_cached(cache.path())
            .arg("validate")
            .arg(other.path()),
    );
    let list = stdout_of(tuopin_cached(cache.path()).args(["cache", "list"]));
    assert!(list.contains("(2 stores)"), "{list}");
    let cleared = stdout_of(
        tuopin_cached(cache.path())
            .args(["cache", "clear"])
            .arg(other.path()),
    );
    assert!(cleared.contains("removed 1 stores"), "{cleared}");
    let cleared = stdout_of(tuopin_cached(cache.path()).args(["cache", "clear"]));
    assert!(cleared.contains("removed 1 stores"), "{cleared}");
    let list = stdout_of(tuopin_cached(cache.path()).args(["cache", "list"]));
    assert!(list.contains("(0 stores)"), "{list}");
}

#[test]
fn a_cache_root_inside_the_dataset_folder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), "0");
    let before: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    let out = tuopin_cached(&dir.path().join("cache"))
        .arg("validate")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("lies inside the dataset folder"), "{err}");
    let after: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(before.len(), after.len(), "nothing written");
}

#[test]
fn exports_read_with_an_encoding_and_a_columns_file() {
    let dir = tempfile::tempdir().unwrap();
    // Both files GB18030 (a forced encoding applies to every CSV file).
    let (regions, _, _) = encoding_rs::GB18030.encode(
        "区划代码,名称\n130000000000,河北省\n130100000000,石家庄市\n130102000000,甲县\n\
         130102001000,甲乡\n130102001001,一村\n",
    );
    std::fs::write(dir.path().join("regions.csv"), &*regions).unwrap();
    let (gbk, _, _) = encoding_rs::GB18030.encode(
        "家庭编号,年度,村代码,家庭人口数,贫困户属性,脱贫状态\nH1,2016,130102001001,2,普通户,未脱贫\n",
    );
    std::fs::write(dir.path().join("households.csv"), &*gbk).unwrap();
    let map = dir.path().join("map.toml");
    std::fs::write(
        &map,
        "[headers.households]\n\"家庭编号\" = \"household_id\"\n[labels.category]\n\"普通户\" = \"general\"\n",
    )
    .unwrap();
    // Without the map the household key is missing: a data error (1).
    let out = tuopin()
        .args(["--no-cache", "validate"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("household_id"));
    let shown = succeed(
        tuopin()
            .args(["--no-cache", "--encoding", "gb18030", "--columns"])
            .arg(&map)
            .arg("validate")
            .arg(dir.path()),
    );
    assert!(shown.contains("households"), "{shown}");
    // import: the same options, a Parquet dataset with English columns.
    let out = dir.path().join("dataset");
    succeed(
        tuopin()
            .args(["--no-cache", "--encoding", "gb18030", "--columns"])
            .arg(&map)
            .arg("import")
            .arg(dir.path())
            .arg("--out")
            .arg(&out),
    );
    for f in ["regions.parquet", "households.parquet", "rejects.parquet"] {
        assert!(out.join(f).is_file(), "{f}");
    }
    let shown = succeed(
        tuopin()
            .args(["--no-cache", "sql"])
            .arg(&out)
            .arg("SELECT household_id, category FROM households"),
    );
    assert!(shown.contains("H1") && shown.contains("general"), "{shown}");
    let refused = tuopin()
        .args(["--no-cache", "import"])
        .arg(dir.path())
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    let out = tuopin()
        .args(["--no-cache", "--encoding", "latin1", "validate"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "a bad --encoding is a usage error"
    );
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[headers.households]\n\"x\" = \"nope\"\n").unwrap();
    let out = tuopin()
        .args(["--no-cache", "--columns"])
        .arg(&bad)
        .arg("validate")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml") && err.contains("nope"), "{err}");
}

#[test]
fn quality_writes_its_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    generate(&data, "0");
    let out = dir.path().join("q.csv");
    succeed(
        tuopin()
            .args(["--no-cache", "quality"])
            .arg(&data)
            .args(["--year", "2016", "--out"])
            .arg(&out),
    );
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.starts_with("table,key,check,detail"), "{text}");
    let out = tuopin()
        .args(["--no-cache", "quality"])
        .arg(&data)
        .args(["--year", "2031"])
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("2031"));
}

#[test]
fn generate_writes_exports_that_read_like_the_dataset_and_results_go_to_excel() {
    let dir = tempfile::tempdir().unwrap();
    let parquet = dir.path().join("parquet");
    let export = dir.path().join("export");
    let common = ["--households", "300", "--seed", "5", "--year", "2016"];
    succeed(
        tuopin()
            .arg("generate")
            .args(common)
            .arg("--out")
            .arg(&parquet),
    );
    succeed(
        tuopin()
            .args(["--headers", "zh", "--encoding", "gb18030", "generate"])
            .args(common)
            .args(["--format", "csv", "--out"])
            .arg(&export),
    );
    let raw = std::fs::read(export.join("households.csv")).unwrap();
    assert!(std::str::from_utf8(&raw).is_err(), "GB18030");
    let (text, _, _) = encoding_rs::GB18030.decode(&raw);
    assert!(text.starts_with("户编号,"), "{}", &text[..40]);
    assert!(!dir.path().join("export.parquet-tmp").exists());
    // The export evaluates as the dataset it came from.
    let outcomes =
        |d: &std::path::Path| {
            stdout_of(tuopin().args(["--no-cache", "sql"]).arg(d).arg(
                "SELECT status, count(*) AS n FROM households GROUP BY status ORDER BY status",
            ))
        };
    assert_eq!(outcomes(&parquet), outcomes(&export));
    // Results as Excel, with Chinese headers on request.
    let xlsx = dir.path().join("outcomes.xlsx");
    succeed(
        tuopin()
            .args(["--no-cache", "--headers", "zh", "evaluate"])
            .arg(&export)
            .args(["--rules", "hebei-2016", "--year", "2016", "--out"])
            .arg(&xlsx),
    );
    use calamine::{open_workbook_auto, Reader};
    let mut book = open_workbook_auto(&xlsx).unwrap();
    let range = book.worksheet_range("outcomes").unwrap();
    let header: Vec<String> = range
        .rows()
        .next()
        .unwrap()
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert_eq!(header[0], "户编号", "{header:?}");
    assert!(header.iter().any(|h| h == "outcome"), "{header:?}");
    assert!(range.height() > 100);
}
