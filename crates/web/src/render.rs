//! The templates (files under `crates/web/templates`, compiled into the
//! binary) and what they are given: number formats, Chinese labels for
//! tuopin's values, and the geometry of the SVG line chart.

use minijinja::{Environment, Value};
use serde_json::{Map, Value as Json};
use tuopin::ColumnMap;

/// The stylesheet, served at `/assets/style.css` and inlined in reports.
pub const STYLE_CSS: &str = include_str!("../assets/style.css");
/// The icon, served at `/favicon.svg` (and `/favicon.ico`).
pub const ICON_SVG: &str = include_str!("../assets/icon.svg");

/// The template environment with every page and helper.
pub fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    for (name, source) in [
        ("base.html", include_str!("../templates/base.html")),
        ("macros.html", include_str!("../templates/macros.html")),
        ("region.html", include_str!("../templates/region.html")),
        (
            "household.html",
            include_str!("../templates/household.html"),
        ),
        ("compare.html", include_str!("../templates/compare.html")),
        ("quality.html", include_str!("../templates/quality.html")),
        ("error.html", include_str!("../templates/error.html")),
    ] {
        // The templates are part of the crate and tested; a broken one is
        // reported when a page using it renders.
        let _ = env.add_template(name, source);
    }
    env.add_function("money", money);
    env.add_function("zh", zh);
    env.add_function("yesno", yesno);
    env.add_function("flag_zh", flag_zh);
    env
}

/// A number with thousands separators, no decimals; `—` for null.
pub fn money(v: Value) -> String {
    let Some(f) = as_f64(&v) else {
        return "—".into();
    };
    if !f.is_finite() {
        return "—".into();
    }
    let n = f.round() as i64;
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        out.insert(0, '-');
    }
    out
}

fn as_f64(v: &Value) -> Option<f64> {
    if v.is_none() || v.is_undefined() {
        return None;
    }
    f64::try_from(v.clone()).ok()
}

/// 是 / 否 / — for a boolean.
pub fn yesno(v: Value) -> &'static str {
    if v.is_none() || v.is_undefined() {
        "—"
    } else if v.is_true() {
        "是"
    } else {
        "否"
    }
}

/// The Chinese label of tuopin's `value` in `column` (the export labels of
/// `columns/zh.toml`, and the outcomes); the value itself when it has none.
pub fn zh(column: String, value: Value) -> String {
    if value.is_none() || value.is_undefined() {
        return "—".into();
    }
    let text = value
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| value.to_string());
    if column == "sector" {
        return match text.as_str() {
            "industry" => "产业",
            "infrastructure" => "基础设施",
            "housing" => "住房",
            "education" => "教育",
            "health" => "健康",
            "relocation" => "易地搬迁",
            "other" => "其他",
            other => other,
        }
        .to_string();
    }
    if column == "outcome" {
        return match text.as_str() {
            "exit" => "可退出",
            "stay" => "暂不退出",
            "undetermined" => "待定",
            other => other,
        }
        .to_string();
    }
    ColumnMap::builtin()
        .exported_label(&column, &text)
        .map(str::to_string)
        .unwrap_or(text)
}

/// The Chinese name of an audit flag.
pub fn flag_zh(flag: String) -> String {
    match flag.as_str() {
        "approved_not_eligible" => "县审定但测算不可退出(错退风险)",
        "eligible_not_proposed" => "可退出但未拟退出",
        "steps_out_of_order" => "程序步骤缺失或日期顺序不对",
        "late_approval" => "县审定晚于当年12月31日",
        "exited_without_approval" => "已脱贫但无县审定",
        other => other,
    }
    .to_string()
}

/// The Chinese name of a level.
pub fn level_zh(level: &str) -> &'static str {
    match level {
        "province" => "省",
        "city" => "市",
        "county" => "县",
        "township" => "乡镇",
        _ => "村",
    }
}

/// A line chart of `values` (label, value) in a `width` × `height` box:
/// the polyline, the dots and four horizontal ticks (values are shares,
/// labelled as percentages).
pub fn line_chart(values: &[(String, Option<f64>)], width: f64, height: f64) -> Json {
    let (left, right, top, bottom) = (40.0, 24.0, 10.0, 24.0);
    let max = values
        .iter()
        .filter_map(|(_, v)| *v)
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    let max = if max > 0.0 { max * 1.1 } else { 1.0 };
    let n = values.len().max(1);
    let step = if n > 1 {
        (width - left - right) / (n - 1) as f64
    } else {
        0.0
    };
    let y_of = |v: f64| top + (height - top - bottom) * (1.0 - v / max);
    let mut points = Vec::new();
    let mut dots = Vec::new();
    for (i, (label, v)) in values.iter().enumerate() {
        let x = left
            + step * i as f64
            + if n == 1 {
                (width - left - right) / 2.0
            } else {
                0.0
            };
        if let Some(v) = v.filter(|v| v.is_finite()) {
            let y = y_of(v);
            points.push(format!("{x:.1},{y:.1}"));
            dots.push(serde_json::json!({"x": round1(x), "y": round1(y), "label": label}));
        } else {
            dots.push(
                serde_json::json!({"x": round1(x), "y": round1(height - bottom), "label": label}),
            );
        }
    }
    let ticks: Vec<Json> = (0..4)
        .map(|i| {
            let v = max * i as f64 / 3.0;
            serde_json::json!({"y": round1(y_of(v)), "label": format!("{:.1}%", v * 100.0)})
        })
        .collect();
    serde_json::json!({
        "width": width, "height": height,
        "points": points.join(" "), "dots": dots, "ticks": ticks,
    })
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// A JSON object as a template value.
pub fn value(map: &Map<String, Json>) -> Value {
    ser(map)
}

/// Any serializable value as a template value.
pub fn ser<T: serde::Serialize>(v: T) -> Value {
    Value::from(minijinja::value::Serde(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_labels() {
        assert_eq!(money(Value::from(1234567.4)), "1,234,567");
        assert_eq!(money(Value::from(-1000)), "-1,000");
        assert_eq!(money(Value::from(())), "—");
        assert_eq!(zh("status".into(), Value::from("exited")), "已脱贫");
        assert_eq!(zh("outcome".into(), Value::from("exit")), "可退出");
        assert_eq!(zh("primary_cause".into(), Value::from("illness")), "因病");
        assert_eq!(zh("x".into(), Value::from("y")), "y");
        assert_eq!(yesno(Value::from(true)), "是");
        let chart = line_chart(
            &[("2015".into(), Some(0.1)), ("2016".into(), Some(0.05))],
            400.0,
            200.0,
        );
        assert_eq!(chart["dots"].as_array().unwrap().len(), 2);
        assert!(chart["points"].as_str().unwrap().contains(' '));
    }

    #[test]
    fn every_template_parses() {
        let env = environment();
        for name in [
            "base.html",
            "region.html",
            "household.html",
            "compare.html",
            "quality.html",
            "error.html",
        ] {
            env.get_template(name)
                .unwrap_or_else(|e| panic!("{name}: {e:#}"));
        }
    }
}
