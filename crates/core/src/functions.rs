//! The user-defined functions tuopin registers on every session.
//!
//! | function | kind | what |
//! |---|---|---|
//! | `region_level(code)` | scalar | level name of a 12-digit code |
//! | `region_parent(code)` | scalar | parent code |
//! | `id_number_valid(id)` | scalar | GB 11643 check-digit test |
//! | `flag_list('a', fa, 'b', fb, …)` | scalar | names whose flag is true |
//! | `weighted_median(value, weight)` | aggregate | exact median of `value` repeated `weight` times |
//! | `weighted_values(value, weight)` | aggregate | a group's (value, weight) pairs, to roll up |
//! | `weighted_median(pairs)` | aggregate | the median over merged `weighted_values` |
//!
//! All are registered by name, so plans that use them stay serialisable.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int64Array, ListArray, StructArray,
};
use datafusion::arrow::buffer::{OffsetBuffer, ScalarBuffer};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields};
use datafusion::common::cast::{as_float64_array, as_int64_array, as_list_array, as_struct_array};
use datafusion::common::ScalarValue;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, EmitTo, GroupsAccumulator, Signature,
    TypeSignature, Volatility,
};
use datafusion::prelude::SessionContext;

use crate::codes;
use crate::rules;

/// Register every tuopin function on `ctx`.
pub fn register_all(ctx: &SessionContext) {
    ctx.register_udf(codes::region_level_udf());
    ctx.register_udf(codes::region_parent_udf());
    ctx.register_udf(codes::id_number_valid_udf());
    ctx.register_udf(rules::flag_list_udf());
    ctx.register_udaf(weighted_median_udaf());
    ctx.register_udaf(weighted_values_udaf());
}

/// `weighted_median(value float64, weight int64) -> float64`: the exact
/// median of the multiset in which each non-null `value` appears `weight`
/// times (weights ≤ 0 or null are skipped). With an even total weight it is
/// the mean of the two middle values, like SQL `median` on the expanded
/// rows. Used for the median income per person, weights = household size.
///
/// `weighted_median(pairs)` takes instead the output of
/// [`weighted_values_udaf`] and gives the median over all the pairs of the
/// merged groups — the exact median of a province computed from its
/// villages' pairs, without reading the households again:
///
/// ```sql
/// WITH v AS (SELECT village, weighted_values(income, size) AS p FROM h GROUP BY village)
/// SELECT county, weighted_median(p) FROM v GROUP BY county
/// ```
pub fn weighted_median_udaf() -> AggregateUDF {
    AggregateUDF::from(WeightedMedian {
        signature: pairs_signature(),
        output: Output::Median,
    })
}

/// `weighted_values(value float64, weight int64) -> struct<values, weights>`
/// (or `weighted_values(pairs)`, merging): the group's (value, weight > 0)
/// pairs as two lists, for rolling an exact [`weighted_median_udaf`] up a
/// hierarchy.
pub fn weighted_values_udaf() -> AggregateUDF {
    AggregateUDF::from(WeightedMedian {
        signature: pairs_signature(),
        output: Output::Pairs,
    })
}

/// Accepted arguments: `(float64, int64)` or one pairs struct.
fn pairs_signature() -> Signature {
    Signature::one_of(
        vec![
            TypeSignature::Exact(vec![DataType::Float64, DataType::Int64]),
            TypeSignature::Exact(vec![pairs_type()]),
        ],
        Volatility::Immutable,
    )
}

fn list_of(t: DataType) -> DataType {
    DataType::List(Arc::new(Field::new_list_field(t, true)))
}

/// `struct<values: list<float64>, weights: list<int64>>`.
fn pairs_type() -> DataType {
    DataType::Struct(pairs_fields())
}

fn pairs_fields() -> Fields {
    Fields::from(vec![
        Field::new("values", list_of(DataType::Float64), true),
        Field::new("weights", list_of(DataType::Int64), true),
    ])
}

