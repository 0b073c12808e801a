//! Region-code and ID-number functions for SQL: `region_level(code)`,
//! `region_parent(code)`, `region_code_valid(code)` and
//! `id_number_valid(id)` (the logic is [`crate::codes`]).

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BooleanArray, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::cast::as_string_array;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use crate::codes::{id_number_valid, RegionCode};

// ---------------------------------------------------------------------------
// Scalar UDFs
// ---------------------------------------------------------------------------

/// Which text function a [`TextUdf`] applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum TextFn {
    Level,
    Parent,
    CodeValid,
    IdValid,
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
            TextFn::IdValid | TextFn::CodeValid => DataType::Boolean,
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
                    .map(|v| {
                        v.and_then(|s| RegionCode::parse(s).ok())
                            .map(|c| c.level().as_str())
                    })
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
            TextFn::CodeValid => Arc::new(
                input
                    .iter()
                    .map(|v| v.map(|s| RegionCode::parse(s).is_ok()))
                    .collect::<BooleanArray>(),
            ),
            TextFn::IdValid => Arc::new(
                input
                    .iter()
                    .map(|v| v.map(id_number_valid))
                    .collect::<BooleanArray>(),
            ),
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
    /// it), case by case, and is null for null.
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
            "SELECT region_code_valid(c) AS udf, \
               (c ~ '^[0-9]{{12}}$' AND substr(c,1,2) <> '00' \
                AND NOT (substr(c,3,2) = '00' AND substr(c,5,8) <> '00000000') \
                AND NOT (substr(c,5,2) = '00' AND substr(c,7,6) <> '000000') \
                AND NOT (substr(c,7,3) = '000' AND substr(c,10,3) <> '000')) AS rule \
             FROM (VALUES {values}, (NULL)) AS t(c)"
        );
        let batches = ctx.sql(&sql).await.unwrap().collect().await.unwrap();
        let mut udf = Vec::new();
        let mut rule = Vec::new();
        for b in &batches {
            for (out, i) in [(&mut udf, 0), (&mut rule, 1)] {
                let a = b.column(i).as_any().downcast_ref::<BooleanArray>().unwrap();
                out.extend((0..a.len()).map(|r| a.is_valid(r).then(|| a.value(r))));
            }
        }
        assert_eq!(udf, rule);
        let valid: Vec<bool> = udf
            .iter()
            .take(cases.len())
            .map(|v| *v == Some(true))
            .collect();
        assert_eq!(valid.iter().filter(|v| **v).count(), 5, "{udf:?}");
        assert_eq!(udf.last(), Some(&None));
    }
}
