//! Region-code and ID-number functions for SQL: `region_level(code)`,
//! `region_parent(code)`, `region_code_valid(code)`,
//! `village_code_valid(code)` and `id_number_valid(id)` (the logic is
//! [`crate::codes`]).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, Int64Array, StringArray};
use datafusion::arrow::buffer::{BooleanBuffer, NullBuffer};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::cast::as_string_array;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use crate::codes::{code_level, id_bytes_valid, Level, RegionCode};

// ---------------------------------------------------------------------------
// Scalar UDFs
// ---------------------------------------------------------------------------

/// Which text function a [`TextUdf`] applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum TextFn {
    Level,
    Parent,
    CodeValid,
    VillageValid,
    IdValid,
    CodeInt,
}

/// A one-argument UDF over a Utf8 column (region level / parent, ID check).
#[derive(Debug, PartialEq, Eq, Hash)]
struct TextUdf {
    name: &'static str,
    func: TextFn,
    signature: Signature,
}

impl ScalarUDFImpl for TextUdf {
    fn name(&self) -> &str {
        self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(match self.func {
            TextFn::IdValid | TextFn::CodeValid | TextFn::VillageValid => DataType::Boolean,
            TextFn::CodeInt => DataType::Int64,
            _ => DataType::Utf8,
        })
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let (input, scalar) = super::first_argument(&args)?;
        let input = as_string_array(&input)?;
        let out: ArrayRef = match self.func {
            TextFn::Level => Arc::new(
                input
                    .iter()
                    .map(|v| v.and_then(|s| code_level(s.as_bytes())).map(Level::as_str))
                    .collect::<StringArray>(),
            ),
            TextFn::Parent => Arc::new(
                input
                    .iter()
                    .map(|v| {
                        v.and_then(|s| RegionCode::parse(s).ok())
                            .and_then(|c| c.parent())
                            .map(|p| p.as_str().to_string())
                    })
                    .collect::<StringArray>(),
            ),
            TextFn::CodeValid => Arc::new(text_test(input, |c| code_level(c).is_some())),
            TextFn::VillageValid => {
                Arc::new(text_test(input, |c| code_level(c) == Some(Level::Village)))
            }
            TextFn::IdValid => Arc::new(text_test(input, id_bytes_valid)),
            TextFn::CodeInt => Arc::new(code_numbers(input)),
        };
        super::result(out, scalar)
    }
}

fn text_udf(name: &'static str, func: TextFn) -> ScalarUDF {
    ScalarUDF::from(TextUdf {
        name,
        func,
        signature: Signature::exact(vec![DataType::Utf8], Volatility::Immutable),
    })
}

/// `region_level(code) -> utf8`: level name, null for a malformed code.
pub fn region_level_udf() -> ScalarUDF {
    text_udf("region_level", TextFn::Level)
}

/// `region_parent(code) -> utf8`: parent code, null for a province or a
/// malformed code.
pub fn region_parent_udf() -> ScalarUDF {
    text_udf("region_parent", TextFn::Parent)
}

/// `region_code_valid(code) -> bool`: whether `code` is a well-formed
/// region code ([`RegionCode::parse`]: 12 ASCII digits, province non-zero,
/// no non-zero segment below a zero one); null for null.
pub fn region_code_valid_udf() -> ScalarUDF {
    text_udf("region_code_valid", TextFn::CodeValid)
}

/// `village_code_valid(code) -> bool`: whether `code` is a well-formed
/// region code of a village (its last segment non-zero); null for null.
pub fn village_code_valid_udf() -> ScalarUDF {
    text_udf("village_code_valid", TextFn::VillageValid)
}

/// `test` of each value's bytes, null where `input` is null: one pass over
/// the offsets into a bitmap (no `Option` per row, no UTF-8 check).
fn text_test(input: &StringArray, test: impl Fn(&[u8]) -> bool) -> BooleanArray {
    let offsets = input.value_offsets();
    let bytes = input.value_data();
    let values = BooleanBuffer::collect_bool(input.len(), |i| {
        let (start, end) = (offsets[i] as usize, offsets[i + 1] as usize);
        bytes.get(start..end).is_some_and(&test)
    });
    BooleanArray::new(values, input.nulls().cloned())
}