/// What the aggregate returns: the median, or the pairs themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Output {
    Median,
    Pairs,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct WeightedMedian {
    signature: Signature,
    output: Output,
}

impl AggregateUDFImpl for WeightedMedian {
    fn name(&self) -> &str {
        match self.output {
            Output::Median => "weighted_median",
            Output::Pairs => "weighted_values",
        }
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(match self.output {
            Output::Median => DataType::Float64,
            Output::Pairs => pairs_type(),
        })
    }
    fn accumulator(&self, _args: AccumulatorArgs) -> DfResult<Box<dyn Accumulator>> {
        Ok(Box::new(WeightedMedianAccumulator {
            pairs: Pairs::new(),
            output: self.output,
        }))
    }
    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }
    fn create_groups_accumulator(
        &self,
        _args: AccumulatorArgs,
    ) -> DfResult<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(WeightedMedianGroups {
            groups: Vec::new(),
            output: self.output,
        }))
    }
    fn state_fields(&self, args: StateFieldsArgs) -> DfResult<Vec<FieldRef>> {
        // The state is the pairs struct's two lists, named after the call.
        Ok(pairs_fields()
            .iter()
            .map(|f| {
                Arc::new(Field::new(
                    format!("{}_{}", args.name, f.name()),
                    f.data_type().clone(),
                    true,
                ))
            })
            .collect())
    }
}

/// The input of an update: (value, weight) columns, or the two list
/// columns of a pairs struct.
enum Input<'a> {
    Rows(&'a Float64Array, &'a Int64Array),
    Lists(&'a ListArray, &'a ListArray),
}

fn input(values: &[ArrayRef]) -> DfResult<Input<'_>> {
    if values.len() == 2 {
        return Ok(Input::Rows(
            as_float64_array(&values[0])?,
            as_int64_array(&values[1])?,
        ));
    }
    let s = as_struct_array(&values[0])?;
    Ok(Input::Lists(
        as_list_array(s.column(0))?,
        as_list_array(s.column(1))?,
    ))
}

impl Input<'_> {
    /// Append the pairs of input row `row` to `dst`.
    fn append(&self, dst: &mut Pairs, row: usize) -> DfResult<()> {
        match self {
            Input::Rows(v, w) => dst.extend(pair_at(v, w, row)),
            Input::Lists(vs, ws) => merge_state_row(dst, vs, ws, row)?,
        }
        Ok(())
    }
}

/// The final value of one group.
fn finish(output: Output, groups: Vec<Pairs>) -> ArrayRef {
    match output {
        Output::Median => Arc::new(
            groups
                .into_iter()
                .map(median_of_pairs)
                .collect::<Float64Array>(),
        ),
        Output::Pairs => Arc::new(StructArray::new(
            pairs_fields(),
            state_columns(groups),
            None,
        )),
    }
}

/// (value, weight) pairs collected for one group.
type Pairs = Vec<(f64, i64)>;

/// The pair of row `i`, if value and weight are present and weight > 0.
fn pair_at(v: &Float64Array, w: &Int64Array, i: usize) -> Option<(f64, i64)> {
    (v.is_valid(i) && w.is_valid(i) && w.value(i) > 0).then(|| (v.value(i), w.value(i)))
}

/// Whether row `i` passes the optional aggregate filter.
fn kept(filter: Option<&BooleanArray>, i: usize) -> bool {
    filter.is_none_or(|f| f.is_valid(i) && f.value(i))
}

/// Append the pairs of state row `row` (two list columns) to `dst`.
fn merge_state_row(dst: &mut Pairs, vs: &ListArray, ws: &ListArray, row: usize) -> DfResult<()> {
    if vs.is_valid(row) && ws.is_valid(row) {
        let (v, w) = (vs.value(row), ws.value(row));
        let (v, w) = (as_float64_array(&v)?, as_int64_array(&w)?);
        dst.extend((0..v.len()).filter_map(|i| pair_at(v, w, i)));
    }
    Ok(())
}

