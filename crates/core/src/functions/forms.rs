//! `export_value(text, kind)`: a cell of a registry export written the way
//! the national system and Excel write it, rewritten into the form SQL
//! casts read (DESIGN §8). `kind` is a text literal:
//!
//! | kind | accepted besides the plain form | becomes |
//! |---|---|---|
//! | `'bool'` | 是 / 有, 否 / 无 (and everything a cast reads: `true`, `Y`, `1` …) | `true` / `false` |
//! | `'date'` | `2016/12/31`, `2016年12月31日`, `2016.12.31`, `20161231`, one-digit month or day | `2016-12-31` |
//! | `'number'` | full-width digits and signs (`１２３`), thousands separators (`12,000.5`) | `12000.5` |
//!
//! Anything else is returned unchanged, so the cast after it fails and the
//! row becomes a reject naming the raw value. When no cell of a batch needs
//! rewriting, the input column is returned as it is.

use std::borrow::Cow;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::cast::as_string_array;
use datafusion::common::{plan_err, ScalarValue};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// The forms `export_value` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Yes/no.
    Bool,
    /// A calendar date.
    Date,
    /// An integer or decimal number.
    Number,
}

impl Kind {
    fn parse(name: &str) -> Option<Kind> {
        match name {
            "bool" => Some(Kind::Bool),
            "date" => Some(Kind::Date),
            "number" => Some(Kind::Number),
            _ => None,
        }
    }
}

/// `value` in the plain form of `kind`, or unchanged (see the module doc).
pub fn normalize(value: &str, kind: Kind) -> Cow<'_, str> {
    match kind {
        Kind::Bool => match value {
            "是" | "有" => Cow::Borrowed("true"),
            "否" | "无" => Cow::Borrowed("false"),
            _ => Cow::Borrowed(value),
        },
        Kind::Date => date(value).map_or(Cow::Borrowed(value), Cow::Owned),
        Kind::Number => number(value),
    }
}

/// `YYYY-MM-DD` of a date written with `/`, `.`, `-` or 年月日, or as
/// eight digits; `None` when `value` is none of these (or already plain).
fn date(value: &str) -> Option<String> {
    let v = value.strip_suffix('日').unwrap_or(value);
    if v.len() == 8 && v.bytes().all(|b| b.is_ascii_digit()) {
        return Some(format!("{}-{}-{}", &v[..4], &v[4..6], &v[6..]));
    }
    let parts: Vec<&str> = v.split(['/', '.', '-', '年', '月']).collect();
    let [y, m, d] = parts.as_slice() else {
        return None;
    };
    let digits = |s: &str, max: usize| {
        !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_digit())
    };
    if y.len() != 4 || !digits(y, 4) || !digits(m, 2) || !digits(d, 2) {
        return None;
    }
    let out = format!("{y}-{m:0>2}-{d:0>2}");
    (out != value).then_some(out)
}

/// A number with full-width characters made ASCII and thousands
/// separators removed (only where they group by three).
fn number(value: &str) -> Cow<'_, str> {
    let ascii: Cow<'_, str> = if value.is_ascii() {
        Cow::Borrowed(value)
    } else {
        Cow::Owned(
            value
                .chars()
                .map(|c| match c {
                    '０'..='９' => char::from(b'0' + (c as u32 - '０' as u32) as u8),
                    '．' => '.',
                    '－' => '-',
                    '＋' => '+',
                    '，' => ',',
                    other => other,
                })
                .collect(),
        )
    };
    if !ascii.contains(',') || !grouped_by_thousands(&ascii) {
        return ascii;
    }
    Cow::Owned(ascii.replace(',', ""))
}

/// `[+-]d{1,3}(,ddd)+(.d+)?`.
fn grouped_by_thousands(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let mut groups = int.split(',');
    let first = groups.next().unwrap_or("");
    let all_digits = |g: &str| g.bytes().all(|b| b.is_ascii_digit());
    (1..=3).contains(&first.len())
        && all_digits(first)
        && groups.all(|g| g.len() == 3 && all_digits(g))
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct ExportValue {
    signature: Signature,
}

impl ScalarUDFImpl for ExportValue {
    fn name(&self) -> &str {
        "export_value"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let kind = match &args.args[1] {
            ColumnarValue::Scalar(ScalarValue::Utf8(Some(k))) => Kind::parse(k),
            _ => None,
        };
        let Some(kind) = kind else {
            return plan_err!("export_value: kind must be 'bool', 'date' or 'number'");
        };
        match &args.args[0] {
            ColumnarValue::Scalar(ScalarValue::Utf8(v)) => Ok(ColumnarValue::Scalar(
                ScalarValue::Utf8(v.as_deref().map(|s| normalize(s, kind).into_owned())),
            )),
            ColumnarValue::Scalar(other) => Ok(ColumnarValue::Scalar(other.clone())),
            ColumnarValue::Array(a) => {
                let text = as_string_array(a)?;
                let changes = (0..text.len()).any(|i| {
                    text.is_valid(i) && normalize(text.value(i), kind).as_ref() != text.value(i)
                });
                if !changes {
                    return Ok(ColumnarValue::Array(Arc::clone(a)));
                }
                let out: StringArray = text.iter().map(|v| v.map(|s| normalize(s, kind))).collect();
                Ok(ColumnarValue::Array(Arc::new(out) as ArrayRef))
            }
        }
    }
}

/// `export_value(text, kind) -> utf8` (see the module doc).
pub fn export_value_udf() -> ScalarUDF {
    ScalarUDF::from(ExportValue {
        signature: Signature::exact(vec![DataType::Utf8, DataType::Utf8], Volatility::Immutable),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_form_by_hand() {
        let n = |v: &str, k: Kind| normalize(v, k).into_owned();
        assert_eq!(n("是", Kind::Bool), "true");
        assert_eq!(n("有", Kind::Bool), "true");
        assert_eq!(n("否", Kind::Bool), "false");
        assert_eq!(n("无", Kind::Bool), "false");
        assert_eq!(n("Y", Kind::Bool), "Y");
        assert_eq!(n("也许", Kind::Bool), "也许");
        for d in [
            "2016/12/31",
            "2016年12月31日",
            "20161231",
            "2016.12.31",
            "2016-12-31",
        ] {
            assert_eq!(n(d, Kind::Date), "2016-12-31", "{d}");
        }
        assert_eq!(n("2016年1月5日", Kind::Date), "2016-01-05");
        assert_eq!(n("2016/1/5", Kind::Date), "2016-01-05");
        assert_eq!(n("16/1/5", Kind::Date), "16/1/5");
        assert_eq!(n("2016/12/31/1", Kind::Date), "2016/12/31/1");
        assert_eq!(n("明天", Kind::Date), "明天");
        assert_eq!(n("12,000", Kind::Number), "12000");
        assert_eq!(n("-1,234,567.50", Kind::Number), "-1234567.50");
        assert_eq!(n("１２３", Kind::Number), "123");
        assert_eq!(n("１２，０００．５", Kind::Number), "12000.5");
        assert_eq!(n("1,2", Kind::Number), "1,2");
        assert_eq!(n("12,0000", Kind::Number), "12,0000");
        assert_eq!(n("1234", Kind::Number), "1234");
        assert!(matches!(normalize("1234", Kind::Number), Cow::Borrowed(_)));
    }
}
