//! Text functions of validation, one pass over a column each:
//! - `null_if_blank(text)`: empty or blank text (only white space,
//!   including the full-width space U+3000 of Chinese text) becomes null —
//!   DESIGN §11, for every input, whatever reader it came through;
//! - `relabel(text, 'label', 'value', …)`: an exported label (DESIGN §8)
//!   read as tuopin's value — what `CASE trim(text) WHEN 'label' THEN
//!   'value' … ELSE text END` says, without a pass per label;
//! - `not_in_list(text, 'a', 'b', …)`: whether a value is outside a code
//!   list — `text IS NOT NULL AND text NOT IN ('a', 'b', …)`, false for
//!   null, without a comparison pass per value.
//!
//! Each also takes a dictionary of text (`Dictionary(Int32, Utf8)`, how
//! validation reads a code-list column from Parquet): it then works on the
//! dictionary's distinct values once and keeps the keys, so a column of
//! millions of rows and a handful of codes costs a handful of lookups and
//! one pass over the keys.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, DictionaryArray, Int32Array, StringArray, StringBuilder,
};
use datafusion::arrow::buffer::{BooleanBuffer, NullBuffer};
use datafusion::arrow::datatypes::{DataType, Int32Type};
use datafusion::common::cast::as_string_array;
use datafusion::common::{exec_err, ScalarValue};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// Whether `s` is empty or only white space.
pub fn is_blank(s: &str) -> bool {
    is_blank_bytes(s.as_bytes())
}

/// [`is_blank`] over the UTF-8 bytes of a value.
#[inline]
fn is_blank_bytes(s: &[u8]) -> bool {
    match s.first() {
        // An ASCII first byte is the first character: text that starts
        // with a letter or digit is told apart without decoding it.
        Some(&b) if b.is_ascii() && !char::from(b).is_whitespace() => false,
        _ => std::str::from_utf8(s).is_ok_and(|s| s.chars().all(char::is_whitespace)),
    }
}

/// Whether value `i` of a column with `nulls` is valid (not null).
#[inline]
fn valid(nulls: Option<&NullBuffer>, i: usize) -> bool {
    nulls.is_none_or(|n| n.is_valid(i))
}