/// The state columns (list of values, list of weights) of `groups`.
fn state_columns(groups: impl IntoIterator<Item = Pairs>) -> Vec<ArrayRef> {
    let mut offsets = vec![0i32];
    let (mut vs, mut ws) = (Vec::new(), Vec::new());
    for g in groups {
        for (v, w) in g {
            vs.push(v);
            ws.push(w);
        }
        offsets.push(vs.len() as i32);
    }
    let list = |values: ArrayRef, offsets: Vec<i32>, t: DataType| -> ArrayRef {
        Arc::new(ListArray::new(
            Arc::new(Field::new_list_field(t, true)),
            OffsetBuffer::new(ScalarBuffer::from(offsets)),
            values,
            None,
        ))
    };
    vec![
        list(
            Arc::new(Float64Array::from(vs)),
            offsets.clone(),
            DataType::Float64,
        ),
        list(Arc::new(Int64Array::from(ws)), offsets, DataType::Int64),
    ]
}

/// Weighted-median state of one group (used outside GROUP BY).
#[derive(Debug)]
struct WeightedMedianAccumulator {
    pairs: Pairs,
    output: Output,
}

impl Accumulator for WeightedMedianAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DfResult<()> {
        let input = input(values)?;
        for row in 0..values[0].len() {
            input.append(&mut self.pairs, row)?;
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> DfResult<()> {
        let vs = as_list_array(&states[0])?;
        let ws = as_list_array(&states[1])?;
        for row in 0..vs.len() {
            merge_state_row(&mut self.pairs, vs, ws, row)?;
        }
        Ok(())
    }

    fn state(&mut self) -> DfResult<Vec<ScalarValue>> {
        state_columns([std::mem::take(&mut self.pairs)])
            .iter()
            .map(|c| ScalarValue::try_from_array(c, 0))
            .collect()
    }

    fn evaluate(&mut self) -> DfResult<ScalarValue> {
        ScalarValue::try_from_array(&finish(self.output, vec![self.pairs.clone()]), 0)
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.pairs.capacity() * 16
    }
}

/// Weighted-median state of many groups at once (the fast path DataFusion
/// uses for GROUP BY): one vector of (value, weight) pairs per group.
#[derive(Debug)]
struct WeightedMedianGroups {
    groups: Vec<Pairs>,
    output: Output,
}

impl GroupsAccumulator for WeightedMedianGroups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> DfResult<()> {
        self.groups.resize_with(total_num_groups, Vec::new);
        let input = input(values)?;
        for (row, g) in group_indices.iter().enumerate() {
            if kept(opt_filter, row) {
                input.append(&mut self.groups[*g], row)?;
            }
        }
        Ok(())
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> DfResult<ArrayRef> {
        Ok(finish(self.output, emit_to.take_needed(&mut self.groups)))
    }

