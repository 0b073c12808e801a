//! The HTML pages of DESIGN §10: region (with a village's households),
//! household card, rule-set comparison, data quality — each gathered from
//! [`Data`] and rendered by a template. Every table on a page can be had
//! as CSV from the same URL with `&table=<name>&format=csv`.

use std::collections::BTreeMap;

use minijinja::{context, Value};
use serde_json::{json, Map, Value as Json};
use tuopin::codes::RegionCode;
use tuopin::{Level, RuleSet};

use crate::data::{child_level, text, Region, Table};
use crate::error::{Result, WebError};
use crate::params::{self, sql_literal, Params};
use crate::render::{self, level_zh};
use crate::App;
use tuopin::sql::quote_identifier;

/// Households per page of a village's list.
pub const PER_PAGE: usize = 50;

/// What a page handler returns: HTML, or one of its tables as CSV.
pub enum Page {
    /// A rendered page.
    Html(String),
    /// A table of the page as CSV (`name` for the file name).
    Csv { name: String, text: String },
}

/// The tables of a page, kept so that `&format=csv` can return one.
#[derive(Default)]
struct Tables(BTreeMap<&'static str, Table>);

impl Tables {
    fn add(&mut self, name: &'static str, t: &Table) -> Vec<Value> {
        self.0.insert(name, t.clone());
        t.rows.iter().map(render::value).collect()
    }

    /// The CSV link of each table: `base&table=<name>&format=csv`, as
    /// HTML attribute text (`base` is built from checked, percent-encoded
    /// parts, so only `&` needs escaping).
    fn links(&self, base: &str) -> Value {
        let map: BTreeMap<String, Value> = self
            .0
            .keys()
            .map(|k| (k.to_string(), safe(&format!("{base}&table={k}&format=csv"))))
            .collect();
        Value::from(map)
    }

    /// The table `name` as CSV, if the page has it.
    fn csv(&self, params: &Params, page: &str) -> Result<Option<Page>> {
        if !params.csv()? {
            return Ok(None);
        }
        let name = params.get("table").unwrap_or_default();
        match self.0.get(name) {
            Some(t) => Ok(Some(Page::Csv {
                name: format!("{page}-{name}"),
                text: t.to_csv(),
            })),
            None => Err(WebError::bad(
                "table",
                format!(
                    "{:?} is not a table of this page ({})",
                    params::short(name),
                    self.0.keys().copied().collect::<Vec<_>>().join(", ")
                ),
            )),
        }
    }
}

/// The context every page shares: the year and rule-set selectors, the
/// breadcrumb, the stylesheet (inline in a report).
fn common(
    app: &App,
    path: &str,
    year: i32,
    rules: Option<&RuleSet>,
    breadcrumb: &[Region],
) -> Value {
    let data = &app.data;
    context! {
        home => safe(&format!("/region/{}?year={year}", data.province.code)),
        years => data.years.clone(),
        year => year,
        rule_names => data.rules.iter().map(|r| r.name.clone()).collect::<Vec<_>>(),
        rules_name => rules.map(|r| r.name.clone()),
        self_url => safe(path),
        self_path => safe(path),
        sep => "?",
        breadcrumb => crate::render::ser(breadcrumb),
        footer => format!("tuopin {} · 数据为建档立卡登记数据经校验后的结果 · 只读", env!("CARGO_PKG_VERSION")),
        report => app.report,
        inline_css => if app.report { Some(render::STYLE_CSS) } else { None },
    }
}

/// `/region/{code}`: the region page (and a village's households).
pub async fn region(app: &App, code: &str, params: &Params) -> Result<Page> {
    let data = &app.data;
    let code = params::region_code("code", code)?;
    let year = params.year(&data.years, data.latest_year())?;
    let rules = data.rule_set(params.get("rules"))?;
    let region = data
        .region(&code)
        .await?
        .ok_or_else(|| WebError::NotFound(format!("region {code}")))?;
    let path = format!("/region/{code}");
    let base = format!("{path}?year={year}&rules={}", enc(&rules.name));
    let mut tables = Tables::default();

    let headline = data.headline(year, &code).await?;
    let trend = data.trend(&code).await?;
    let chart = render::line_chart(
        &trend
            .rows
            .iter()
            .map(|r| {
                (
                    text(r, "year"),
                    r.get("poverty_incidence").and_then(Json::as_f64),
                )
            })
            .collect::<Vec<_>>(),
        460.0,
        220.0,
    );
    let children = data.children(year, &code).await?;
    let causes = data.causes_of(year, &code).await?;
    let causes_zh: Vec<Map<String, Json>> = causes
        .rows
        .iter()
        .map(|c| {
            let mut m = c.clone();
            let label = render::zh(
                "primary_cause".into(),
                Value::from(text(c, "primary_cause")),
            );
            m.insert("label".into(), Json::String(label));
            m
        })
        .collect();
    let (counts, failing) = data.outcome_summary(year, rules, &code).await?;
    let units = data.unit_exits(year, &code).await?;
    let funds = data.funds(year, &code).await?;
    let unit_zh = if matches!(code.level(), Level::Township | Level::Village) {
        "贫困村"
    } else {
        "贫困县"
    };

    // A village lists its households.
    let mut village = context! {};
    if code.level() == Level::Village {
        let status = params.choice("status", tuopin::schema::STATUSES)?;
        let outcome = params.choice("outcome", &["exit", "stay", "undetermined"])?;
        let page = params.page("page", 1)?;
        let filter = crate::data::HouseholdFilter {
            status: status.as_deref(),
            outcome: outcome.as_deref(),
            page,
            per_page: PER_PAGE,
        };
        let (households, total) = data.households(year, rules, &code, &filter).await?;
        let pages = total.div_ceil(PER_PAGE).max(1);
        let mut page_url = base.clone();
        if let Some(s) = &status {
            page_url.push_str(&format!("&status={s}"));
        }
        if let Some(o) = &outcome {
            page_url.push_str(&format!("&outcome={o}"));
        }
        village = context! {
            households => tables.add("households", &households),
            total => total, page => page, pages => pages, page_url => safe(&page_url),
            status => status, outcome => outcome,
            statuses => tuopin::schema::STATUSES.to_vec(),
            outcomes_all => ["exit", "stay", "undetermined"],
        };
    }
    let labels: BTreeMap<String, String> = rules
        .indicators
        .iter()
        .map(|i| (i.key.clone(), i.label.clone()))
        .collect();
    let page = context! {
        region => crate::render::ser(&region),
        level_zh => level_zh(&region.level),
        child_zh => child_level(code.level()).map(|l| level_zh(l.as_str())),
        headline => headline.as_ref().map(render::value),
        trend => tables.add("trend", &trend),
        chart => crate::render::ser(&chart),
        children => tables.add("children", &children),
        causes => tables.add("causes", &causes),
        causes_zh => causes_zh.iter().map(render::value).collect::<Vec<_>>(),
        outcome_counts => tables.add("outcomes", &counts),
        failing => tables.add("failing", &failing),
        labels => labels,
        rules_description => rules.description.clone(),
        units => tables.add("exits", &units),
        unit_zh => unit_zh,
        county_rates => units.columns.iter().any(|c| c.ends_with("_high")),
        rate_names => tuopin::ASSESSMENT_RATES,
        funds => tables.add("funds", &funds),
    };
    if let Some(csv) = tables.csv(params, &format!("region-{code}"))? {
        return Ok(csv);
    }
    let breadcrumb = data.breadcrumb(&code).await?;
    let ctx = context! {
        title => region.name.clone(),
        csv => if app.report { Value::from(BTreeMap::<String, String>::new()) } else { tables.links(&base) },
        ..minijinja::value::merge_maps([page, village, common(app, &path, year, Some(rules), &breadcrumb)])
    };
    Ok(Page::Html(
        app.env.get_template("region.html")?.render(ctx)?,
    ))
}

/// `/household/{id}`: the household card.
pub async fn household(app: &App, id: &str, params: &Params) -> Result<Page> {
    let data = &app.data;
    let id = params::household_id(id)?;
    let year = params.year(&data.years, data.latest_year())?;
    let rules = data.rule_set(params.get("rules"))?;
    let lit = sql_literal(&id);
    let history_sql = format!(
        "SELECT year, status, size, per_capita_net_income, poverty_line FROM household_facts \
         WHERE household_id = {lit} ORDER BY year"
    );
    // The card's lookups are independent: run them at once (each is a
    // filtered scan of a stored table, I/O- and decode-bound).
    let (facts, evaluation, flags, members, assistance, history) = tokio::try_join!(
        async {
            let df = data.engine.household_facts(year).await?;
            crate::data::table(df.filter(
                datafusion::prelude::col("household_id").eq(datafusion::prelude::lit(id.clone())),
            )?)
            .await
        },
        async {
            let outcomes = data.outcomes(year, rules).await?;
            data.query(&format!(
                "SELECT * FROM {outcomes} WHERE household_id = {lit}"
            ))
            .await
        },
        async {
            let audit = data.audit(year, rules).await?;
            data.query(&format!(
                "SELECT flag, detail FROM {audit} WHERE household_id = {lit} ORDER BY flag"
            ))
            .await
        },
        members_of(data, &lit, year),
        async {
            if !data.engine.has_table("assistance") {
                return Ok(Table::default());
            }
            data.household_rows(&format!(
                "SELECT helper_id, helper_type, measure FROM assistance \
                 WHERE household_id = {lit} AND year = {year} ORDER BY helper_id, measure"
            ))
            .await
        },
        data.household_rows(&history_sql),
    )?;
    let Some(household) = facts.rows.first().cloned() else {
        return Err(WebError::NotFound(format!("household {id} in {year}")));
    };
    let evaluation = evaluation.rows.first().cloned().unwrap_or_default();
    let indicators = Table {
        columns: ["key", "label", "points", "veto", "state"].map(String::from).to_vec(),
        rows: rules
            .indicators
            .iter()
            .map(|i| {
                let state = match evaluation.get(&format!("pass_{}", i.key)) {
                    Some(Json::Bool(true)) => "passed",
                    Some(Json::Bool(false)) => "failed",
                    _ => "unknown",
                };
                json!({"key": i.key, "label": i.label, "points": i.points, "veto": i.veto, "state": state})
                    .as_object()
                    .cloned()
                    .unwrap_or_default()
            })
            .collect(),
    };
    let path = format!("/household/{}", enc(&id));
    let base = format!("{path}?year={year}&rules={}", enc(&rules.name));
    let mut tables = Tables::default();
    let page = context! {
        household => render::value(&household),
        evaluation => render::value(&evaluation),
        pass_score => rules.pass_score,
        indicators => tables.add("indicators", &indicators),
        flags => tables.add("flags", &flags),
        members => tables.add("members", &members),
        assistance => tables.add("assistance", &assistance),
        history => tables.add("history", &history),
    };
    if let Some(csv) = tables.csv(params, &format!("household-{id}"))? {
        return Ok(csv);
    }
    let village = text(&household, "village_code");
    let breadcrumb = match RegionCode::parse(&village) {
        Ok(v) => data.breadcrumb(&v).await?,
        Err(_) => Vec::new(),
    };
    let ctx = context! {
        title => format!("户 {id}"),
        csv => tables.links(&base),
        ..minijinja::value::merge_maps([page, common(app, &path, year, Some(rules), &breadcrumb)])
    };
    Ok(Page::Html(
        app.env.get_template("household.html")?.render(ctx)?,
    ))
}

/// The members of household `lit` (an SQL literal) in `year`, ID numbers
/// masked; empty when the registry has no members table.
async fn members_of(data: &crate::data::Data, lit: &str, year: i32) -> Result<Table> {
    if !data.engine.has_table("members") {
        return Ok(Table::default());
    }
    let mut t = data
        .household_rows(&format!(
            "SELECT person_id, relation, sex, birth_year, id_number, in_school, health, labor, \
             migrant_months FROM members WHERE household_id = {lit} AND year = {year} \
             ORDER BY person_id"
        ))
        .await?;
    for r in &mut t.rows {
        if let Some(Json::String(n)) = r.get("id_number") {
            let masked = mask_id(n);
            r.insert("id_number".into(), Json::String(masked));
        }
    }
    Ok(t)
}

/// `/compare/{code}`: households that may exit under each rule set, per
/// child region, from one `evaluate_many` pass.
pub async fn compare(app: &App, code: &str, params: &Params) -> Result<Page> {
    let data = &app.data;
    let code = params::region_code("code", code)?;
    let year = params.year(&data.years, data.latest_year())?;
    let names = params.all("rules");
    let mut chosen: Vec<RuleSet> = Vec::new();
    for n in if names.is_empty() {
        data.rules.iter().map(|r| r.name.as_str()).collect()
    } else {
        names
    } {
        let r = data.rule_set(Some(n))?.clone();
        if !chosen.iter().any(|c| c.name == r.name) {
            chosen.push(r);
        }
    }
    let region = data
        .region(&code)
        .await?
        .ok_or_else(|| WebError::NotFound(format!("region {code}")))?;
    let group = child_level(code.level()).unwrap_or(Level::Village);
    let t = data.compared(year, &chosen).await?;
    let exit = |r: &RuleSet| quote_identifier(&format!("exit_{}", r.name));
    let sums: String = chosen
        .iter()
        .map(|r| {
            format!(
                ", sum(CASE WHEN {} = 'exit' THEN 1 ELSE 0 END) AS {}",
                quote_identifier(&format!("outcome_{}", r.name)),
                exit(r)
            )
        })
        .collect();
    let exits: String = chosen.iter().map(|r| format!(", c.{}", exit(r))).collect();
    // Each child region's name from the regions table, in the same plan.
    let sql = format!(
        "WITH c AS (SELECT {g} AS code, count(*) AS poor_households{sums} FROM {t} \
         WHERE {w} = {code} GROUP BY {g}) \
         SELECT c.code, coalesce(r.name, c.code) AS name, c.poor_households{exits} \
         FROM c LEFT JOIN regions r ON r.code = c.code ORDER BY c.code",
        g = group.code_column(),
        w = code.level().code_column(),
        code = sql_literal(code.as_str()),
    );
    let result = data.query(&sql).await?;
    let path = format!("/compare/{code}");
    let base = format!(
        "{path}?year={year}{}",
        chosen
            .iter()
            .map(|r| format!("&rules={}", enc(&r.name)))
            .collect::<String>()
    );
    let mut tables = Tables::default();
    let rows = tables.add("compare", &result);
    if let Some(csv) = tables.csv(params, &format!("compare-{code}"))? {
        return Ok(csv);
    }
    let breadcrumb = data.breadcrumb(&code).await?;
    let ctx = context! {
        title => format!("{} 规则对比", region.name),
        region => crate::render::ser(&region),
        child_zh => level_zh(group.as_str()),
        compared => chosen.iter().map(|r| r.name.clone()).collect::<Vec<_>>(),
        rows => rows,
        csv => tables.links(&base),
        ..common(app, &path, year, None, &breadcrumb)
    };
    Ok(Page::Html(
        app.env.get_template("compare.html")?.render(ctx)?,
    ))
}

/// `/quality`: the rejects ledger and the consistency warnings of a year,
/// by table and problem, with an example of each.
pub async fn quality(app: &App, params: &Params) -> Result<Page> {
    let data = &app.data;
    let year = params.year(&data.years, data.latest_year())?;
    let rejects = crate::data::table(
        data.engine
            .rejects()
            .await?
            .aggregate(
                vec![
                    datafusion::prelude::col("table"),
                    datafusion::prelude::col("column"),
                ],
                vec![
                    datafusion::functions_aggregate::count::count(datafusion::prelude::lit(1))
                        .alias("rows"),
                    datafusion::functions_aggregate::min_max::min(datafusion::prelude::col("row"))
                        .alias("example_row"),
                    datafusion::functions_aggregate::min_max::min(datafusion::prelude::col(
                        "problem",
                    ))
                    .alias("example"),
                ],
            )?
            .sort(vec![
                datafusion::prelude::col("rows").sort(false, true),
                datafusion::prelude::col("table").sort(true, true),
                datafusion::prelude::col("column").sort(true, true),
            ])?,
    )
    .await?;
    let reject_total: u64 = rejects
        .rows
        .iter()
        .filter_map(|r| r.get("rows").and_then(Json::as_u64))
        .sum();
    let q = data.quality(year).await?;
    let warnings = data
        .query(&format!(
            "SELECT \"table\", \"check\", count(*) AS n, min(\"key\") AS example_key, \
             min(detail) AS example FROM {q} GROUP BY \"table\", \"check\" \
             ORDER BY n DESC, \"check\""
        ))
        .await?;
    let mut tables = Tables::default();
    let page = context! {
        rejects => tables.add("rejects", &rejects),
        warnings => tables.add("warnings", &warnings),
        reject_total => reject_total,
    };
    if let Some(csv) = tables.csv(params, "quality")? {
        return Ok(csv);
    }
    let ctx = context! {
        title => "数据质量",
        csv => tables.links(&format!("/quality?year={year}")),
        ..minijinja::value::merge_maps([page, common(app, "/quality", year, None, &[])])
    };
    Ok(Page::Html(
        app.env.get_template("quality.html")?.render(ctx)?,
    ))
}

/// An error page.
pub fn error_page(app: &App, error: &WebError) -> String {
    let status = error.status();
    let heading = match status.as_u16() {
        400 => "参数有误",
        401 => "需要令牌",
        404 => "未找到",
        _ => "服务内部错误",
    };
    let ctx = context! {
        title => heading,
        status => status.as_u16(),
        heading => heading,
        message => error.public_message(),
        home => "/",
        footer => "tuopin",
    };
    app.env
        .get_template("error.html")
        .and_then(|t| t.render(ctx))
        .unwrap_or_else(|_| format!("{} {}", status.as_u16(), error.public_message()))
}

/// An ID number with all but its first 6 and last 4 characters as `*`.
pub fn mask_id(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    if chars.len() <= 10 {
        return "*".repeat(chars.len());
    }
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if i < 6 || i >= chars.len() - 4 {
                *c
            } else {
                '*'
            }
        })
        .collect()
}

/// A URL built from checked, percent-encoded parts as HTML attribute text
/// (only `&` needs escaping), so the template does not escape its `/`.
fn safe(url: &str) -> Value {
    Value::from_safe_string(url.replace('&', "&amp;"))
}

/// `text` percent-encoded for a query string.
pub fn enc(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_numbers_are_masked() {
        assert_eq!(mask_id("130102199001011234"), "130102********1234");
        assert_eq!(mask_id("12345"), "*****");
    }
}