/// `text` with its blank values null; the values' buffers are shared, only
/// the validity changes.
pub fn blank_to_null(text: &StringArray) -> StringArray {
    let (bytes, nulls) = (value_bytes(text), text.nulls());
    let blank = (0..text.len()).any(|i| valid(nulls, i) && is_blank_bytes(bytes(i)));
    if !blank {
        return text.clone();
    }
    let kept =
        BooleanBuffer::collect_bool(text.len(), |i| valid(nulls, i) && !is_blank_bytes(bytes(i)));
    let (offsets, values, _) = text.clone().into_parts();
    StringArray::new(offsets, values, Some(NullBuffer::new(kept)))
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct NullIfBlank {
    signature: Signature,
}

impl ScalarUDFImpl for NullIfBlank {
    fn name(&self) -> &str {
        "null_if_blank"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(text_type(arg_types))
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> DfResult<Vec<DataType>> {
        Ok(text_arguments(arg_types))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        // A scalar (utf8 or a dictionary of text) as a one-row array.
        let (input, scalar) = super::first_argument(&args)?;
        let out: ArrayRef = match text_dictionary(&input)? {
            Some(d) => Arc::new(dictionary_blank_to_null(d)?),
            None => Arc::new(blank_to_null(as_string_array(&input)?)),
        };
        super::result(out, scalar)
    }
}

/// `null_if_blank(text) -> utf8` (a dictionary of text stays one).
pub fn null_if_blank_udf() -> ScalarUDF {
    ScalarUDF::from(NullIfBlank {
        signature: Signature::user_defined(Volatility::Immutable),
    })
}

/// The dictionary of text the list functions keep as it is.
fn is_text_dictionary(t: &DataType) -> bool {
    matches!(t, DataType::Dictionary(k, v) if **k == DataType::Int32 && **v == DataType::Utf8)
}

/// The type a text function returns for its first argument's type: a
/// dictionary of text stays one, anything else is utf8.
fn text_type(arg_types: &[DataType]) -> DataType {
    match arg_types.first() {
        Some(t) if is_text_dictionary(t) => t.clone(),
        _ => DataType::Utf8,
    }
}

/// Argument types as the text functions take them: the first a dictionary
/// of text or utf8, the others utf8.
fn text_arguments(arg_types: &[DataType]) -> Vec<DataType> {
    arg_types
        .iter()
        .enumerate()
        .map(|(i, t)| {
            if i == 0 && is_text_dictionary(t) {
                t.clone()
            } else {
                DataType::Utf8
            }
        })
        .collect()
}

/// `a` as a dictionary of text, if it is one.
fn text_dictionary(a: &ArrayRef) -> DfResult<Option<&DictionaryArray<Int32Type>>> {
    if !is_text_dictionary(a.data_type()) {
        return Ok(None);
    }
    match a.as_any().downcast_ref::<DictionaryArray<Int32Type>>() {
        Some(d) => Ok(Some(d)),
        None => exec_err!("expected a dictionary of text, got {}", a.data_type()),
    }
}

/// For each key, the flag of the dictionary value it points at
/// (`per_value`, one flag per value); false for a null key.
fn per_key(keys: &Int32Array, per_value: &BooleanBuffer) -> BooleanBuffer {
    let (codes, nulls) = (keys.values(), keys.nulls());
    BooleanBuffer::collect_bool(keys.len(), |i| {
        valid(nulls, i)
            && usize::try_from(codes[i])
                .ok()
                .filter(|&k| k < per_value.len())
                .is_some_and(|k| per_value.value(k))
    })
}

/// [`blank_to_null`] over a dictionary of text: keys of blank values
/// become null (the values are kept); the dictionary itself when no value
/// is blank.
fn dictionary_blank_to_null(
    d: &DictionaryArray<Int32Type>,
) -> DfResult<DictionaryArray<Int32Type>> {
    let values = as_string_array(d.values())?;
    let bytes = value_bytes(values);
    let blank = BooleanBuffer::collect_bool(values.len(), |i| {
        valid(values.nulls(), i) && is_blank_bytes(bytes(i))
    });
    if blank.count_set_bits() == 0 {
        return Ok(d.clone());
    }
    let kept = per_key(d.keys(), &!&blank);
    let keys = Int32Array::new(d.keys().values().clone(), Some(NullBuffer::new(kept)));
    Ok(DictionaryArray::try_new(keys, d.values().clone())?)
}

/// The literal text arguments `args[1..]` of a list function (`name`
/// names it in the error when one is not a text literal).
fn literal_list<'a>(name: &str, args: &'a [ColumnarValue]) -> DfResult<Vec<&'a str>> {
    args.iter()
        .skip(1)
        .map(|a| match a {
            ColumnarValue::Scalar(ScalarValue::Utf8(Some(s))) => Ok(s.as_str()),
            other => {
                exec_err!("{name}: arguments after the first must be text literals, got {other:?}")
            }
        })
        .collect()
}

/// A short list of text values to look text up in: by byte length and
/// first byte (a bit per length, a flag per byte), then by bytes — so
/// tuopin's ASCII values are told from Chinese labels without a `memcmp`.
struct ShortList<'a> {
    values: Vec<&'a [u8]>,
    lengths: u128,
    firsts: [bool; 256],
}

impl<'a> ShortList<'a> {
    fn new(values: impl IntoIterator<Item = &'a str>) -> Self {
        let values: Vec<&[u8]> = values.into_iter().map(str::as_bytes).collect();
        let lengths = values
            .iter()
            .fold(0u128, |m, v| m | (1u128 << v.len().min(127)));
        let mut firsts = [false; 256];
        for v in &values {
            if let Some(&b) = v.first() {
                firsts[usize::from(b)] = true;
            }
        }
        ShortList {
            values,
            lengths,
            firsts,
        }
    }

    /// The position of the first value equal to `s`.
    #[inline]
    fn position(&self, s: &[u8]) -> Option<usize> {
        if self.lengths & (1u128 << s.len().min(127)) == 0 {
            return None;
        }
        if let Some(&b) = s.first() {
            if !self.firsts[usize::from(b)] {
                return None;
            }
        }
        self.values.iter().position(|v| *v == s)
    }
}

