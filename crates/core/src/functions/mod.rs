//! The user-defined functions tuopin registers on every session.
//!
//! | function | kind | what |
//! |---|---|---|
//! | `region_level(code)` | scalar | level name of a 12-digit code |
//! | `region_parent(code)` | scalar | parent code |
//! | `region_code_valid(code)` | scalar | whether a code is well formed |
//! | `village_code_valid(code)` | scalar | whether a code is a well-formed village code |
//! | `id_number_valid(id)` | scalar | GB 11643 check-digit test |
//! | `region_code_number(code)` | scalar | a 12-digit code as a BIGINT (null otherwise) |
//! | `null_if_blank(text)` | scalar | null for empty or blank text |
//! | `relabel(text, 'label', 'value', …)` | scalar | exported labels read as values |
//! | `not_in_list(text, 'a', 'b', …)` | scalar | whether a value is outside a code list |
//! | `export_value(text, 'bool'/'date'/'number')` | scalar | an export's cell in the form a cast reads |
//! | `flag_list('a', fa, 'b', fb, …)` | scalar | names whose flag is true |
//! | `flag_points(pa, fa, pb, fb, …)` | scalar | sum of the points whose flag is true |
//! | `flag_mask(fa, fb, …)` | scalar | bitmask of the true flags (null if any is null) |
//! | `any_true(fa, fb, …)` | scalar | whether any flag is true (null counts as false; never null) |
//! | `first_label('a', ca, 'b', cb, …, 'else')` | scalar | label of the first true condition |
//! | `weighted_median(value, weight)` | aggregate | exact median of `value` repeated `weight` times |
//! | `weighted_values(value, weight)` | aggregate | a group's (value, weight) pairs, to roll up |
//! | `weighted_median(pairs)` | aggregate | the median over merged `weighted_values` |
//! | `level_medians(village, value, weight)` | aggregate | the weighted median of every region at every level, as a list of `{code, median}` |
//! | `deprivation_sums(pattern, persons)`, `deprivation_sums(sums)` | aggregate | the integer sums of one poverty index, and their roll-up (made per index, not registered here) |
//! | `mpi_measures(sums)` | scalar | a region's measures at each cut-off, as a list (made per index, not registered here) |
//!
//! All but `deprivation_sums` and `mpi_measures` are registered by name,
//! so plans that use them stay serialisable.

pub mod codes;
pub mod deprivation;
pub mod flags;
pub mod forms;
pub mod measures;
pub mod median;
pub mod text;

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray};
use datafusion::common::ScalarValue;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs};
use datafusion::prelude::SessionContext;

pub use median::{level_medians_udaf, weighted_median, weighted_median_udaf, weighted_values_udaf};

/// Whether an aggregate's FILTER keeps row `i` (no filter keeps all).
pub(crate) fn kept(filter: Option<&BooleanArray>, i: usize) -> bool {
    filter.is_none_or(|f| f.is_valid(i) && f.value(i))
}

/// The first argument of a scalar function call as an array, and whether
/// it was a scalar (one row; the result is then a scalar too, see
/// [`result`]).
pub(crate) fn first_argument(args: &ScalarFunctionArgs) -> DfResult<(ArrayRef, bool)> {
    match &args.args[0] {
        ColumnarValue::Array(a) => Ok((a.clone(), false)),
        ColumnarValue::Scalar(s) => Ok((s.to_array_of_size(1)?, true)),
    }
}

/// A scalar function's result `out`: its one value when the argument was
/// a scalar ([`first_argument`]), else the array.
pub(crate) fn result(out: ArrayRef, scalar: bool) -> DfResult<ColumnarValue> {
    if scalar {
        Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?))
    } else {
        Ok(ColumnarValue::Array(out))
    }
}

/// `cases` as the rows of an SQL `VALUES` list of one text column, for
/// tests that compare a function with the SQL it stands for.
#[cfg(test)]
pub(crate) fn values_rows(cases: &[&str]) -> String {
    cases
        .iter()
        .map(|c| format!("('{c}')"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Register every tuopin function on `ctx`.
pub fn register_all(ctx: &SessionContext) {
    ctx.register_udf(codes::region_level_udf());
    ctx.register_udf(codes::region_parent_udf());
    ctx.register_udf(codes::region_code_valid_udf());
    ctx.register_udf(codes::village_code_valid_udf());
    ctx.register_udf(codes::id_number_valid_udf());
    ctx.register_udf(codes::region_code_number_udf());
    ctx.register_udf(flags::flag_list_udf());
    ctx.register_udf(flags::flag_points_udf());
    ctx.register_udf(flags::first_label_udf());
    ctx.register_udf(flags::flag_mask_udf());
    ctx.register_udf(flags::any_true_udf());
    ctx.register_udf(text::null_if_blank_udf());
    ctx.register_udf(text::relabel_udf());
    ctx.register_udf(text::not_in_list_udf());
    ctx.register_udf(forms::export_value_udf());
    ctx.register_udaf(weighted_median_udaf());
    ctx.register_udaf(weighted_values_udaf());
    ctx.register_udaf(level_medians_udaf());
}