/// `region_code_number(code) -> bigint`: a 12-digit code as a number
/// (equal to `TRY_CAST(code AS BIGINT)` on 12 ASCII digits, a fraction of
/// its cost), null for anything else — the integer key plans group and
/// roll up on ([`crate::codes::roll_up_int_sql`]).
pub fn region_code_number_udf() -> ScalarUDF {
    text_udf("region_code_number", TextFn::CodeInt)
}

/// Each code's value as 12 ASCII digits, null for anything else (read
/// from the column's bytes, without a branch per digit: a column of
/// household village codes is read once per index).
fn code_numbers(input: &StringArray) -> Int64Array {
    let offsets = input.value_offsets();
    let bytes = input.value_data();
    let mut values = Vec::with_capacity(input.len());
    let mut digits = Vec::with_capacity(input.len());
    for pair in offsets.windows(2) {
        let text = &bytes[pair[0] as usize..pair[1] as usize];
        let (value, ok) = <&[u8; 12]>::try_from(text).map_or((0, false), code_number);
        values.push(value);
        digits.push(ok);
    }
    let digits = NullBuffer::from(digits);
    Int64Array::new(
        values.into(),
        NullBuffer::union(input.nulls(), Some(&digits)),
    )
}

/// The value of 12 bytes and whether they are all ASCII digits.
fn code_number(code: &[u8; 12]) -> (i64, bool) {
    let mut value = 0i64;
    let mut bad = false;
    for c in code {
        let d = c.wrapping_sub(b'0');
        bad |= d > 9;
        value = value * 10 + i64::from(d);
    }
    (value, !bad)
}