/// `s` without leading and trailing spaces (U+0020 only, as SQL `trim`).
#[inline]
fn trim_spaces(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&c| c != b' ').unwrap_or(s.len());
    let end = s.iter().rposition(|&c| c != b' ').map_or(start, |p| p + 1);
    &s[start..end]
}

/// The bytes of value `i` of `text` (of a null value too: empty or junk,
/// callers check validity), without the UTF-8 view `value(i)` builds.
fn value_bytes<'a>(text: &'a StringArray) -> impl Fn(usize) -> &'a [u8] + 'a {
    let (data, offsets) = (text.value_data(), text.value_offsets());
    move |i| &data[offsets[i] as usize..offsets[i + 1] as usize]
}

/// `text` with each label (trimmed of spaces, as SQL `trim`) read as its
/// value; other text, and null, unchanged. `pairs` alternates label and
/// value; the first pair with a label wins, as the first arm of a `CASE`.
/// Text with no label in it (tuopin's own values) comes back as it is,
/// without a copy.
pub fn relabel(text: &StringArray, pairs: &[&str]) -> StringArray {
    let labels = ShortList::new(pairs.iter().step_by(2).copied());
    let values: Vec<&str> = pairs.iter().skip(1).step_by(2).copied().collect();
    let lookup = |s: &[u8]| labels.position(trim_spaces(s)).and_then(|i| values.get(i));
    let bytes = value_bytes(text);
    let nulls = text.nulls();
    let labelled = (0..text.len()).any(|i| valid(nulls, i) && lookup(bytes(i)).is_some());
    if !labelled {
        return text.clone();
    }
    let mut out = StringBuilder::with_capacity(text.len(), text.values().len());
    for v in text.iter() {
        match v {
            Some(s) => out.append_value(lookup(s.as_bytes()).copied().unwrap_or(s)),
            None => out.append_null(),
        }
    }
    out.finish()
}

/// Whether each value of `text` is outside `values`: true for a value not
/// in the list, false for one in it and for null.
pub fn not_in_list(text: &StringArray, values: &[&str]) -> BooleanArray {
    let list = ShortList::new(values.iter().copied());
    let (bytes, nulls) = (value_bytes(text), text.nulls());
    let bits = BooleanBuffer::collect_bool(text.len(), |i| {
        valid(nulls, i) && list.position(bytes(i)).is_none()
    });
    BooleanArray::new(bits, None)
}

/// Which list function a [`TextList`] applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum ListFn {
    Relabel,
    NotInList,
}

/// `relabel` / `not_in_list`: a text column and a list of text literals.
#[derive(Debug, PartialEq, Eq, Hash)]
struct TextList {
    func: ListFn,
    signature: Signature,
}

