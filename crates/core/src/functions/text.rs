//! `null_if_blank(text)`: empty or blank text (only white space, including
//! the full-width space U+3000 of Chinese text) becomes null — DESIGN §11,
//! for every input, whatever reader it came through.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, StringArray};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::cast::as_string_array;
use datafusion::common::ScalarValue;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// Whether `s` is empty or only white space.
pub fn is_blank(s: &str) -> bool {
    s.chars().all(char::is_whitespace)
}

/// `text` with its blank values null; the values' buffers are shared, only
/// the validity changes.
pub fn blank_to_null(text: &StringArray) -> StringArray {
    let blank = (0..text.len()).any(|i| text.is_valid(i) && is_blank(text.value(i)));
    if !blank {
        return text.clone();
    }
    let valid: NullBuffer = (0..text.len())
        .map(|i| text.is_valid(i) && !is_blank(text.value(i)))
        .collect();
    let (offsets, values, _) = text.clone().into_parts();
    StringArray::new(offsets, values, Some(valid))
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
    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        match &args.args[0] {
            ColumnarValue::Scalar(ScalarValue::Utf8(v)) => Ok(ColumnarValue::Scalar(
                ScalarValue::Utf8(v.clone().filter(|s| !is_blank(s))),
            )),
            ColumnarValue::Scalar(other) => Ok(ColumnarValue::Scalar(other.clone())),
            ColumnarValue::Array(a) => {
                let out: ArrayRef = Arc::new(blank_to_null(as_string_array(a)?));
                Ok(ColumnarValue::Array(out))
            }
        }
    }
}

/// `null_if_blank(text) -> utf8`.
pub fn null_if_blank_udf() -> ScalarUDF {
    ScalarUDF::from(NullIfBlank {
        signature: Signature::exact(vec![DataType::Utf8], Volatility::Immutable),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
