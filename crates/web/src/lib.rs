//! The command dashboard (攻坚指挥) of tuopin — `tuopin serve` — and the
//! self-contained HTML report — `tuopin report` (DESIGN §10).
//!
//! A read-only web application over one validated registry: an axum
//! router on the caller's tokio runtime, server-rendered pages from
//! templates compiled into the binary (`templates/`, minijinja), charts as
//! inline SVG with their numbers in a table beside them, and a JSON/CSV
//! API. Every figure comes from an [`tuopin::Engine`] call ([`data`]).
//!
//! - [`params`]: every request value parsed and checked (400 naming it);
//! - [`data`]: the engine calls behind the pages, cached per year and
//!   rule set;
//! - [`pages`], [`api`]: the pages and the API;
//! - [`render`]: templates, number formats, Chinese labels, chart geometry;
//! - this module: the router, the token and the security headers,
//!   [`serve`] and [`report`].
//!
//! ```no_run
//! # async fn run(engine: tuopin::Engine) -> tuopin_web::Result<()> {
//! use std::sync::Arc;
//! let app = tuopin_web::App::new(Arc::new(engine), Vec::new(), None).await?;
//! let options = tuopin_web::ServeOptions { bind: "127.0.0.1:8080".parse().unwrap(), token: None };
//! tuopin_web::serve(Arc::new(app), &options, async {}).await?;
//! # Ok(()) }
//! ```

pub mod api;
pub mod data;
pub mod error;
pub mod pages;
pub mod params;
pub mod render;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::FutureExt;
use tuopin::{Engine, RuleSet};

pub use error::{Result, WebError};

use crate::data::Data;
use crate::pages::Page;
use crate::params::Params;

/// The name of the session cookie set by `/login`.
pub const COOKIE: &str = "tuopin_token";
/// The Content-Security-Policy of every response: nothing but this server.
pub const CSP: &str = "default-src 'self'";

/// The application: the data, the templates, the token.
pub struct App {
    /// The figures.
    pub data: Data,
    /// The templates.
    pub env: minijinja::Environment<'static>,
    /// The token every request must carry, if any.
    pub token: Option<String>,
    /// Rendering a self-contained report (inline CSS, no links).
    pub report: bool,
}

impl App {
    /// An application over `engine` offering the household rule sets
    /// `rules` (empty: the built-in ones).
    pub async fn new(
        engine: Arc<Engine>,
        rules: Vec<RuleSet>,
        token: Option<String>,
    ) -> Result<App> {
        Ok(App {
            data: Data::new(engine, rules).await?,
            env: render::environment(),
            token,
            report: false,
        })
    }
}

/// Where and how [`serve`] listens.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The address (127.0.0.1:8080 by default in the CLI).
    pub bind: SocketAddr,
    /// The token requests must carry; required for a non-loopback address.
    pub token: Option<String>,
}

/// Refuse a non-loopback address without a token (DESIGN §10).
pub fn check_bind(options: &ServeOptions) -> Result<()> {
    if !options.bind.ip().is_loopback() && options.token.as_deref().is_none_or(str::is_empty) {
        return Err(WebError::Serve(format!(
            "--bind {} is reachable from other machines: give --token as well \
             (or bind 127.0.0.1)",
            options.bind
        )));
    }
    Ok(())
}

/// The router of every route of DESIGN §10.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/region/{code}", get(region))
        .route("/household/{id}", get(household))
        .route("/compare/{code}", get(compare))
        .route("/quality", get(quality))
        .route("/api/metrics", get(api_metrics))
        .route("/api/evaluate", get(api_evaluate))
        .route("/api/mpi", get(api_mpi))
        .route("/healthz", get(|| async { "ok" }))
        .route("/login", get(login))
        .route("/assets/style.css", get(style))
        .route("/favicon.svg", get(icon))
        .route("/favicon.ico", get(icon))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(app.clone(), guard))
        .with_state(app)
}

/// Serve `app` on `options.bind` until `shutdown` completes.
pub async fn serve(
    app: Arc<App>,
    options: &ServeOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    check_bind(options)?;
    let listener = tokio::net::TcpListener::bind(options.bind)
        .await
        .map_err(|e| WebError::Serve(format!("cannot listen on {}: {e}", options.bind)))?;
    axum::serve(listener, router(app))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| WebError::Serve(e.to_string()))
}

/// The region page of `region` (default: the province) in `year` under
/// `rules` as one self-contained HTML file: CSS inline, charts as inline
/// SVG, no script, no links to the server.
pub async fn report(
    engine: Arc<Engine>,
    year: i32,
    region: Option<&str>,
    rules: Option<RuleSet>,
) -> Result<String> {
    let mut app = App::new(engine, rules.into_iter().collect(), None).await?;
    app.report = true;
    let code = match region {
        Some(c) => c.to_string(),
        None => app.data.province.code.clone(),
    };
    let params = Params::parse(Some(&format!("year={year}")))?;
    match pages::region(&app, &code, &params).await? {
        Page::Html(html) => Ok(html),
        Page::Csv { .. } => Err(WebError::Serve("a report is a page".into())),
    }
}

