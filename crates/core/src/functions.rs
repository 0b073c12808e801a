//! The user-defined functions tuopin registers on every session.
//!
//! | function | kind | what |
//! |---|---|---|
//! | `region_level(code)` | scalar | level name of a 12-digit code |
//! | `region_parent(code)` | scalar | parent code |
//! | `id_number_valid(id)` | scalar | GB 11643 check-digit test |
//! | `flag_list('a', fa, 'b', fb, …)` | scalar | names whose flag is true |
//! | `weighted_median(value, weight)` | aggregate | exact median of `value` repeated `weight` times |
//!
//! All are registered by name, so plans that use them stay serialisable.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int64Array, ListArray,
};
use datafusion::arrow::buffer::{OffsetBuffer, ScalarBuffer};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::cast::{as_float64_array, as_int64_array, as_list_array};
use datafusion::common::ScalarValue;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, EmitTo, GroupsAccumulator, Signature, Volatility,
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
}

/// `weighted_median(value float64, weight int64) -> float64`: the exact
/// median of the multiset in which each non-null `value` appears `weight`
/// times (weights ≤ 0 or null are skipped). With an even total weight it is
/// the mean of the two middle values, like SQL `median` on the expanded
/// rows. Used for the median income per person, weights = household size.
pub fn weighted_median_udaf() -> AggregateUDF {
    AggregateUDF::from(WeightedMedian {
        signature: Signature::exact(
            vec![DataType::Float64, DataType::Int64],
            Volatility::Immutable,
        ),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct WeightedMedian {
    signature: Signature,
}

impl AggregateUDFImpl for WeightedMedian {
    fn name(&self) -> &str {
        "weighted_median"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Float64)
    }
    fn accumulator(&self, _args: AccumulatorArgs) -> DfResult<Box<dyn Accumulator>> {
        Ok(Box::<WeightedMedianAccumulator>::default())
    }
    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }
    fn create_groups_accumulator(
        &self,
        _args: AccumulatorArgs,
    ) -> DfResult<Box<dyn GroupsAccumulator>> {
        Ok(Box::<WeightedMedianGroups>::default())
    }
    fn state_fields(&self, args: StateFieldsArgs) -> DfResult<Vec<FieldRef>> {
        let list = |t: DataType| DataType::List(Arc::new(Field::new_list_field(t, true)));
        Ok(vec![
            Arc::new(Field::new(
                format!("{}_values", args.name),
                list(DataType::Float64),
                true,
            )),
            Arc::new(Field::new(
                format!("{}_weights", args.name),
                list(DataType::Int64),
                true,
            )),
        ])
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
#[derive(Debug, Default)]
struct WeightedMedianAccumulator {
    pairs: Pairs,
}

impl Accumulator for WeightedMedianAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DfResult<()> {
        let v = as_float64_array(&values[0])?;
        let w = as_int64_array(&values[1])?;
        self.pairs
            .extend((0..v.len()).filter_map(|i| pair_at(v, w, i)));
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
        Ok(ScalarValue::Float64(median_of_pairs(self.pairs.clone())))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.pairs.capacity() * 16
    }
}

/// Weighted-median state of many groups at once (the fast path DataFusion
/// uses for GROUP BY): one vector of (value, weight) pairs per group.
#[derive(Debug, Default)]
struct WeightedMedianGroups {
    groups: Vec<Pairs>,
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
        let v = as_float64_array(&values[0])?;
        let w = as_int64_array(&values[1])?;
        for (row, g) in group_indices.iter().enumerate() {
            if let Some(p) = pair_at(v, w, row).filter(|_| kept(opt_filter, row)) {
                self.groups[*g].push(p);
            }
        }
        Ok(())
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> DfResult<ArrayRef> {
        let taken = emit_to.take_needed(&mut self.groups);
        Ok(Arc::new(
            taken
                .into_iter()
                .map(median_of_pairs)
                .collect::<Float64Array>(),
        ))
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
        let v = as_float64_array(&values[0])?;
        let w = as_int64_array(&values[1])?;
        Ok(state_columns((0..v.len()).map(|row| {
            pair_at(v, w, row)
                .filter(|_| kept(opt_filter, row))
                .into_iter()
                .collect::<Pairs>()
        })))
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

/// Weighted median of (value, weight > 0) pairs.
fn median_of_pairs(mut pairs: Vec<(f64, i64)>) -> Option<f64> {
    let total: i64 = pairs.iter().map(|(_, w)| *w).sum();
    if total == 0 {
        return None;
    }
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    // 1-based positions of the middle element(s) in the expanded list.
    let lo = (total + 1) / 2;
    let hi = total / 2 + 1;
    let at = |pos: i64| -> f64 {
        let mut seen = 0;
        for (v, w) in &pairs {
            seen += w;
            if seen >= pos {
                return *v;
            }
        }
        pairs[pairs.len() - 1].0
    };
    if total % 2 == 1 {
        Some(at(lo))
    } else {
        Some((at(lo) + at(hi)) / 2.0)
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
        assert_eq!(weighted_median(&[1.0], &[0]), None);
    }
}
