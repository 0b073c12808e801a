//! Flag functions of the compiled rule plan: `flag_points` (score and
//! unknown points), `first_label` (outcome) and `flag_list` (the failed /
//! vetoed_by / unknown lists), and of the poverty index: `flag_mask` (the
//! deprivation pattern), working on the flags' bitmaps.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int64Array, ListArray, StringArray,
};
use datafusion::arrow::buffer::{BooleanBuffer, Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// `flag_list('a', flag_a, 'b', flag_b, …) -> list<utf8>`: the names whose
/// flag is true, in order. Used for the `failed`, `vetoed_by` and `unknown`
/// columns; registered on every engine session so plans stay serialisable
/// by name.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct FlagList {
    signature: Signature,
}

/// The `flag_list` scalar UDF.
pub fn flag_list_udf() -> ScalarUDF {
    ScalarUDF::from(FlagList {
        signature: Signature::variadic_any(Volatility::Immutable),
    })
}

impl ScalarUDFImpl for FlagList {
    fn name(&self) -> &str {
        "flag_list"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::List(Arc::new(Field::new_list_field(
            DataType::Utf8,
            true,
        ))))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let n = args.number_rows;
        let (names, flags): (Vec<String>, Vec<BooleanBuffer>) =
            flag_pairs("flag_list", &args.args, n, text_literal)?
                .into_iter()
                .unzip();
        if flags.len() > 64 {
            return datafusion::common::plan_err!("flag_list takes at most 64 flags");
        }
        // Each row's set flags as one bitmask, built flag by flag from the
        // flags' bitmaps (a null flag counts as false).
        let mut masks = vec![0u64; n];
        for (k, set) in flags.iter().enumerate() {
            for row in set.set_indices() {
                masks[row] |= 1 << k;
            }
        }
        // The lists' strings and offsets, written straight from the masks.
        let mut values = Utf8Writer::new("flag_list", n);
        let mut lists = Vec::with_capacity(n + 1);
        lists.push(0i32);
        for mask in masks {
            let mut m = mask;
            while m != 0 {
                values.push(&names[m.trailing_zeros() as usize])?;
                m &= m - 1;
            }
            lists.push(values.offset(values.len())?);
        }
        let values = values.finish()?;
        let list = ListArray::try_new(
            Arc::new(Field::new_list_field(DataType::Utf8, true)),
            OffsetBuffer::new(ScalarBuffer::from(lists)),
            Arc::new(values),
            None,
        )?;
        Ok(ColumnarValue::Array(Arc::new(list)))
    }
}

/// A text literal argument (`'name'`) of a rule UDF.
fn text_literal(v: &ScalarValue) -> Option<String> {
    match v {
        ScalarValue::Utf8(Some(text)) => Some(text.clone()),
        _ => None,
    }
}

/// A Utf8 column written straight into its bytes and offsets (what the
/// rule UDFs return), failing with an execution error rather than
/// overflowing past Arrow's 2 GiB of text per array.
struct Utf8Writer {
    function: &'static str,
    bytes: Vec<u8>,
    ends: Vec<i32>,
}

impl Utf8Writer {
    /// An empty column for `function`'s output, room for `rows` strings.
    fn new(function: &'static str, rows: usize) -> Self {
        let mut ends = Vec::with_capacity(rows + 1);
        ends.push(0);
        Utf8Writer {
            function,
            bytes: Vec::new(),
            ends,
        }
    }

    /// Strings written so far.
    fn len(&self) -> usize {
        self.ends.len() - 1
    }

    /// `at` as an Arrow i32 offset.
    fn offset(&self, at: usize) -> DfResult<i32> {
        i32::try_from(at).map_err(|_| {
            DataFusionError::Execution(format!("{}: output over 2 GiB", self.function))
        })
    }

    /// Append one string.
    fn push(&mut self, text: &str) -> DfResult<()> {
        self.bytes.extend_from_slice(text.as_bytes());
        let end = self.offset(self.bytes.len())?;
        self.ends.push(end);
        Ok(())
    }

    /// The finished column.
    fn finish(self) -> DfResult<StringArray> {
        Ok(StringArray::try_new(
            OffsetBuffer::new(ScalarBuffer::from(self.ends)),
            Buffer::from_vec(self.bytes),
            None,
        )?)
    }
}