impl ScalarUDFImpl for TextList {
    fn name(&self) -> &str {
        match self.func {
            ListFn::Relabel => "relabel",
            ListFn::NotInList => "not_in_list",
        }
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(match self.func {
            ListFn::Relabel => text_type(arg_types),
            ListFn::NotInList => DataType::Boolean,
        })
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> DfResult<Vec<DataType>> {
        if arg_types.is_empty() {
            return exec_err!("{}: needs a text argument", self.name());
        }
        Ok(text_arguments(arg_types))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let list = literal_list(self.name(), &args.args)?;
        if self.func == ListFn::Relabel && list.len() % 2 != 0 {
            return exec_err!("relabel: labels and values must come in pairs");
        }
        let (input, scalar) = super::first_argument(&args)?;
        let out: ArrayRef = match (self.func, text_dictionary(&input)?) {
            // A dictionary: its values looked up once each.
            (ListFn::Relabel, Some(d)) => {
                let values = relabel(as_string_array(d.values())?, &list);
                Arc::new(DictionaryArray::try_new(
                    d.keys().clone(),
                    Arc::new(values),
                )?)
            }
            (ListFn::NotInList, Some(d)) => {
                let outside = not_in_list(as_string_array(d.values())?, &list);
                Arc::new(BooleanArray::new(per_key(d.keys(), outside.values()), None))
            }
            (ListFn::Relabel, None) => Arc::new(relabel(as_string_array(&input)?, &list)),
            (ListFn::NotInList, None) => Arc::new(not_in_list(as_string_array(&input)?, &list)),
        };
        super::result(out, scalar)
    }
}

fn text_list_udf(func: ListFn) -> ScalarUDF {
    ScalarUDF::from(TextList {
        func,
        signature: Signature::user_defined(Volatility::Immutable),
    })
}

/// `relabel(text, 'label', 'value', …) -> utf8`.
pub fn relabel_udf() -> ScalarUDF {
    text_list_udf(ListFn::Relabel)
}

/// `not_in_list(text, 'a', 'b', …) -> bool`.
pub fn not_in_list_udf() -> ScalarUDF {
    text_list_udf(ListFn::NotInList)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A list finds exactly the equal text, through its length and
    /// first-byte filters, for every length up to 21 bytes and for
    /// Chinese labels: not text that differs in one byte (a NUL too) or
    /// only in its length.
    #[test]
    fn short_list_finds_exactly_the_equal_text() {
        let base = "abcdefghijklmnopqrstu";
        let mut values: Vec<String> = (0..=base.len()).map(|n| base[..n].to_string()).collect();
        values.push("户主".into());
        values.push("特困供养贫困户".into());
        let list = ShortList::new(values.iter().map(String::as_str));
        for (i, v) in values.iter().enumerate() {
            assert_eq!(list.position(v.as_bytes()), Some(i), "{v:?}");
        }
        for n in 1..=base.len() {
            for at in 0..n {
                // One byte changed anywhere: not in the list.
                let mut other = base.as_bytes()[..n].to_vec();
                other[at] = b'#';
                assert_eq!(list.position(&other), None, "{n} {at}");
                other[at] = 0;
                assert_eq!(list.position(&other), None, "{n} {at} NUL");
            }
        }
        assert_eq!(list.position("户".as_bytes()), None);
        assert_eq!(list.position("特困供养贫困".as_bytes()), None);
    }

    /// Over a dictionary of text each function gives what it gives over
    /// the same text as utf8 (blank values, labels, values outside the
    /// list, null keys and repeated values), and keeps the dictionary.
    #[tokio::test]
    async fn text_functions_agree_over_dictionaries() {
        use datafusion::arrow::compute::cast;
        use datafusion::prelude::SessionContext;
        let ctx = SessionContext::new();
        crate::functions::register_all(&ctx);
        let cases = [
            "户主", " 户主 ", "head", "  ", "\u{3000}", "", "x", "head", "户主", "x",
        ];
        let values = crate::functions::values_rows(&cases);
        let calls = [
            "null_if_blank(c)",
            "relabel(c, '户主', 'head', 'x', 'y')",
            "relabel(null_if_blank(c), '户主', 'head')",
            "not_in_list(c, 'head', '')",
            "not_in_list(null_if_blank(c), 'head')",
        ];
        let select = |column: &str| {
            calls
                .iter()
                .map(|f| f.replace("(c", &format!("({column}")))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let sql = format!(
            "SELECT {}, {} FROM (SELECT c, arrow_cast(c, 'Dictionary(Int32, Utf8)') AS d \
             FROM (VALUES {values}, (NULL)) AS t(c))",
            select("c"),
            select("d")
        );
        let batches = ctx.sql(&sql).await.unwrap().collect().await.unwrap();
        let mut rows = 0;
        for b in &batches {
            for (i, call) in calls.iter().enumerate() {
                let (plain, dict) = (b.column(i), b.column(i + calls.len()));
                if call.starts_with("not_in_list") {
                    assert_eq!(dict.data_type(), &DataType::Boolean, "{call}");
                } else {
                    assert!(
                        matches!(dict.data_type(), DataType::Dictionary(..)),
                        "{call}"
                    );
                }
                let dict = cast(dict, plain.data_type()).unwrap();
                assert_eq!(&dict, plain, "{call}");
            }
            rows += b.num_rows();
            let blank = as_string_array(b.column(0)).unwrap();
            assert_eq!(blank.null_count(), 4, "three blanks and null");
        }
        assert_eq!(rows, cases.len() + 1);
        // A blank constant is null too, as utf8 and as a dictionary.
        let sql = "SELECT null_if_blank('  ') IS NULL, \
                   null_if_blank(arrow_cast('\u{3000}', 'Dictionary(Int32, Utf8)')) IS NULL, \
                   null_if_blank(arrow_cast('户主', 'Dictionary(Int32, Utf8)')) IS NULL";
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        let flags: Vec<Option<bool>> = batches[0]
            .columns()
            .iter()
            .map(|c| c.as_any().downcast_ref::<BooleanArray>().unwrap().value(0))
            .map(Some)
            .collect();
        assert_eq!(flags, [Some(true), Some(true), Some(false)]);
    }

    #[test]
    fn blank_text_becomes_null_and_the_rest_is_kept() {
        let a = StringArray::from(vec![
            Some(""),
            Some("   "),
            Some("\u{3000}"),
            Some(" H01 "),
            None,
            Some("x"),
        ]);
        let out = blank_to_null(&a);
        let got: Vec<Option<&str>> = out.iter().collect();
        assert_eq!(got, [None, None, None, Some(" H01 "), None, Some("x")]);
        let clean = StringArray::from(vec![Some("a"), None]);
        assert_eq!(blank_to_null(&clean), clean);
    }

    #[test]
    fn blank_is_only_white_space_by_the_unicode_definition() {
        for s in [
            "",
            " ",
            "\t\n\r",
            "\u{b}\u{c}",
            "\u{3000}",
            "\u{85}",
            "\u{a0} ",
            " \u{2028}",
        ] {
            assert!(is_blank(s), "{s:?}");
        }
        for s in ["a", " a", "\u{3000}户", "户", "\u{0}", "-", "\u{200b}"] {
            assert!(!is_blank(s), "{s:?}");
            assert_eq!(is_blank(s), s.chars().all(char::is_whitespace), "{s:?}");
        }
    }

    /// `relabel` and `not_in_list` agree with the SQL they replace
    /// (`CASE trim(x) WHEN … ELSE x END`, `x IS NOT NULL AND x NOT IN …`),
    /// case by case, through SQL with the functions registered.
    #[tokio::test]
    async fn list_functions_agree_with_the_sql_they_replace() {
        use datafusion::prelude::SessionContext;
        let ctx = SessionContext::new();
        crate::functions::register_all(&ctx);
        let cases = [
            "户主",
            " 户主 ",
            "户主\u{3000}",
            "配偶",
            "之子",
            "head",
            "Head",
            "",
            "  ",
            "其他",
            "x",
        ];
        let values = crate::functions::values_rows(&cases);
        let sql = format!(
            "SELECT relabel(c, '户主', 'head', '配偶', 'spouse', '之子', 'child', '户主', 'other') AS udf, \
               CASE trim(c) WHEN '户主' THEN 'head' WHEN '配偶' THEN 'spouse' WHEN '之子' THEN 'child' \
                 WHEN '户主' THEN 'other' ELSE c END AS rule, \
               not_in_list(c, 'head', 'spouse', '') AS outside, \
               (c IS NOT NULL AND c NOT IN ('head', 'spouse', '')) IS TRUE AS outside_rule \
             FROM (VALUES {values}, (NULL)) AS t(c)"
        );
        let batches = ctx.sql(&sql).await.unwrap().collect().await.unwrap();
        let mut rows = 0;
        for b in &batches {
            let text = |i: usize| {
                let a = as_string_array(b.column(i)).unwrap();
                a.iter().map(|v| v.map(str::to_string)).collect::<Vec<_>>()
            };
            let flag = |i: usize| {
                let a = b.column(i).as_any().downcast_ref::<BooleanArray>().unwrap();
                a.iter().collect::<Vec<_>>()
            };
            assert_eq!(text(0), text(1));
            assert_eq!(flag(2), flag(3));
            rows += b.num_rows();
            let relabelled = text(0);
            assert_eq!(relabelled[0].as_deref(), Some("head"));
            assert_eq!(relabelled[1].as_deref(), Some("head"), "spaces trimmed");
            assert_eq!(
                relabelled[2].as_deref(),
                Some("户主\u{3000}"),
                "only spaces"
            );
            assert_eq!(relabelled[10].as_deref(), Some("x"));
            assert_eq!(relabelled[11], None);
            let outside = flag(2);
            assert_eq!(outside[5], Some(false));
            assert_eq!(outside[6], Some(true), "case matters");
            assert_eq!(outside[7], Some(false), "'' is in the list");
            assert_eq!(outside[11], Some(false), "null is not outside");
        }
        assert_eq!(rows, cases.len() + 1);
    }
}
