//! Region-code and ID-number functions for SQL: `region_level(code)`,
//! `region_parent(code)` and `id_number_valid(id)` (the logic is
//! [`crate::codes`]).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, StringArray};
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
            TextFn::IdValid => DataType::Boolean,
            _ => DataType::Utf8,
        })
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let input = as_string_array(&arrays[0])?;
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
            TextFn::IdValid => Arc::new(
                input
                    .iter()
                    .map(|v| v.map(id_number_valid))
                    .collect::<BooleanArray>(),
            ),
        };
        if args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)))
            && out.len() == 1
        {
            return Ok(ColumnarValue::Scalar(
                datafusion::common::ScalarValue::try_from_array(&out, 0)?,
            ));
        }
        Ok(ColumnarValue::Array(out))
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

/// `id_number_valid(id) -> bool`: the GB 11643 check-digit test.
pub fn id_number_valid_udf() -> ScalarUDF {
    text_udf("id_number_valid", TextFn::IdValid)
}