/// The (literal, flag) pairs of a `flag_list`, `flag_points` or
/// `first_label` call, each flag as the bitmap of its true rows (a null
/// flag counts as false).
fn flag_pairs<T>(
    name: &str,
    args: &[ColumnarValue],
    rows: usize,
    literal: impl Fn(&ScalarValue) -> Option<T>,
) -> DfResult<Vec<(T, BooleanBuffer)>> {
    args.chunks(2)
        .map(|pair| {
            let [ColumnarValue::Scalar(label), flag] = pair else {
                return datafusion::common::plan_err!(
                    "{name} takes (literal, flag) pairs, got a non-literal or a lone argument"
                );
            };
            let Some(label) = literal(label) else {
                return datafusion::common::plan_err!("{name}: unexpected literal {label}");
            };
            let flag: ArrayRef = flag.to_array(rows)?;
            let flag = datafusion::common::cast::as_boolean_array(&flag)?;
            Ok((label, true_rows(flag)))
        })
        .collect()
}

/// The rows where `flag` is true, as a bitmap (a null counts as false).
fn true_rows(flag: &BooleanArray) -> BooleanBuffer {
    match flag.nulls() {
        Some(nulls) => flag.values() & nulls.inner(),
        None => flag.values().clone(),
    }
}

/// `flag_points(p_a, flag_a, p_b, flag_b, …) -> float64`: the sum of the
/// points whose flag is true (0 when none), added in argument order — the
/// rule engine's `score` and unknown points. Same value as a sum of
/// `CASE WHEN flag THEN p ELSE 0 END`, computed from the flags' bitmaps.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct FlagPoints {
    signature: Signature,
}

/// The `flag_points` scalar UDF.
pub fn flag_points_udf() -> ScalarUDF {
    ScalarUDF::from(FlagPoints {
        signature: Signature::variadic_any(Volatility::Immutable),
    })
}

impl ScalarUDFImpl for FlagPoints {
    fn name(&self) -> &str {
        "flag_points"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Float64)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let n = args.number_rows;
        let pairs = flag_pairs("flag_points", &args.args, n, |v| match v {
            ScalarValue::Float64(Some(p)) => Some(*p),
            _ => None,
        })?;
        let mut sums = vec![0.0f64; n];
        for (points, set) in &pairs {
            for row in set.set_indices() {
                sums[row] += points;
            }
        }
        Ok(ColumnarValue::Array(Arc::new(Float64Array::from(sums))))
    }
}

/// `first_label('a', cond_a, 'b', cond_b, …, 'otherwise') -> utf8`: the
/// label of the first true condition (a null condition counts as false),
/// else the last label — `CASE WHEN cond_a THEN 'a' WHEN … ELSE 'otherwise'
/// END`, computed from the conditions' bitmaps. The rule engine's `outcome`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct FirstLabel {
    signature: Signature,
}

/// The `first_label` scalar UDF.
pub fn first_label_udf() -> ScalarUDF {
    ScalarUDF::from(FirstLabel {
        signature: Signature::variadic_any(Volatility::Immutable),
    })
}

impl ScalarUDFImpl for FirstLabel {
    fn name(&self) -> &str {
        "first_label"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let n = args.number_rows;
        let Some((ColumnarValue::Scalar(ScalarValue::Utf8(Some(otherwise))), pairs)) =
            args.args.split_last()
        else {
            return datafusion::common::plan_err!("first_label ends with a text literal");
        };
        let conds = flag_pairs("first_label", pairs, n, text_literal)?;
        let mut labels: Vec<&str> = conds.iter().map(|(l, _)| l.as_str()).collect();
        labels.push(otherwise);
        // Each row's label index: later conditions first, so the first
        // true one is written last and wins.
        let mut chosen = vec![conds.len(); n];
        for (k, (_, set)) in conds.iter().enumerate().rev() {
            for row in set.set_indices() {
                chosen[row] = k;
            }
        }
        let mut out = Utf8Writer::new("first_label", n);
        for k in chosen {
            out.push(labels[k])?;
        }
        let out = out.finish()?;
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

/// `any_true(f_0, f_1, …) -> boolean`: whether any flag is true, never
/// null (a null flag counts as false) — `(f_0) IS TRUE OR (f_1) IS TRUE OR
/// …` in one pass over the flags' bitmaps. The `__bad` flag of validation
/// (`IS TRUE` compares row by row; this ands and ors 64 rows at a time).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct AnyTrue {
    signature: Signature,
}

/// The `any_true` scalar UDF.
pub fn any_true_udf() -> ScalarUDF {
    ScalarUDF::from(AnyTrue {
        signature: Signature::variadic_any(Volatility::Immutable),
    })
}

impl ScalarUDFImpl for AnyTrue {
    fn name(&self) -> &str {
        "any_true"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Boolean)
    }
    /// Never null, whatever the flags are.
    fn return_field_from_args(
        &self,
        _args: datafusion::logical_expr::ReturnFieldArgs,
    ) -> DfResult<datafusion::arrow::datatypes::FieldRef> {
        Ok(Arc::new(Field::new(self.name(), DataType::Boolean, false)))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let n = args.number_rows;
        let mut any = BooleanBuffer::new_unset(n);
        for flag in &args.args {
            match flag {
                ColumnarValue::Scalar(ScalarValue::Boolean(Some(true))) => {
                    any = BooleanBuffer::new_set(n);
                }
                ColumnarValue::Scalar(ScalarValue::Boolean(_) | ScalarValue::Null) => {}
                ColumnarValue::Scalar(other) => {
                    return datafusion::common::plan_err!(
                        "any_true takes booleans, got {}",
                        other.data_type()
                    );
                }
                ColumnarValue::Array(flag) => {
                    let flag = datafusion::common::cast::as_boolean_array(flag)?;
                    any = &any | &true_rows(flag);
                }
            }
        }
        let out = BooleanArray::new(any, None);
        if args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)))
        {
            return Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?));
        }
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