/// Check the token (when one is set), then add the security headers to
/// whatever the route answered; a panic inside becomes a 500 page.
async fn guard(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    if let Some(token) = &app.token {
        if req.uri().path() != "/login" && !authorized(&req, token) {
            return error_response(
                &app,
                &WebError::Unauthorized,
                req.uri().path().starts_with("/api/"),
            );
        }
    }
    let api = req.uri().path().starts_with("/api/");
    let mut response = match std::panic::AssertUnwindSafe(next.run(req))
        .catch_unwind()
        .await
    {
        Ok(r) => r,
        Err(_) => error_response(&app, &WebError::Serve("the page failed".into()), api),
    };
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// Whether `req` carries `token` (bearer header or session cookie),
/// compared in constant time.
fn authorized(req: &Request, token: &str) -> bool {
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let cookie = req
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| {
            kv.trim()
                .strip_prefix(&format!("{COOKIE}="))
                .map(str::to_string)
        })
        .collect::<Vec<_>>();
    bearer.is_some_and(|b| same(b, token)) || cookie.iter().any(|c| same(c, token))
}

/// Constant-time equality of two strings.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

async fn login(State(app): State<Arc<App>>, RawQuery(q): RawQuery) -> Response {
    let given = Params::parse(q.as_deref())
        .ok()
        .and_then(|p| p.get("token").map(str::to_string));
    match (&app.token, given) {
        (Some(t), Some(g)) if same(t, &g) => {
            let cookie = format!("{COOKIE}={t}; HttpOnly; SameSite=Strict; Path=/");
            let mut r = redirect("/");
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        (None, _) => redirect("/"),
        _ => error_response(&app, &WebError::Unauthorized, false),
    }
}

fn redirect(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

async fn home(State(app): State<Arc<App>>) -> Response {
    redirect(&format!(
        "/region/{}?year={}",
        app.data.province.code,
        app.data.latest_year()
    ))
}

/// The path segment of a request (`name` in the 400 page when it cannot
/// be decoded).
fn segment(
    path: std::result::Result<Path<String>, axum::extract::rejection::PathRejection>,
    name: &str,
) -> Result<String> {
    path.map(|Path(s)| s)
        .map_err(|e| WebError::bad(name, e.body_text()))
}

async fn region(
    State(app): State<Arc<App>>,
    path: std::result::Result<Path<String>, axum::extract::rejection::PathRejection>,
    RawQuery(q): RawQuery,
) -> Response {
    let r =
        async { pages::region(&app, &segment(path, "code")?, &Params::parse(q.as_deref())?).await }
            .await;
    page_response(&app, r)
}

async fn household(
    State(app): State<Arc<App>>,
    path: std::result::Result<Path<String>, axum::extract::rejection::PathRejection>,
    RawQuery(q): RawQuery,
) -> Response {
    let r = async {
        pages::household(
            &app,
            &segment(path, "household_id")?,
            &Params::parse(q.as_deref())?,
        )
        .await
    }
    .await;
    page_response(&app, r)
}

async fn compare(
    State(app): State<Arc<App>>,
    path: std::result::Result<Path<String>, axum::extract::rejection::PathRejection>,
    RawQuery(q): RawQuery,
) -> Response {
    let r = async {
        pages::compare(&app, &segment(path, "code")?, &Params::parse(q.as_deref())?).await
    }
    .await;
    page_response(&app, r)
}

async fn quality(State(app): State<Arc<App>>, RawQuery(q): RawQuery) -> Response {
    let r = async { pages::quality(&app, &Params::parse(q.as_deref())?).await }.await;
    page_response(&app, r)
}

async fn api_metrics(State(app): State<Arc<App>>, RawQuery(q): RawQuery) -> Response {
    let r = async { api::metrics(&app, &Params::parse(q.as_deref())?).await }.await;
    api_response(&app, r)
}

async fn api_evaluate(State(app): State<Arc<App>>, RawQuery(q): RawQuery) -> Response {
    let r = async { api::evaluate(&app, &Params::parse(q.as_deref())?).await }.await;
    api_response(&app, r)
}

async fn api_mpi(State(app): State<Arc<App>>, RawQuery(q): RawQuery) -> Response {
    let r = async { api::mpi(&app, &Params::parse(q.as_deref())?).await }.await;
    api_response(&app, r)
}

async fn style() -> Response {
    typed("text/css; charset=utf-8", render::STYLE_CSS.to_string())
}

async fn icon() -> Response {
    typed("image/svg+xml", render::ICON_SVG.to_string())
}

async fn not_found(State(app): State<Arc<App>>, req: Request) -> Response {
    let api = req.uri().path().starts_with("/api/");
    let path: String = req.uri().path().chars().take(80).collect();
    error_response(&app, &WebError::NotFound(format!("no page {path}")), api)
}

fn typed(content_type: &'static str, body: String) -> Response {
    let mut r = Response::new(Body::from(body));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn page_response(app: &App, r: Result<Page>) -> Response {
    match r {
        Ok(Page::Html(html)) => typed("text/html; charset=utf-8", html),
        Ok(Page::Csv { name, text }) => csv_response(&name, text),
        Err(e) => error_response(app, &e, false),
    }
}

fn api_response(app: &App, r: Result<api::Answer>) -> Response {
    match r {
        Ok(api::Answer::Json(text)) => typed("application/json", text),
        Ok(api::Answer::Csv(text)) => csv_response("result", text),
        Err(e) => error_response(app, &e, true),
    }
}

fn csv_response(name: &str, text: String) -> Response {
    let mut r = typed("text/csv; charset=utf-8", text);
    let file: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if let Ok(v) = HeaderValue::from_str(&format!("inline; filename=\"{file}.csv\"")) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

/// An error as a page (or, for the API, as `{"error": …}`).
fn error_response(app: &App, e: &WebError, api: bool) -> Response {
    let mut r = if api {
        typed(
            "application/json",
            serde_json::json!({ "error": e.public_message() }).to_string(),
        )
    } else {
        typed("text/html; charset=utf-8", pages::error_page(app, e))
    };
    *r.status_mut() = e.status();
    r
}
