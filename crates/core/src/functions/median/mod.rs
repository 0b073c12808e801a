//! Exact medians over persons: `weighted_median(value, weight)`,
//! `weighted_values(value, weight)` and `weighted_median(pairs)` — the
//! median income per person of DESIGN §4, rolled up from villages to every
//! level without reading the households again.

use std::ops::Range;
use std::sync::Arc;

use super::kept;

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int64Array, ListArray, StructArray,
};
use datafusion::arrow::buffer::{OffsetBuffer, ScalarBuffer};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields};
use datafusion::common::cast::{as_float64_array, as_int64_array, as_list_array, as_struct_array};
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, EmitTo, GroupsAccumulator, Signature,
    TypeSignature, Volatility,
};

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
            pairs: Vec::new(),
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
        Ok(Box::new(WeightedMedianGroups::new(self.output)))
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
    Lists(ListPairs<'a>),
}

fn input(values: &[ArrayRef]) -> DfResult<Input<'_>> {
    if values.len() == 2 {
        return Ok(Input::Rows(
            as_float64_array(&values[0])?,
            as_int64_array(&values[1])?,
        ));
    }
    let s = as_struct_array(&values[0])?;
    Ok(Input::Lists(ListPairs::new(s.column(0), s.column(1))?))
}

impl Input<'_> {
    /// Hand the pairs of input row `row` to `f`.
    fn each(&self, row: usize, f: impl FnMut((f64, i64))) -> DfResult<()> {
        match self {
            Input::Rows(v, w) => pair_at(v, w, row).into_iter().for_each(f),
            Input::Lists(lists) => lists.each(row, f)?,
        }
        Ok(())
    }
}

/// Two list columns (values, weights) read through their offsets — no
/// array is sliced per row.
struct ListPairs<'a> {
    values: &'a ListArray,
    weights: &'a ListArray,
    v: &'a Float64Array,
    w: &'a Int64Array,
}

impl<'a> ListPairs<'a> {
    fn new(values: &'a ArrayRef, weights: &'a ArrayRef) -> DfResult<Self> {
        let (values, weights) = (as_list_array(values)?, as_list_array(weights)?);
        Ok(ListPairs {
            values,
            weights,
            v: as_float64_array(values.values())?,
            w: as_int64_array(weights.values())?,
        })
    }

    /// Whether every pair in the lists is present with weight > 0 (always
    /// so for states this module wrote), so a row's pairs can be taken as
    /// one run without looking at them one by one.
    fn clean(&self) -> bool {
        // Only the part of the child arrays these rows point into.
        let span = |offsets: &[i32]| {
            let (a, b) = (offsets[0] as usize, offsets[offsets.len() - 1] as usize);
            (a, b - a)
        };
        let (va, vn) = span(self.values.value_offsets());
        let (wa, wn) = span(self.weights.value_offsets());
        self.v.slice(va, vn).null_count() == 0
            && self.w.slice(wa, wn).null_count() == 0
            && self.w.values()[wa..wa + wn].iter().all(|w| *w > 0)
    }

    /// Row `row`'s (value start, weight start, length) in the child arrays;
    /// `None` for a null row.
    fn run(&self, row: usize) -> DfResult<Option<(usize, usize, usize)>> {
        if self.values.is_null(row) || self.weights.is_null(row) {
            return Ok(None);
        }
        let (vo, wo) = (self.values.value_offsets(), self.weights.value_offsets());
        let (v0, w0) = (vo[row] as usize, wo[row] as usize);
        let n = vo[row + 1] as usize - v0;
        if wo[row + 1] as usize - w0 != n {
            return Err(DataFusionError::Execution(format!(
                "weighted_median: row {row} has {n} values but {} weights",
                wo[row + 1] as usize - w0
            )));
        }
        Ok(Some((v0, w0, n)))
    }

    /// Hand the pairs (present, weight > 0) of list row `row` to `f`.
    fn each(&self, row: usize, mut f: impl FnMut((f64, i64))) -> DfResult<()> {
        let Some((v0, w0, n)) = self.run(row)? else {
            return Ok(());
        };
        for i in 0..n {
            let (vi, wi) = (v0 + i, w0 + i);
            if self.v.is_valid(vi) && self.w.is_valid(wi) && self.w.value(wi) > 0 {
                f((self.v.value(vi), self.w.value(wi)));
            }
        }
        Ok(())
    }
}

/// The pair of row `i`, if value and weight are present and weight > 0.
fn pair_at(v: &Float64Array, w: &Int64Array, i: usize) -> Option<(f64, i64)> {
    (v.is_valid(i) && w.is_valid(i) && w.value(i) > 0).then(|| (v.value(i), w.value(i)))
}

/// (value, weight) pairs bucketed by group: group `g`'s pairs are
/// `pairs[offsets[g]..offsets[g + 1]]`.
#[derive(Debug, Default)]
struct Buckets {
    offsets: Vec<usize>,
    pairs: Vec<(f64, i64)>,
}

impl Buckets {
    /// One bucket holding `pairs`.
    fn single(pairs: Vec<(f64, i64)>) -> Self {
        Buckets {
            offsets: vec![0, pairs.len()],
            pairs,
        }
    }