/// The most flags a `flag_mask` (one non-negative BIGINT) holds; also the
/// most indicators of a deprivation pattern and of a poverty index.
pub const MAX_FLAGS: usize = 62;

/// `flag_mask(f_0, f_1, …) -> bigint`: bit j set when flag j is true, null
/// when any flag is null; at most 62 flags. The multidimensional poverty
/// index's deprivation pattern (a household's deprivations as one key),
/// computed from the flags' bitmaps instead of a sum of CASE expressions.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct FlagMask {
    signature: Signature,
}

/// The `flag_mask` scalar UDF.
pub fn flag_mask_udf() -> ScalarUDF {
    ScalarUDF::from(FlagMask {
        signature: Signature::variadic_any(Volatility::Immutable),
    })
}

impl ScalarUDFImpl for FlagMask {
    fn name(&self) -> &str {
        "flag_mask"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Int64)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let n = args.number_rows;
        if args.args.len() > MAX_FLAGS {
            return datafusion::common::plan_err!("flag_mask takes at most {MAX_FLAGS} flags");
        }
        let mut masks = vec![0i64; n];
        let mut nulls: Option<NullBuffer> = None;
        for (j, flag) in args.args.iter().enumerate() {
            let flag: ArrayRef = flag.to_array(n)?;
            let flag = datafusion::common::cast::as_boolean_array(&flag)?;
            // A null row's value bit does not matter: the row is null.
            for row in flag.values().set_indices() {
                masks[row] |= 1 << j;
            }
            nulls = NullBuffer::union(nulls.as_ref(), flag.nulls());
        }
        Ok(ColumnarValue::Array(Arc::new(Int64Array::new(
            ScalarBuffer::from(masks),
            nulls,
        ))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The two flags the rule UDF tests share: rows (a, b) = (T, T),
    /// (null, T), (F, null), (T, F).
    fn two_flags() -> (ColumnarValue, ColumnarValue) {
        let a = BooleanArray::from(vec![Some(true), None, Some(false), Some(true)]);
        let b = BooleanArray::from(vec![Some(true), Some(true), None, Some(false)]);
        (
            ColumnarValue::Array(Arc::new(a)),
            ColumnarValue::Array(Arc::new(b)),
        )
    }

    fn text(s: &str) -> ColumnarValue {
        ColumnarValue::Scalar(ScalarValue::Utf8(Some(s.into())))
    }

    /// Call `udf` on `args` over the four rows of [`two_flags`].
    fn invoke(udf: ScalarUDF, args: Vec<ColumnarValue>) -> ArrayRef {
        let args = ScalarFunctionArgs {
            arg_fields: (0..args.len())
                .map(|_| Arc::new(Field::new("x", DataType::Boolean, true)))
                .collect(),
            args,
            number_rows: 4,
            return_field: Arc::new(Field::new("f", udf.return_type(&[]).unwrap(), true)),
            config_options: Arc::new(Default::default()),
        };
        let ColumnarValue::Array(out) = udf.invoke_with_args(args).unwrap() else {
            panic!("an array")
        };
        out
    }

    #[test]
    fn flag_list_names_the_true_flags_in_order() {
        let (a, b) = two_flags();
        let out = invoke(flag_list_udf(), vec![text("a"), a, text("bb"), b]);
        let out = datafusion::common::cast::as_list_array(&out).unwrap();
        let rows: Vec<Vec<String>> = (0..4)
            .map(|i| {
                let v = out.value(i);
                let v = datafusion::common::cast::as_string_array(&v).unwrap();
                v.iter().map(|s| s.unwrap().to_string()).collect()
            })
            .collect();
        assert_eq!(rows, [vec!["a", "bb"], vec!["bb"], vec![], vec!["a"]]);
    }

    #[test]
    fn flag_points_adds_the_points_of_true_flags() {
        let (a, b) = two_flags();
        let points = |p: f64| ColumnarValue::Scalar(ScalarValue::Float64(Some(p)));
        let out = invoke(flag_points_udf(), vec![points(30.0), a, points(2.5), b]);
        let out = datafusion::common::cast::as_float64_array(&out).unwrap();
        assert_eq!(out.null_count(), 0);
        assert_eq!(out.values().to_vec(), [32.5, 2.5, 0.0, 30.0]);
    }

    #[test]
    fn first_label_takes_the_first_true_condition() {
        let (a, b) = two_flags();
        let out = invoke(
            first_label_udf(),
            vec![text("a"), a, text("b"), b, text("none")],
        );
        let out = datafusion::common::cast::as_string_array(&out).unwrap();
        let got: Vec<&str> = out.iter().map(|s| s.unwrap()).collect();
        assert_eq!(got, ["a", "b", "none", "a"]);
    }

    #[test]
    fn any_true_is_true_where_a_flag_is_and_never_null() {
        let (a, b) = two_flags();
        let out = invoke(any_true_udf(), vec![a.clone(), b.clone()]);
        let out = datafusion::common::cast::as_boolean_array(&out).unwrap();
        assert_eq!(out.null_count(), 0);
        let got: Vec<bool> = out.values().iter().collect();
        assert_eq!(got, [true, true, false, true]);
        // A flag sliced off a longer array (its bits start mid-byte), a
        // null and a false constant: only row 2 (F, null, F, F) is false.
        let long = BooleanArray::from(vec![
            None,
            Some(true),
            Some(false),
            Some(false),
            Some(false),
        ]);
        let sliced = ColumnarValue::Array(Arc::new(long.slice(1, 4)));
        let none = ColumnarValue::Scalar(ScalarValue::Boolean(None));
        let no = ColumnarValue::Scalar(ScalarValue::Boolean(Some(false)));
        let out = invoke(any_true_udf(), vec![none, sliced, no, b]);
        let out = datafusion::common::cast::as_boolean_array(&out).unwrap();
        let got: Vec<Option<bool>> = out.iter().collect();
        assert_eq!(got, [Some(true), Some(true), Some(false), Some(false)]);
        // A true constant makes every row true.
        let yes = ColumnarValue::Scalar(ScalarValue::Boolean(Some(true)));
        let out = invoke(any_true_udf(), vec![a, yes]);
        let out = datafusion::common::cast::as_boolean_array(&out).unwrap();
        assert_eq!(out.true_count(), 4);
        // Planned as never null, also over nullable flags.
        let nullable: Vec<datafusion::arrow::datatypes::FieldRef> =
            vec![Arc::new(Field::new("x", DataType::Boolean, true))];
        let field = any_true_udf()
            .return_field_from_args(datafusion::logical_expr::ReturnFieldArgs {
                arg_fields: &nullable,
                scalar_arguments: &[None],
            })
            .unwrap();
        assert!(!field.is_nullable());
    }

    #[test]
    fn flag_mask_sets_a_bit_per_true_flag_and_is_null_when_any_flag_is() {
        let (a, b) = two_flags();
        let out = invoke(flag_mask_udf(), vec![a, b]);
        let out = datafusion::common::cast::as_int64_array(&out).unwrap();
        let got: Vec<Option<i64>> = out.iter().collect();
        assert_eq!(got, [Some(0b11), None, None, Some(0b01)]);
        let many = (0..63)
            .map(|_| ColumnarValue::Scalar(ScalarValue::Boolean(Some(true))))
            .collect::<Vec<_>>();
        let args = ScalarFunctionArgs {
            arg_fields: (0..63)
                .map(|_| Arc::new(Field::new("x", DataType::Boolean, true)))
                .collect(),
            args: many,
            number_rows: 1,
            return_field: Arc::new(Field::new("f", DataType::Int64, true)),
            config_options: Arc::new(Default::default()),
        };
        assert!(flag_mask_udf().invoke_with_args(args).is_err());
    }
}
