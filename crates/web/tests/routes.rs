//! Every route of the dashboard (DESIGN §10) against a generated registry:
//! status, content type, security headers, and figures equal to the
//! library's results for the same region and year; malformed requests
//! give 400/404 pages naming the parameter, never a 500.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use serde_json::Value;
use tokio::sync::OnceCell;
use tower::ServiceExt;
use tuopin::{Dataset, Engine, Level, RuleSet};
use tuopin_web::{App, ServeOptions};

/// One registry and app for the whole binary (generating is the slow part).
async fn app() -> Arc<App> {
    static APP: OnceCell<Arc<App>> = OnceCell::const_new();
    APP.get_or_init(|| async {
        let tables = tuopin::synth::generate_tables(&tuopin::GenerateOptions {
            households: 3000,
            seed: 9,
            faults: 0.01,
            ..Default::default()
        })
        .unwrap();
        let engine = Engine::new(Dataset::from_batches(tables).await.unwrap())
            .await
            .unwrap();
        Arc::new(App::new(Arc::new(engine), Vec::new(), None).await.unwrap())
    })
    .await
    .clone()
}

struct Got {
    status: StatusCode,
    content_type: String,
    headers: axum::http::HeaderMap,
    body: String,
}

async fn get_with(app: Arc<App>, uri: &str, headers: &[(&str, &str)]) -> Got {
    let mut req = Request::builder().uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let response = tuopin_web::router(app)
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    Got {
        status,
        content_type,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

async fn get(uri: &str) -> Got {
    get_with(app().await, uri, &[]).await
}

/// The rows of a library result as JSON objects.
async fn library(df: datafusion::prelude::DataFrame) -> Vec<serde_json::Map<String, Value>> {
    tuopin_web::data::rows(df.collect().await.unwrap()).unwrap()
}

/// `Engine::metrics(year, level)` of the app's registry as JSON objects.
async fn metrics(a: &App, year: i32, level: Level) -> Vec<serde_json::Map<String, Value>> {
    library(a.data.engine.metrics(year, Some(level)).await.unwrap()).await
}

/// An API answer's rows.
fn json_rows(g: &Got) -> Vec<serde_json::Map<String, Value>> {
    serde_json::from_str(&g.body).unwrap()
}

async fn ok_html(uri: &str) -> String {
    let g = get(uri).await;
    assert_eq!(g.status, StatusCode::OK, "{uri}: {}", g.body);
    assert_eq!(g.content_type, "text/html; charset=utf-8", "{uri}");
    assert_eq!(
        g.headers.get(header::CONTENT_SECURITY_POLICY).unwrap(),
        "default-src 'self'"
    );
    assert!(!g.body.contains("<script"), "{uri}: no script needed");
    g.body
}

fn province(app: &App) -> String {
    app.data.province.code.clone()
}

#[tokio::test]
async fn health_home_and_assets() {
    let g = get("/healthz").await;
    assert_eq!((g.status, g.body.as_str()), (StatusCode::OK, "ok"));
    let a = app().await;
    let g = get("/").await;
    assert_eq!(g.status, StatusCode::SEE_OTHER);
    let to = g.headers.get(header::LOCATION).unwrap().to_str().unwrap();
    assert_eq!(to, format!("/region/{}?year=2020", province(&a)));
    let g = get("/assets/style.css").await;
    assert_eq!(g.status, StatusCode::OK);
    assert!(g.content_type.starts_with("text/css"));
    for icon in ["/favicon.svg", "/favicon.ico"] {
        let g = get(icon).await;
        assert_eq!(
            (g.status, g.content_type.as_str()),
            (StatusCode::OK, "image/svg+xml")
        );
        assert!(g.body.starts_with("<svg"));
    }
}

#[tokio::test]
async fn the_province_page_shows_the_library_figures() {
    let a = app().await;
    let p = province(&a);
    let html = ok_html(&format!("/region/{p}?year=2016")).await;
    let m = metrics(&a, 2016, Level::Province).await;
    let row = &m[0];
    assert!(html.contains(&a.data.province.name));
    for key in [
        "registered_households",
        "poor_households",
        "poor_population",
    ] {
        let v = row[key].to_string();
        assert!(html.contains(&format!("<b>{v}</b>")), "{key} = {v}");
    }
    // Every city is ranked, linked, with its incidence as in metrics.
    let cities = metrics(&a, 2016, Level::City).await;
    assert!(!cities.is_empty());
    for c in &cities {
        let code = c["code"].as_str().unwrap();
        assert!(
            html.contains(&format!(
                "href=\"/region/{code}?year=2016&amp;rules=hebei-2016\""
            )),
            "{code}"
        );
        let pct = c["poverty_incidence"]
            .as_f64()
            .map(|v| format!("{}%", (v * 100.0 * 100.0).round() / 100.0));
        if let Some(pct) = pct {
            assert!(html.contains(&pct), "{code} {pct}");
        }
    }
    // Trend over all years, causes, outcomes, breadcrumb, CSV links.
    for y in 2014..=2020 {
        assert!(html.contains(&format!("<td>{y}</td>")), "{y}");
    }
    assert!(html.contains("<polyline"));
    assert!(html.contains("因病"));
    assert!(html.contains("table=children&amp;format=csv"));
}

#[tokio::test]
async fn a_page_table_as_csv_has_the_numbers_of_the_table() {
    let a = app().await;
    let p = province(&a);
    let g = get(&format!("/region/{p}?year=2016&table=children&format=csv")).await;
    assert_eq!(g.status, StatusCode::OK);
    assert!(g.content_type.starts_with("text/csv"));
    let cities = metrics(&a, 2016, Level::City).await;
    let lines: Vec<&str> = g.body.lines().collect();
    assert_eq!(lines.len(), cities.len() + 1);
    assert!(lines[0].starts_with("code,name,poverty_incidence"));
    for c in &cities {
        let code = c["code"].as_str().unwrap();
        let line = lines.iter().find(|l| l.starts_with(code)).unwrap();
        assert!(
            line.contains(&format!(",{},", c["registered_households"])),
            "{line}"
        );
    }
    let g = get(&format!("/region/{p}?year=2016&table=nope&format=csv")).await;
    assert_eq!(g.status, StatusCode::BAD_REQUEST);
    assert!(g.body.contains("`table`"));
}

#[tokio::test]
async fn api_metrics_equals_the_library_row_for_row() {
    let a = app().await;
    let g = get("/api/metrics?year=2016&level=county").await;
    assert_eq!(g.status, StatusCode::OK, "{}", g.body);
    assert_eq!(g.content_type, "application/json");
    let got = json_rows(&g);
    let want = metrics(&a, 2016, Level::County).await;
    assert_eq!(got, want);
    // Within a parent, and as CSV.
    let city = want[0]["code"].as_str().unwrap()[..4].to_string() + "00000000";
    let g = get(&format!(
        "/api/metrics?year=2016&level=county&parent={city}&format=csv"
    ))
    .await;
    assert!(g.content_type.starts_with("text/csv"));
    let n = want
        .iter()
        .filter(|r| r["code"].as_str().unwrap().starts_with(&city[..4]))
        .count();
    assert_eq!(g.body.lines().count(), n + 1);
    let g = get("/api/metrics?year=2016&level=district").await;
    assert_eq!(g.status, StatusCode::BAD_REQUEST);
    assert!(g.body.contains("`level`") && g.content_type == "application/json");
}

#[tokio::test]
async fn api_evaluate_and_mpi_equal_the_library() {
    let a = app().await;
    let hebei = RuleSet::builtin("hebei-2016").unwrap();
    let all = library(a.data.engine.evaluate(&hebei, 2016).await.unwrap()).await;
    let village = all[0]["village_code"].as_str().unwrap().to_string();
    let g = get(&format!(
        "/api/evaluate?year=2016&rules=hebei-2016&village={village}"
    ))
    .await;
    assert_eq!(g.status, StatusCode::OK, "{}", g.body);
    let got = json_rows(&g);
    let mut want: Vec<_> = all
        .into_iter()
        .filter(|r| r["village_code"] == village.as_str())
        .collect();
    let mut got = got;
    let key = |r: &serde_json::Map<String, Value>| r["household_id"].as_str().unwrap().to_string();
    want.sort_by_key(key);
    got.sort_by_key(key);
    assert_eq!(got, want);
    let g = get("/api/mpi?year=2016&level=city&rules=hebei-2016&k=0.33").await;
    assert_eq!(g.status, StatusCode::OK, "{}", g.body);
    let got = json_rows(&g);
    let want = library(
        a.data
            .engine
            .mpi(&hebei, 2016, Some(Level::City), &[0.33])
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(got, want);
    let g = get("/api/mpi?year=2016&k=2").await;
    assert_eq!(g.status, StatusCode::BAD_REQUEST);
    assert!(g.body.contains("`k`"));
}

#[tokio::test]
async fn drill_down_to_a_village_and_a_household() {
    let a = app().await;
    let hebei = RuleSet::builtin("hebei-2016").unwrap();
    let outcomes = library(a.data.engine.evaluate(&hebei, 2016).await.unwrap()).await;
    let village = outcomes[0]["village_code"].as_str().unwrap().to_string();
    let html = ok_html(&format!("/region/{village}?year=2016")).await;
    let n = outcomes
        .iter()
        .filter(|r| r["village_code"] == village.as_str())
        .count();
    assert!(html.contains(&format!("农户 ({n} 户)")), "{n}");
    // Breadcrumb from the province.
    assert!(html.contains(&format!("href=\"/region/{}?year=2016", province(&a))));
    let id = outcomes
        .iter()
        .find(|r| r["village_code"] == village.as_str())
        .unwrap()["household_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(html.contains(&format!("/household/{id}?year=2016")));
    // Filters.
    let html = ok_html(&format!(
        "/region/{village}?year=2016&status=exited&outcome=exit"
    ))
    .await;
    assert!(html.contains("农户 ("));
    let g = get(&format!("/region/{village}?year=2016&status=rich")).await;
    assert_eq!(g.status, StatusCode::BAD_REQUEST);
    assert!(g.body.contains("`status`"));

    let card = ok_html(&format!("/household/{id}?year=2016&rules=hebei-2016")).await;
    let row = outcomes
        .iter()
        .find(|r| r["household_id"] == id.as_str())
        .unwrap();
    assert!(
        card.contains(&format!("得分 <b>{}</b>", row["score"])),
        "score {}",
        row["score"]
    );
    for i in &hebei.indicators {
        assert!(card.contains(&i.label), "{}", i.key);
    }
    // Members' ID numbers are masked: no 18-character number appears.
    let ids = library(
        a.data
            .engine
            .sql(&format!(
                "SELECT id_number FROM members WHERE household_id = '{id}' AND year = 2016"
            ))
            .await
            .unwrap(),
    )
    .await;
    for r in ids {
        if let Some(n) = r["id_number"].as_str() {
            assert!(!card.contains(n), "unmasked {n}");
            assert!(card.contains(&format!("{}********{}", &n[..6], &n[14..])));
        }
    }
    let g = get("/household/NOPE?year=2016").await;
    assert_eq!(g.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn compare_and_quality_pages() {
    let a = app().await;
    let p = province(&a);
    let html = ok_html(&format!(
        "/compare/{p}?year=2016&rules=hebei-2016&rules=national-2016"
    ))
    .await;
    assert!(html.contains("<th>hebei-2016</th>") && html.contains("<th>national-2016</th>"));
    let g = get(&format!(
        "/compare/{p}?year=2016&rules=hebei-2016&table=compare&format=csv"
    ))
    .await;
    assert!(
        g.body
            .starts_with("code,name,poor_households,exit_hebei-2016"),
        "{}",
        g.body
    );
    let html = ok_html("/quality?year=2016").await;
    let rejects = a.data.engine.dataset().reject_count();
    assert!(rejects > 0);
    assert!(
        html.contains(&format!("加载时拒收的行 ({rejects})")),
        "{rejects}"
    );
}

#[tokio::test]
async fn malformed_requests_are_400_or_404_pages_naming_the_parameter() {
    let a = app().await;
    let p = province(&a);
    let long = "x".repeat(10_000);
    let many = (0..200)
        .map(|i| format!("p{i}=1"))
        .collect::<Vec<_>>()
        .join("&");
    for (uri, status, names) in [
        ("/region/13".to_string(), 400, "`code`"),
        ("/region/..%2F..%2Fetc%2Fpasswd".to_string(), 400, "`code`"),
        ("/region/abcdefghijkl".to_string(), 400, "`code`"),
        ("/region/990000000000".to_string(), 404, "990000000000"),
        (format!("/region/{p}?year=abc"), 400, "`year`"),
        (format!("/region/{p}?year=2030"), 400, "`year`"),
        (
            format!("/region/{p}?year=99999999999999999999"),
            400,
            "`year`",
        ),
        (format!("/region/{p}?rules=nope"), 400, "`rules`"),
        (format!("/region/{p}?rules=%27%3B%20DROP"), 400, "`rules`"),
        (format!("/region/{p}?{long}"), 400, "`query`"),
        (format!("/region/{p}?{many}"), 400, "`query`"),
        (format!("/region/{p}?page=0"), 200, ""),
        (
            "/household/%00?year=2016".to_string(),
            400,
            "`household_id`",
        ),
        ("/household/x'%20OR%20'1'='1?year=2016".to_string(), 404, ""),
        ("/nowhere".to_string(), 404, ""),
        ("/api/metrics?year=x".to_string(), 400, "`year`"),
        ("/compare/1?year=2016".to_string(), 400, "`code`"),
        ("/quality?year=1800".to_string(), 400, "`year`"),
    ] {
        let g = get(&uri).await;
        assert_eq!(
            g.status.as_u16(),
            status,
            "{uri}: {}",
            &g.body[..g.body.len().min(300)]
        );
        assert!(g.body.contains(names), "{uri}: {names}");
        assert!(!g.body.contains("panicked") && !g.body.contains("backtrace"));
        assert_eq!(
            g.headers.get(header::CONTENT_SECURITY_POLICY).unwrap(),
            "default-src 'self'"
        );
    }
}

#[tokio::test]
async fn a_token_is_needed_when_set_and_a_public_address_needs_one() {
    let base = app().await;
    let engine = base.data.engine.clone();
    let secured = Arc::new(
        App::new(engine, Vec::new(), Some("s3cret".into()))
            .await
            .unwrap(),
    );
    let g = get_with(secured.clone(), "/healthz", &[]).await;
    assert_eq!(g.status, StatusCode::UNAUTHORIZED);
    let g = get_with(
        secured.clone(),
        "/healthz",
        &[("authorization", "Bearer wrong")],
    )
    .await;
    assert_eq!(g.status, StatusCode::UNAUTHORIZED);
    let g = get_with(
        secured.clone(),
        "/healthz",
        &[("authorization", "Bearer s3cret")],
    )
    .await;
    assert_eq!(g.status, StatusCode::OK);
    let g = get_with(secured.clone(), "/login?token=s3cret", &[]).await;
    assert_eq!(g.status, StatusCode::SEE_OTHER);
    let cookie = g
        .headers
        .get(header::SET_COOKIE)
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(cookie.contains("HttpOnly"));
    let pair = cookie.split(';').next().unwrap().to_string();
    let g = get_with(
        secured.clone(),
        "/api/metrics?year=2016&level=city",
        &[("cookie", &pair)],
    )
    .await;
    assert_eq!(g.status, StatusCode::OK);
    let g = get_with(secured, "/login?token=nope", &[]).await;
    assert_eq!(g.status, StatusCode::UNAUTHORIZED);

    let open = ServeOptions {
        bind: "0.0.0.0:8080".parse().unwrap(),
        token: None,
    };
    assert!(tuopin_web::check_bind(&open)
        .unwrap_err()
        .to_string()
        .contains("--token"));
    let with = ServeOptions {
        token: Some("t".into()),
        ..open
    };
    assert!(tuopin_web::check_bind(&with).is_ok());
    let local = ServeOptions {
        bind: "127.0.0.1:8080".parse().unwrap(),
        token: None,
    };
    assert!(tuopin_web::check_bind(&local).is_ok());
}

#[tokio::test]
async fn the_report_is_one_self_contained_file() {
    let a = app().await;
    let html = tuopin_web::report(a.data.engine.clone(), 2016, None, None)
        .await
        .unwrap();
    assert!(html.contains("<style>") && html.contains("<svg"));
    assert!(
        !html.contains("<script") && !html.contains("href=\"/") && !html.contains("stylesheet")
    );
    let m = metrics(&a, 2016, Level::Province).await;
    assert!(html.contains(&format!("<b>{}</b>", m[0]["registered_households"])));
    let city = metrics(&a, 2016, Level::City).await;
    assert!(html.contains(city[0]["name"].as_str().unwrap()));
}
