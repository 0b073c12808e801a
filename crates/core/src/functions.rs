//! The user-defined functions tuopin registers on every session.
//!
//! | function | kind | what |
//! |---|---|---|
//! | `region_level(code)` | scalar | level name of a 12-digit code |
//! | `region_parent(code)` | scalar | parent code |
//! | `id_number_valid(id)` | scalar | GB 11643 check-digit test |
//! | `flag_list('a', fa, 'b', fb, …)` | scalar | names whose flag is true |
//! | `flag_points(pa, fa, pb, fb, …)` | scalar | sum of the points whose flag is true |
//! | `first_label('a', ca, 'b', cb, …, 'else')` | scalar | label of the first true condition |
//! | `weighted_median(value, weight)` | aggregate | exact median of `value` repeated `weight` times |
//! | `weighted_values(value, weight)` | aggregate | a group's (value, weight) pairs, to roll up |
//! | `weighted_median(pairs)` | aggregate | the median over merged `weighted_values` |
//!
//! All are registered by name, so plans that use them stay serialisable.

use std::ops::Range;
use std::sync::Arc;

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
use datafusion::prelude::SessionContext;

use crate::codes;
use crate::rules;

/// Register every tuopin function on `ctx`.
pub fn register_all(ctx: &SessionContext) {
    ctx.register_udf(codes::region_level_udf());
    ctx.register_udf(codes::region_parent_udf());
    ctx.register_udf(codes::id_number_valid_udf());
    ctx.register_udf(rules::flag_list_udf());
    ctx.register_udf(rules::flag_points_udf());
    ctx.register_udf(rules::first_label_udf());
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

/// Whether row `i` passes the optional aggregate filter.
fn kept(filter: Option<&BooleanArray>, i: usize) -> bool {
    filter.is_none_or(|f| f.is_valid(i) && f.value(i))
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
            .map_err(|_| {
                DataFusionError::Execution(
                    "weighted_values: more than 2^31 pairs in one batch of groups".into(),
                )
            })?;
        let offsets = OffsetBuffer::new(ScalarBuffer::from(offsets));
        let pairs = &self.pairs[base..self.offsets[groups.end]];
        let list = |values: ArrayRef, t: DataType| -> ArrayRef {
            Arc::new(ListArray::new(
                Arc::new(Field::new_list_field(t, true)),
                offsets.clone(),
                values,
                None,
            ))
        };
        Ok(vec![
            list(
                Arc::new(pairs.iter().map(|p| p.0).collect::<Float64Array>()),
                DataType::Float64,
            ),
            list(
                Arc::new(pairs.iter().map(|p| p.1).collect::<Int64Array>()),
                DataType::Int64,
            ),
        ])
    }
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

/// Weighted-median state of many groups at once (the fast path DataFusion
/// uses for GROUP BY). New pairs are appended to one flat vector tagged
/// with their group — no allocation per group. The first emit buckets all
/// pairs by group with one counting sort, so each group's pairs become one
/// contiguous slice (the median is selected in place, the state lists are
/// that order); DataFusion emits a group table in chunks of a batch
/// (`EmitTo::First`), and later chunks are then slices of those buckets.
#[derive(Debug)]
struct WeightedMedianGroups {
    /// (group index, value, weight) of pairs not yet bucketed.
    fresh: Vec<(u32, f64, i64)>,
    /// Runs of pairs not yet bucketed that lie in list columns of earlier
    /// input (states, or `weighted_values` output): kept as runs of the
    /// arrays in `sources` and copied once, when bucketed.
    runs: Vec<Run>,
    sources: Vec<(Float64Array, Int64Array)>,
    /// Pairs bucketed at an emit; current group `g` is bucket `first + g`.
    done: Buckets,
    first: usize,
    /// Groups not yet emitted (DataFusion numbers them 0..num_groups).
    num_groups: usize,
    output: Output,
}

/// `len` pairs of group `group` at `v` / `w` in the value and weight
/// arrays of `sources[source]`.
#[derive(Debug)]
struct Run {
    group: u32,
    source: usize,
    v: usize,
    w: usize,
    len: usize,
}

impl WeightedMedianGroups {
    fn new(output: Output) -> Self {
        WeightedMedianGroups {
            fresh: Vec::new(),
            runs: Vec::new(),
            sources: Vec::new(),
            done: Buckets::default(),
            first: 0,
            num_groups: 0,
            output,
        }
    }

    /// Group index `g` as stored.
    fn group(g: usize) -> DfResult<u32> {
        u32::try_from(g).map_err(|_| {
            DataFusionError::Execution("weighted_median: more than 2^32 groups".into())
        })
    }

    /// Bucket every pair of the `num_groups` current groups (the buckets
    /// left from an earlier emit, then the fresh pairs) by one counting sort.
    fn bucket(&mut self) {
        let n = self.num_groups;
        let old = |g: usize| -> Range<usize> {
            let b = self.first + g;
            if b < self.done.groups() {
                self.done.offsets[b]..self.done.offsets[b + 1]
            } else {
                0..0
            }
        };
        let mut offsets = vec![0usize; n + 1];
        for g in 0..n {
            offsets[g + 1] = old(g).len();
        }
        for (g, _, _) in &self.fresh {
            offsets[*g as usize + 1] += 1;
        }
        for r in &self.runs {
            offsets[r.group as usize + 1] += r.len;
        }
        for g in 0..n {
            offsets[g + 1] += offsets[g];
        }
        let mut pairs = vec![(0.0, 0); offsets[n]];
        let mut next = offsets.clone();
        for (g, at) in next.iter_mut().take(n).enumerate() {
            let r = old(g);
            pairs[*at..*at + r.len()].copy_from_slice(&self.done.pairs[r.clone()]);
            *at += r.len();
        }
        for r in self.runs.drain(..) {
            let (v, w) = &self.sources[r.source];
            let at = &mut next[r.group as usize];
            let dst = &mut pairs[*at..*at + r.len];
            let src = v.values()[r.v..r.v + r.len].iter();
            for (d, p) in dst.iter_mut().zip(src.zip(&w.values()[r.w..r.w + r.len])) {
                *d = (*p.0, *p.1);
            }
            *at += r.len;
        }
        for (g, v, w) in self.fresh.drain(..) {
            let at = &mut next[g as usize];
            pairs[*at] = (v, w);
            *at += 1;
        }
        self.fresh = Vec::new();
        self.runs = Vec::new();
        self.sources = Vec::new();
        self.done = Buckets { offsets, pairs };
        self.first = 0;
    }

    /// Make the groups `emit_to` names the next buckets and return their
    /// range; the groups left behind are renumbered from 0.
    fn emit(&mut self, emit_to: EmitTo) -> Range<usize> {
        let n = match emit_to {
            EmitTo::All => self.num_groups,
            EmitTo::First(n) => n.min(self.num_groups),
        };
        if !self.fresh.is_empty()
            || !self.runs.is_empty()
            || self.first + self.num_groups > self.done.groups()
        {
            self.bucket();
        }
        let range = self.first..self.first + n;
        self.first += n;
        self.num_groups -= n;
        range
    }

    /// Take the pairs of list rows: as runs of the (kept) arrays when the
    /// lists are clean, else pair by pair.
    fn add_lists(
        &mut self,
        lists: &ListPairs<'_>,
        group_indices: &[usize],
        filter: Option<&BooleanArray>,
    ) -> DfResult<()> {
        if !lists.clean() {
            for (row, g) in group_indices.iter().enumerate() {
                if kept(filter, row) {
                    let g = Self::group(*g)?;
                    lists.each(row, |(v, w)| self.fresh.push((g, v, w)))?;
                }
            }
            return Ok(());
        }
        let source = self.sources.len();
        for (row, g) in group_indices.iter().enumerate() {
            if let (true, Some((v, w, len))) = (kept(filter, row), lists.run(row)?) {
                if len > 0 {
                    let group = Self::group(*g)?;
                    self.runs.push(Run {
                        group,
                        source,
                        v,
                        w,
                        len,
                    });
                }
            }
        }
        if self.runs.last().is_some_and(|r| r.source == source) {
            self.sources.push((lists.v.clone(), lists.w.clone()));
        }
        Ok(())
    }

    /// Free the buckets once every group has been emitted.
    fn release_if_done(&mut self) {
        if self.num_groups == 0 {
            self.done = Buckets::default();
            self.first = 0;
        }
    }
}

impl GroupsAccumulator for WeightedMedianGroups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> DfResult<()> {
        self.num_groups = self.num_groups.max(total_num_groups);
        match input(values)? {
            Input::Lists(lists) => self.add_lists(&lists, group_indices, opt_filter),
            input => {
                for (row, g) in group_indices.iter().enumerate() {
                    if kept(opt_filter, row) {
                        let g = Self::group(*g)?;
                        input.each(row, |(v, w)| self.fresh.push((g, v, w)))?;
                    }
                }
                Ok(())
            }
        }
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> DfResult<ArrayRef> {
        let range = self.emit(emit_to);
        let out = self.done.finish(range, self.output);
        self.release_if_done();
        out
    }

    fn state(&mut self, emit_to: EmitTo) -> DfResult<Vec<ArrayRef>> {
        let range = self.emit(emit_to);
        let out = self.done.state(range);
        self.release_if_done();
        out
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> DfResult<()> {
        self.num_groups = self.num_groups.max(total_num_groups);
        let lists = ListPairs::new(&values[0], &values[1])?;
        self.add_lists(&lists, group_indices, None)
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> DfResult<Vec<ArrayRef>> {
        // Each input row becomes the state of a group of its own.
        let input = input(values)?;
        let rows = values[0].len();
        let mut buckets = Buckets {
            offsets: vec![0],
            pairs: Vec::with_capacity(rows),
        };
        for row in 0..rows {
            if kept(opt_filter, row) {
                input.each(row, |p| buckets.pairs.push(p))?;
            }
            buckets.offsets.push(buckets.pairs.len());
        }
        buckets.state(0..rows)
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
            + self.fresh.capacity() * 24
            + self.runs.capacity() * std::mem::size_of::<Run>()
            + self
                .sources
                .iter()
                .map(|(v, w)| v.get_array_memory_size() + w.get_array_memory_size())
                .sum::<usize>()
            + self.done.pairs.capacity() * 16
            + self.done.offsets.capacity() * 8
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
/// quickselect in expected linear time (no full sort).
fn median_in_place(pairs: &mut [(f64, i64)]) -> Option<f64> {
    let total: i64 = pairs.iter().map(|(_, w)| *w).sum();
    if total == 0 {
        return None;
    }
    // 1-based positions of the middle element(s) in the expanded list.
    let lo = (total + 1) / 2;
    let hi = total / 2 + 1;
    let a = select_weighted(pairs, lo);
    if lo == hi {
        Some(a)
    } else {
        Some((a + select_weighted(pairs, hi)) / 2.0)
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
    use super::*;

    /// A small pseudo-random generator (no dependency, reproducible).
    fn lcg(mut seed: u64) -> impl FnMut() -> i64 {
        move || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as i64
        }
    }

    /// Rows spread over `groups` groups, with nulls and zero weights.
    fn rows(n: usize, groups: usize, seed: u64) -> (Vec<usize>, ArrayRef, ArrayRef) {
        let mut next = lcg(seed);
        let g = (0..n).map(|_| next() as usize % groups).collect();
        let v: Float64Array = (0..n)
            .map(|_| (next() % 9 != 0).then(|| (next() % 50) as f64 / 4.0))
            .collect();
        let w: Int64Array = (0..n)
            .map(|_| (next() % 11 != 0).then(|| next() % 5))
            .collect();
        (g, Arc::new(v), Arc::new(w))
    }

    /// The median of each group computed the slow way.
    fn expected(g: &[usize], v: &ArrayRef, w: &ArrayRef, groups: usize) -> Vec<Option<f64>> {
        let (v, w) = (as_float64_array(v).unwrap(), as_int64_array(w).unwrap());
        (0..groups)
            .map(|k| {
                let (vs, ws): (Vec<f64>, Vec<i64>) = (0..g.len())
                    .filter(|i| g[*i] == k && v.is_valid(*i) && w.is_valid(*i))
                    .map(|i| (v.value(i), w.value(i)))
                    .unzip();
                weighted_median(&vs, &ws)
            })
            .collect()
    }

    fn medians(a: &ArrayRef) -> Vec<Option<f64>> {
        as_float64_array(a).unwrap().iter().collect()
    }

    #[test]
    fn groups_accumulator_emits_in_chunks() {
        let (g, v, w) = rows(5000, 37, 11);
        let want = expected(&g, &v, &w, 37);
        let mut acc = WeightedMedianGroups::new(Output::Median);
        // Two batches, the second adding no new group.
        acc.update_batch(&[v.slice(0, 3000), w.slice(0, 3000)], &g[..3000], None, 37)
            .unwrap();
        acc.update_batch(
            &[v.slice(3000, 2000), w.slice(3000, 2000)],
            &g[3000..],
            None,
            37,
        )
        .unwrap();
        let mut got = medians(&acc.evaluate(EmitTo::First(10)).unwrap());
        got.extend(medians(&acc.evaluate(EmitTo::First(20)).unwrap()));
        got.extend(medians(&acc.evaluate(EmitTo::All).unwrap()));
        assert_eq!(got, want);
        assert_eq!(acc.num_groups, 0);
    }

    #[test]
    fn groups_state_merges_to_the_same_medians() {
        let (g, v, w) = rows(4000, 23, 5);
        let want = expected(&g, &v, &w, 23);
        // Partial phase: two accumulators over halves, states in chunks.
        let mut merged = WeightedMedianGroups::new(Output::Median);
        for (lo, hi) in [(0, 2000), (2000, 4000)] {
            let mut part = WeightedMedianGroups::new(Output::Pairs);
            part.update_batch(
                &[v.slice(lo, hi - lo), w.slice(lo, hi - lo)],
                &g[lo..hi],
                None,
                23,
            )
            .unwrap();
            let first = part.state(EmitTo::First(7)).unwrap();
            let rest = part.state(EmitTo::All).unwrap();
            merged
                .merge_batch(&first, &(0..7).collect::<Vec<_>>(), 23)
                .unwrap();
            merged
                .merge_batch(&rest, &(7..23).collect::<Vec<_>>(), 23)
                .unwrap();
        }
        assert_eq!(medians(&merged.evaluate(EmitTo::All).unwrap()), want);
    }

    #[test]
    fn groups_updates_after_a_partial_emit_are_kept() {
        let (g, v, w) = rows(600, 6, 3);
        let mut acc = WeightedMedianGroups::new(Output::Median);
        acc.update_batch(&[v.slice(0, 300), w.slice(0, 300)], &g[..300], None, 6)
            .unwrap();
        let first = medians(&acc.evaluate(EmitTo::First(2)).unwrap());
        // Groups 2..6 are now 0..4; more rows arrive for them.
        let shifted: Vec<usize> = g[300..].iter().map(|k| k.saturating_sub(2)).collect();
        let keep: Vec<bool> = g[300..].iter().map(|k| *k >= 2).collect();
        let filter = BooleanArray::from(keep);
        acc.update_batch(
            &[v.slice(300, 300), w.slice(300, 300)],
            &shifted,
            Some(&filter),
            4,
        )
        .unwrap();
        let rest = medians(&acc.evaluate(EmitTo::All).unwrap());
        let all_rows: Vec<usize> = (0..600).filter(|i| *i < 300 || g[*i] >= 2).collect();
        let gi: Vec<usize> = all_rows.iter().map(|i| g[*i]).collect();
        let idx = Int64Array::from(all_rows.iter().map(|i| *i as i64).collect::<Vec<_>>());
        let take = |a: &ArrayRef| datafusion::arrow::compute::take(a, &idx, None).unwrap();
        let want = expected(&gi, &take(&v), &take(&w), 6);
        assert_eq!(first, want[..2]);
        assert_eq!(rest, want[2..]);
    }

    #[test]
    fn missing_pairs_inside_lists_are_skipped() {
        use datafusion::arrow::datatypes::{Float64Type, Int64Type};
        let values: ArrayRef = Arc::new(ListArray::from_iter_primitive::<Float64Type, _, _>(vec![
            Some(vec![Some(1.0), None, Some(3.0), Some(100.0)]),
            Some(vec![Some(8.0)]),
        ]));
        let weights: ArrayRef = Arc::new(ListArray::from_iter_primitive::<Int64Type, _, _>(vec![
            Some(vec![Some(1), Some(5), Some(1), Some(0)]),
            Some(vec![Some(2)]),
        ]));
        let mut acc = WeightedMedianGroups::new(Output::Median);
        acc.merge_batch(&[values, weights], &[0, 1], 2).unwrap();
        // Group 0: 1 ×1, 3 ×1 (the null value and the zero weight skipped).
        assert_eq!(
            medians(&acc.evaluate(EmitTo::All).unwrap()),
            [Some(2.0), Some(8.0)]
        );
    }

    #[test]
    fn mismatched_pair_lists_are_an_error() {
        let values: ArrayRef = Arc::new(ListArray::from_iter_primitive::<
            datafusion::arrow::datatypes::Float64Type,
            _,
            _,
        >(vec![Some(vec![Some(1.0), Some(2.0)])]));
        let weights: ArrayRef = Arc::new(ListArray::from_iter_primitive::<
            datafusion::arrow::datatypes::Int64Type,
            _,
            _,
        >(vec![Some(vec![Some(1)])]));
        let mut acc = WeightedMedianGroups::new(Output::Median);
        let err = acc.merge_batch(&[values, weights], &[0], 1).unwrap_err();
        assert!(err.to_string().contains("2 values but 1 weights"), "{err}");
    }

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