    fn state(&mut self, emit_to: EmitTo) -> DfResult<Vec<ArrayRef>> {
        Ok(state_columns(emit_to.take_needed(&mut self.groups)))
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> DfResult<()> {
        self.groups.resize_with(total_num_groups, Vec::new);
        let vs = as_list_array(&values[0])?;
        let ws = as_list_array(&values[1])?;
        for (row, g) in group_indices.iter().enumerate() {
            merge_state_row(&mut self.groups[*g], vs, ws, row)?;
        }
        Ok(())
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> DfResult<Vec<ArrayRef>> {
        // Each input row becomes the state of a group of its own.
        let input = input(values)?;
        let mut groups = Vec::with_capacity(values[0].len());
        for row in 0..values[0].len() {
            let mut pairs = Pairs::new();
            if kept(opt_filter, row) {
                input.append(&mut pairs, row)?;
            }
            groups.push(pairs);
        }
        Ok(state_columns(groups))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
            + self.groups.capacity() * std::mem::size_of::<Pairs>()
            + self.groups.iter().map(|g| g.capacity() * 16).sum::<usize>()
    }
}

/// Exact weighted median (see [`weighted_median_udaf`]).
///
/// ```
/// // 1 ×1, 5 ×2, 9 ×1 → 1 5 5 9 → (5 + 5) / 2
/// assert_eq!(tuopin::functions::weighted_median(&[9.0, 1.0, 5.0], &[1, 1, 2]), Some(5.0));
/// // 1 ×1, 3 ×1 → 2
/// assert_eq!(tuopin::functions::weighted_median(&[1.0, 3.0], &[1, 1]), Some(2.0));
/// ```
pub fn weighted_median(values: &[f64], weights: &[i64]) -> Option<f64> {
    median_of_pairs(
        values
            .iter()
            .copied()
            .zip(weights.iter().copied())
            .filter(|(_, w)| *w > 0)
            .collect(),
    )
}

/// Weighted median of (value, weight > 0) pairs: the middle element(s) of
/// the list where each value is repeated `weight` times, found by weighted
/// quickselect in expected linear time (no full sort).
fn median_of_pairs(mut pairs: Vec<(f64, i64)>) -> Option<f64> {
    let total: i64 = pairs.iter().map(|(_, w)| *w).sum();
    if total == 0 {
        return None;
    }
    // 1-based positions of the middle element(s) in the expanded list.
    let lo = (total + 1) / 2;
    let hi = total / 2 + 1;
    let a = select_weighted(&mut pairs, lo);
    if lo == hi {
        Some(a)
    } else {
        Some((a + select_weighted(&mut pairs, hi)) / 2.0)
    }
}

/// The value at 1-based position `pos` (1 ≤ pos ≤ Σ weights) of the
/// expanded, sorted list (values ordered by `f64::total_cmp`).
fn select_weighted(pairs: &mut [(f64, i64)], mut pos: i64) -> f64 {
    let mut s = pairs;
    loop {
        if s.len() == 1 {
            return s[0].0;
        }
        let mid = s.len() / 2;
        s.select_nth_unstable_by(mid, |a, b| a.0.total_cmp(&b.0));
        let below: i64 = s[..mid].iter().map(|(_, w)| *w).sum();
        let at = s[mid].1;
        if pos <= below {
            s = &mut s[..mid];
        } else if pos <= below + at {
            return s[mid].0;
        } else {
            pos -= below + at;
            s = &mut s[mid + 1..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::weighted_median;

    #[test]
    fn weighted_median_matches_expanded_median() {
        let values = [3.0, -1.0, 7.5, 2.0, 2.0];
        let weights = [2, 1, 3, 1, 4];
        let mut expanded: Vec<f64> = values
            .iter()
            .zip(weights)
            .flat_map(|(v, w)| std::iter::repeat_n(*v, w as usize))
            .collect();
        expanded.sort_by(f64::total_cmp);
        let n = expanded.len();
        let expected = if n % 2 == 1 {
            expanded[n / 2]
        } else {
            (expanded[n / 2 - 1] + expanded[n / 2]) / 2.0
        };
        assert_eq!(weighted_median(&values, &weights), Some(expected));
        assert_eq!(weighted_median(&[], &[]), None);
        // Many pseudo-random cases with ties and even/odd totals.
        let mut seed = 7u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as i64
        };
        for n in 1..60 {
            let values: Vec<f64> = (0..n).map(|_| (next() % 10) as f64 - 3.0).collect();
            let weights: Vec<i64> = (0..n).map(|_| next() % 4).collect();
            let mut expanded: Vec<f64> = values
                .iter()
                .zip(&weights)
                .flat_map(|(v, w)| std::iter::repeat_n(*v, *w as usize))
                .collect();
            expanded.sort_by(f64::total_cmp);
            let m = expanded.len();
            let expected = match m {
                0 => None,
                _ if m % 2 == 1 => Some(expanded[m / 2]),
                _ => Some((expanded[m / 2 - 1] + expanded[m / 2]) / 2.0),
            };
            assert_eq!(weighted_median(&values, &weights), expected, "case {n}");
        }
        assert_eq!(weighted_median(&[1.0], &[0]), None);
    }
}