/// `id_number_valid(id) -> bool`: the GB 11643 check-digit test.
pub fn id_number_valid_udf() -> ScalarUDF {
    text_udf("id_number_valid", TextFn::IdValid)
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Array, BooleanArray};
    use datafusion::prelude::SessionContext;

    /// `region_code_valid` agrees with the rule written out in SQL (the
    /// regular expression and segment comparisons validation used before
    /// it), case by case, and is null for null; `village_code_valid` is
    /// that rule and a non-zero last segment (what validation wrote as
    /// `substr(c, 10, 3) <> '000'`).
    #[tokio::test]
    async fn region_code_valid_agrees_with_the_rule_in_sql() {
        let ctx = SessionContext::new();
        crate::functions::register_all(&ctx);
        let cases = [
            "130000000000",  // province
            "130100000000",  // city
            "130102000000",  // county
            "130102001000",  // township
            "130102001001",  // village
            "000102001001",  // no province
            "130002001001",  // gap: city zero below a province
            "130100001000",  // gap: county zero above a township
            "130102000001",  // gap: township zero above a village
            "13010200100X",  // not digits
            "１30102001001", // full-width digit
            "13010200100",   // 11 characters
            "1301020010011", // 13 characters
            "",
        ];
        let values = crate::functions::values_rows(&cases);
        let sql = format!(
            "SELECT udf, rule, village, rule AND substr(c, 10, 3) <> '000' FROM ( \
             SELECT c, region_code_valid(c) AS udf, village_code_valid(c) AS village, \
               (c ~ '^[0-9]{{12}}$' AND substr(c,1,2) <> '00' \
                AND NOT (substr(c,3,2) = '00' AND substr(c,5,8) <> '00000000') \
                AND NOT (substr(c,5,2) = '00' AND substr(c,7,6) <> '000000') \
                AND NOT (substr(c,7,3) = '000' AND substr(c,10,3) <> '000')) AS rule \
             FROM (VALUES {values}, (NULL)) AS t(c))"
        );
        let batches = ctx.sql(&sql).await.unwrap().collect().await.unwrap();
        let (mut udf, mut rule, mut village, mut village_rule) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for b in &batches {
            let columns = [
                (&mut udf, 0),
                (&mut rule, 1),
                (&mut village, 2),
                (&mut village_rule, 3),
            ];
            for (out, i) in columns {
                let a = b.column(i).as_any().downcast_ref::<BooleanArray>().unwrap();
                out.extend((0..a.len()).map(|r| a.is_valid(r).then(|| a.value(r))));
            }
        }
        assert_eq!(udf, rule);
        assert_eq!(village, village_rule);
        assert_eq!(
            village.iter().filter(|v| **v == Some(true)).count(),
            1,
            "{village:?}"
        );
        assert_eq!(village.last(), Some(&None));
        let valid: Vec<bool> = udf
            .iter()
            .take(cases.len())
            .map(|v| *v == Some(true))
            .collect();
        assert_eq!(valid.iter().filter(|v| **v).count(), 5, "{udf:?}");
        assert_eq!(udf.last(), Some(&None));
    }

    /// `region_code_number` equals `TRY_CAST(code AS BIGINT)` on 12 ASCII
    /// digits and is null for anything else (and for null).
    #[tokio::test]
    async fn region_code_number_is_the_cast_of_twelve_digits() {
        use datafusion::arrow::array::Int64Array;
        let ctx = SessionContext::new();
        crate::functions::register_all(&ctx);
        let digits = [
            "130102001001",
            "130000000000",
            "999999999999",
            "012345678901",
        ];
        let other = [
            "13010200100X",
            "13010200100",
            "1301020010011",
            "+13010200100",
            " 30102001001",
            "１30102001001",
            "",
        ];
        let cases: Vec<&str> = digits.iter().chain(other.iter()).copied().collect();
        let values = crate::functions::values_rows(&cases);
        let sql = format!(
            "SELECT region_code_number(c), TRY_CAST(c AS BIGINT) FROM (VALUES {values}, (NULL)) AS t(c)"
        );
        let batches = ctx.sql(&sql).await.unwrap().collect().await.unwrap();
        let mut got = Vec::new();
        let mut cast = Vec::new();
        for b in &batches {
            for (out, i) in [(&mut got, 0), (&mut cast, 1)] {
                let a = b.column(i).as_any().downcast_ref::<Int64Array>().unwrap();
                out.extend((0..a.len()).map(|r| a.is_valid(r).then(|| a.value(r))));
            }
        }
        assert_eq!(got[..digits.len()], cast[..digits.len()]);
        assert_eq!(got[0], Some(130_102_001_001));
        assert_eq!(got[3], Some(12_345_678_901));
        assert!(got[digits.len()..].iter().all(Option::is_none), "{got:?}");
    }

    /// The level read from a code as a number is the level read from its
    /// text, at every level (also for a malformed one), and back to its
    /// name through its rank.
    #[tokio::test]
    async fn level_from_the_number_is_the_level_from_the_text() {
        use crate::codes::{level_of_rank_sql, level_rank_int_sql, level_sql, Level};
        use datafusion::arrow::array::StringArray;
        let ctx = SessionContext::new();
        crate::functions::register_all(&ctx);
        let codes = [
            "130000000000",
            "130100000000",
            "130102000000",
            "130102001000",
            "130102001001",
            "990000000000",
            "999999999999",
            "100010000000",
        ];
        let values = crate::functions::values_rows(&codes);
        let sql = format!(
            "SELECT {text}, {number} FROM (SELECT c, {rank} AS rank FROM \
               (SELECT c, region_code_number(c) AS n FROM (VALUES {values}) AS t(c)))",
            text = level_sql("c"),
            number = level_of_rank_sql("rank"),
            rank = level_rank_int_sql("n"),
        );
        let batches = ctx.sql(&sql).await.unwrap().collect().await.unwrap();
        let (mut text, mut number) = (Vec::new(), Vec::new());
        for b in &batches {
            for (out, i) in [(&mut text, 0), (&mut number, 1)] {
                let a = b.column(i).as_any().downcast_ref::<StringArray>().unwrap();
                out.extend((0..a.len()).map(|r| a.value(r).to_string()));
            }
        }
        assert_eq!(text, number);
        assert_eq!(
            text[..5],
            ["province", "city", "county", "township", "village"]
        );
        let ranks: Vec<u8> = Level::ALL.iter().map(|l| l.rank()).collect();
        assert_eq!(ranks, [1, 2, 3, 4, 5]);
    }
}