    fn groups(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// The final values of `groups`: one median each, or the pairs struct.
    /// Medians are selected in place (the buckets' order changes).
    fn finish(&mut self, groups: Range<usize>, output: Output) -> DfResult<ArrayRef> {
        Ok(match output {
            Output::Median => Arc::new(
                groups
                    .map(|g| median_in_place(&mut self.pairs[self.offsets[g]..self.offsets[g + 1]]))
                    .collect::<Float64Array>(),
            ),
            Output::Pairs => Arc::new(StructArray::new(pairs_fields(), self.state(groups)?, None)),
        })
    }

    /// The state columns of `groups`: list of values, list of weights, one
    /// row per group.
    fn state(&self, groups: Range<usize>) -> DfResult<Vec<ArrayRef>> {
        let base = self.offsets[groups.start];
        let offsets = self.offsets[groups.start..=groups.end]
            .iter()
            .map(|o| i32::try_from(o - base))
            .collect::<Result<Vec<i32>, _>>()
            .map_err(|_| too_many_pairs())?;
        let pairs = &self.pairs[base..self.offsets[groups.end]];
        Ok(state_lists(
            offsets,
            pairs.iter().map(|p| p.0).collect(),
            pairs.iter().map(|p| p.1).collect(),
        ))
    }
}

/// The error of a batch of groups holding more pairs than a list indexes.
fn too_many_pairs() -> DataFusionError {
    DataFusionError::Execution(
        "weighted_values: more than 2^31 pairs in one batch of groups".into(),
    )
}

/// The state columns (list of values, list of weights; one row per
/// group) of pairs laid out group after group, group `g` at
/// `offsets[g]..offsets[g + 1]`.
fn state_lists(offsets: Vec<i32>, values: Vec<f64>, weights: Vec<i64>) -> Vec<ArrayRef> {
    let offsets = OffsetBuffer::new(ScalarBuffer::from(offsets));
    let list = |values: ArrayRef, t: DataType| -> ArrayRef {
        Arc::new(ListArray::new(
            Arc::new(Field::new_list_field(t, true)),
            offsets.clone(),
            values,
            None,
        ))
    };
    vec![
        list(Arc::new(Float64Array::from(values)), DataType::Float64),
        list(Arc::new(Int64Array::from(weights)), DataType::Int64),
    ]
}

/// Weighted-median state of one group (used outside GROUP BY).
#[derive(Debug)]
struct WeightedMedianAccumulator {
    pairs: Vec<(f64, i64)>,
    output: Output,
}

impl Accumulator for WeightedMedianAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DfResult<()> {
        let input = input(values)?;
        for row in 0..values[0].len() {
            input.each(row, |p| self.pairs.push(p))?;
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> DfResult<()> {
        let lists = ListPairs::new(&states[0], &states[1])?;
        for row in 0..states[0].len() {
            lists.each(row, |p| self.pairs.push(p))?;
        }
        Ok(())
    }

    fn state(&mut self) -> DfResult<Vec<ScalarValue>> {
        Buckets::single(std::mem::take(&mut self.pairs))
            .state(0..1)?
            .iter()
            .map(|c| ScalarValue::try_from_array(c, 0))
            .collect()
    }

    fn evaluate(&mut self) -> DfResult<ScalarValue> {
        let mut buckets = Buckets::single(self.pairs.clone());
        ScalarValue::try_from_array(&buckets.finish(0..1, self.output)?, 0)
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.pairs.capacity() * 16
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
    let mut pairs: Vec<(f64, i64)> = values
        .iter()
        .copied()
        .zip(weights.iter().copied())
        .filter(|(_, w)| *w > 0)
        .collect();
    median_in_place(&mut pairs)
}

/// Weighted median of (value, weight > 0) pairs: the middle element(s) of
/// the list where each value is repeated `weight` times, found by weighted
/// quickselect in expected linear time (no full sort); the second middle
/// element of an even total comes out of the same selection.
///
/// Weights are summed in `i128`, so no sum of `i64` weights (from user SQL,
/// say) can overflow.
fn median_in_place(pairs: &mut [(f64, i64)]) -> Option<f64> {
    let total: i128 = pairs.iter().map(|(_, w)| i128::from(*w)).sum();
    if total == 0 {
        return None;
    }
    // 1-based positions of the middle element(s) in the expanded list.
    let lo = (total + 1) / 2;
    let hi = total / 2 + 1;
    let (a, b) = select_weighted(pairs, lo);
    if lo == hi {
        Some(a)
    } else {
        Some((a + b) / 2.0)
    }
}

/// The values at 1-based positions `pos` and `pos + 1` (1 ≤ pos ≤ Σ
/// weights) of the expanded, sorted list (values ordered by
/// `f64::total_cmp`); the second is the first when `pos` is the last.
fn select_weighted(pairs: &mut [(f64, i64)], mut pos: i128) -> (f64, f64) {
    let mut s = pairs;
    // The smallest value cut off to the right of the window (every value
    // there is at least it, and at least every value in the window).
    let mut right: Option<f64> = None;
    loop {
        let mid = s.len() / 2;
        if s.len() > 1 {
            s.select_nth_unstable_by(mid, |a, b| a.0.total_cmp(&b.0));
        }
        let below: i128 = s[..mid].iter().map(|(_, w)| i128::from(*w)).sum();
        let at = i128::from(s[mid].1);
        if pos <= below {
            right = Some(s[mid].0);
            s = &mut s[..mid];
        } else if pos <= below + at {
            let a = s[mid].0;
            if pos < below + at {
                return (a, a);
            }
            // The next value: the smallest after `mid` in the window, else
            // the smallest cut off to the right.
            let after = s[mid + 1..].iter().map(|p| p.0).min_by(f64::total_cmp);
            return (a, after.or(right).unwrap_or(a));
        } else {
            pos -= below + at;
            s = &mut s[mid + 1..];
        }
    }
}

mod groups;
mod levels;
#[cfg(test)]
mod tests;

pub use levels::level_medians_udaf;

use groups::WeightedMedianGroups;
