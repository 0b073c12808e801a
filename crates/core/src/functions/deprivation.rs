//! `deprivation_sums(pattern, persons)`: the integer sums behind the
//! Alkire–Foster index ([`crate::mpi`]) of a group of households, in one
//! pass and without a score column per household.
//!
//! Each household comes as its deprivation `pattern` (bit j set: deprived
//! in indicator j, as [`super::flags::flag_mask_udf`] gives it; null or
//! negative: some indicator unknown) and its `persons`. The function is
//! made for one index ([`deprivation_sums_udaf`]) with its normalised
//! weights w_j and cut-offs k_i — they are part of the function, not
//! arguments, because an aggregate's literal arguments are repeated into a
//! column for every row. A household is poor at k_i when its score
//! Σ_j w_j·d_j (added in indicator order) is ≥ k_i − [`K_TOLERANCE`]. The
//! result is a struct of 2 + n + c·(1 + n) BIGINTs (n indicators, c
//! cut-offs; names from [`sum_names`], j and i from 0):
//!
//! | field | sum |
//! |---|---|
//! | `excluded` | households with an unknown indicator |
//! | `population` | persons in households with every indicator known |
//! | `u<j>` | of those, persons deprived in indicator j |
//! | `pp<i>` | persons poor at cut-off i |
//! | `c<j>_<i>` | of those, persons deprived in indicator j |
//!
//! Integer sums, so any grouping and any partitioning give the same
//! result; partial results (a list of the sums) merge by adding. The index registers
//! its instance on the session state of its own plan only; a distributed
//! run (Ballista) needs a codec that carries the weights and cut-offs.
//!
//! ```sql
//! SELECT village_code,
//!        deprivation_sums(flag_mask(NOT p_income, NOT p_water), CAST(size AS BIGINT)) AS sums
//! FROM f GROUP BY village_code
//! -- then sums['population'], sums['u0'], sums['pp0'], …
//! ```

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, Int64Array, ListArray, StructArray};
use datafusion::arrow::buffer::{OffsetBuffer, ScalarBuffer};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields};
use datafusion::common::cast::{as_int64_array, as_list_array};
use datafusion::common::{exec_err, plan_err, ScalarValue};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, EmitTo, GroupsAccumulator, Signature, Volatility,
};

use super::flags::MAX_FLAGS;
use super::kept;

/// The tolerance of the cut-off comparison (DESIGN §9): poor at k iff the
/// score is ≥ k − 1e-9, so k = 0.5 takes a score of exactly one half
/// whatever the float order.
pub const K_TOLERANCE: f64 = 1e-9;

/// The `deprivation_sums` aggregate UDF of an index with these normalised
/// `weights` (at most 62) and `cutoffs` (see the module doc).
pub fn deprivation_sums_udaf(weights: &[f64], cutoffs: &[f64]) -> AggregateUDF {
    AggregateUDF::from(DeprivationSums {
        signature: Signature::exact(
            vec![DataType::Int64, DataType::Int64],
            Volatility::Immutable,
        ),
        params: Params {
            weights: weights.to_vec(),
            cutoffs: cutoffs.to_vec(),
        },
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct DeprivationSums {
    signature: Signature,
    params: Params,
}

fn list_type() -> DataType {
    DataType::List(Arc::new(Field::new_list_field(DataType::Int64, true)))
}

/// The names of the sums, in order: `excluded`, `population`, `u<j>` for
/// each indicator, then for each cut-off i `pp<i>` and `c<j>_<i>` (j, i
/// from 0) — the fields of `deprivation_sums`' result.
pub fn sum_names(indicators: usize, cutoffs: usize) -> Vec<String> {
    let mut names = vec!["excluded".to_string(), "population".to_string()];
    names.extend((0..indicators).map(|j| format!("u{j}")));
    for i in 0..cutoffs {
        names.push(format!("pp{i}"));
        names.extend((0..indicators).map(|j| format!("c{j}_{i}")));
    }
    names
}

impl AggregateUDFImpl for DeprivationSums {
    fn name(&self) -> &str {
        "deprivation_sums"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Struct(self.params.fields()))
    }
    fn state_fields(&self, _args: StateFieldsArgs) -> DfResult<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new("sums", list_type(), true))])
    }
    fn accumulator(&self, _args: AccumulatorArgs) -> DfResult<Box<dyn Accumulator>> {
        let params = self.params.checked()?;
        let sums = vec![0; params.width()];
        Ok(Box::new(One { params, sums }))
    }
    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }
    fn create_groups_accumulator(
        &self,
        _args: AccumulatorArgs,
    ) -> DfResult<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(Groups::new(self.params.checked()?)))
    }
}

/// The weights and cut-offs of one index.
#[derive(Debug, Clone)]
struct Params {
    weights: Vec<f64>,
    cutoffs: Vec<f64>,
}

// Compared and hashed by bits (the UDF's identity in a plan).
impl PartialEq for Params {
    fn eq(&self, other: &Self) -> bool {
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        bits(&self.weights) == bits(&other.weights) && bits(&self.cutoffs) == bits(&other.cutoffs)
    }
}

impl Eq for Params {}

impl std::hash::Hash for Params {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        for x in self
            .weights
            .iter()
            .chain([f64::NAN].iter())
            .chain(&self.cutoffs)
        {
            x.to_bits().hash(state);
        }
    }
}

impl Params {
    /// A copy for an accumulator, refused past [`MAX_FLAGS`] weights.
    fn checked(&self) -> DfResult<Params> {
        if self.weights.len() > MAX_FLAGS {
            return plan_err!("deprivation_sums takes at most {MAX_FLAGS} weights");
        }
        Ok(self.clone())
    }

    /// The result's fields (see [`sum_names`]).
    fn fields(&self) -> Fields {
        sum_names(self.weights.len(), self.cutoffs.len())
            .into_iter()
            .map(|name| Field::new(name, DataType::Int64, false))
            .collect()
    }

    /// Rows of [`Params::width`] sums as the result's struct column.
    fn to_struct(&self, sums: &[i64]) -> DfResult<ArrayRef> {
        let width = self.width();
        let rows = sums.len() / width;
        let columns: Vec<ArrayRef> = (0..width)
            .map(|c| {
                Arc::new(Int64Array::from_iter_values(
                    (0..rows).map(|r| sums[r * width + c]),
                )) as ArrayRef
            })
            .collect();
        Ok(Arc::new(StructArray::try_new(
            self.fields(),
            columns,
            None,
        )?))
    }

    /// Sums per group.
    fn width(&self) -> usize {
        let n = self.weights.len();
        2 + n + self.cutoffs.len() * (1 + n)
    }
    /// Add `households` households of one deprivation `pattern` with
    /// `persons` persons in all to a group's `sums`.
    fn add(&self, sums: &mut [i64], pattern: Option<i64>, persons: i64, households: i64) {
        let pattern = match pattern {
            Some(p) if p >= 0 => p,
            _ => {
                sums[0] += households;
                return;
            }
        };
        let n = self.weights.len();
        sums[1] += persons;
        let mut score = 0.0;
        let mut bits = pattern;
        while bits != 0 {
            let j = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            if j < n {
                sums[2 + j] += persons;
                score += self.weights[j];
            }
        }
        for (i, k) in self.cutoffs.iter().enumerate() {
            if score >= k - K_TOLERANCE {
                let base = 2 + n + i * (1 + n);
                sums[base] += persons;
                let mut bits = pattern;
                while bits != 0 {
                    let j = bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    if j < n {
                        sums[base + 1 + j] += persons;
                    }
                }
            }
        }
    }
}

/// The (pattern, persons) columns of an update.
fn inputs(values: &[ArrayRef]) -> DfResult<(&Int64Array, &Int64Array)> {
    let [pattern, persons, ..] = values else {
        return exec_err!("deprivation_sums: missing arguments");
    };
    Ok((as_int64_array(pattern)?, as_int64_array(persons)?))
}

/// Row `row`'s pattern (null: unknown) and persons (null: none).
fn household(pattern: &Int64Array, persons: &Int64Array, row: usize) -> (Option<i64>, i64) {
    let p = pattern.is_valid(row).then(|| pattern.value(row));
    let s = if persons.is_valid(row) {
        persons.value(row)
    } else {
        0
    };
    (p, s)
}

/// Rows of `width` sums as a list column.
fn to_list(sums: Vec<i64>, width: usize) -> DfResult<ArrayRef> {
    let rows = sums.len().checked_div(width).unwrap_or(0);
    let offsets = (0..=rows)
        .map(|r| i32::try_from(r * width))
        .collect::<Result<Vec<_>, _>>()
        .or_else(|_| exec_err!("deprivation_sums: output over 2^31 values"))?;
    Ok(Arc::new(ListArray::try_new(
        Arc::new(Field::new_list_field(DataType::Int64, true)),
        OffsetBuffer::new(ScalarBuffer::from(offsets)),
        Arc::new(Int64Array::from(sums)),
        None,
    )?))
}

/// Add the lists of `states` (partial results) into `sums` per row.
fn merge_lists(
    states: &ArrayRef,
    width: usize,
    mut target: impl FnMut(usize) -> usize,
    sums: &mut [i64],
) -> DfResult<()> {
    let lists = as_list_array(states)?;
    let values = as_int64_array(lists.values())?;
    let offsets = lists.value_offsets();
    for row in 0..lists.len() {
        if lists.is_null(row) {
            continue;
        }
        let (start, end) = (offsets[row] as usize, offsets[row + 1] as usize);
        if end - start != width {
            return exec_err!(
                "deprivation_sums: a partial result has {} sums, expected {width}",
                end - start
            );
        }
        let at = target(row) * width;
        for (s, v) in sums[at..at + width]
            .iter_mut()
            .zip(&values.values()[start..end])
        {
            *s += v;
        }
    }
    Ok(())
}

/// The accumulator of one group (no GROUP BY).
#[derive(Debug)]
struct One {
    params: Params,
    sums: Vec<i64>,
}

impl Accumulator for One {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DfResult<()> {
        let (pattern, persons) = inputs(values)?;
        for row in 0..pattern.len() {
            let (p, s) = household(pattern, persons, row);
            self.params.add(&mut self.sums, p, s, 1);
        }
        Ok(())
    }
    fn evaluate(&mut self) -> DfResult<ScalarValue> {
        let row = self.params.to_struct(&self.sums)?;
        ScalarValue::try_from_array(&row, 0)
    }
    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.sums.capacity() * 8
    }
    fn state(&mut self) -> DfResult<Vec<ScalarValue>> {
        let list = to_list(self.sums.clone(), self.params.width())?;
        Ok(vec![ScalarValue::try_from_array(&list, 0)?])
    }
    fn merge_batch(&mut self, states: &[ArrayRef]) -> DfResult<()> {
        let width = self.params.width();
        merge_lists(&states[0], width, |_| 0, &mut self.sums)
    }
}

/// The accumulator of many groups: `width` sums per group, side by side.
#[derive(Debug)]
struct Groups {
    params: Params,
    sums: Vec<i64>,
}

impl Groups {
    fn new(params: Params) -> Self {
        Groups {
            params,
            sums: Vec::new(),
        }
    }

    fn grow(&mut self, groups: usize) {
        let want = groups * self.params.width();
        if self.sums.len() < want {
            self.sums.resize(want, 0);
        }
    }

    /// The sums of the groups `emit_to` asks for, taken out.
    fn take(&mut self, emit_to: EmitTo) -> Vec<i64> {
        let width = self.params.width();
        match emit_to {
            EmitTo::All => std::mem::take(&mut self.sums),
            EmitTo::First(n) => {
                let rest = self.sums.split_off((n * width).min(self.sums.len()));
                std::mem::replace(&mut self.sums, rest)
            }
        }
    }
}

impl GroupsAccumulator for Groups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> DfResult<()> {
        self.grow(total_num_groups);
        let width = self.params.width();
        let (pattern, persons) = inputs(values)?;
        for (row, g) in group_indices.iter().enumerate() {
            if !kept(opt_filter, row) {
                continue;
            }
            let (p, s) = household(pattern, persons, row);
            let at = g * width;
            self.params.add(&mut self.sums[at..at + width], p, s, 1);
        }
        Ok(())
    }
    fn evaluate(&mut self, emit_to: EmitTo) -> DfResult<ArrayRef> {
        let sums = self.take(emit_to);
        self.params.to_struct(&sums)
    }
    fn state(&mut self, emit_to: EmitTo) -> DfResult<Vec<ArrayRef>> {
        let width = self.params.width();
        Ok(vec![to_list(self.take(emit_to), width)?])
    }
    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> DfResult<()> {
        self.grow(total_num_groups);
        let width = self.params.width();
        merge_lists(&values[0], width, |row| group_indices[row], &mut self.sums)
    }
    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> DfResult<Vec<ArrayRef>> {
        // Each input row becomes the state of a group of its own.
        let width = self.params.width();
        let (pattern, persons) = inputs(values)?;
        let mut sums = vec![0; pattern.len() * width];
        for row in 0..pattern.len() {
            if kept(opt_filter, row) {
                let (p, s) = household(pattern, persons, row);
                let at = row * width;
                self.params.add(&mut sums[at..at + width], p, s, 1);
            }
        }
        Ok(vec![to_list(sums, width)?])
    }
    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.sums.capacity() * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> Params {
        // Three indicators weighted 1/2, 1/4, 1/4; cut-offs 1/4 and 1/2.
        Params {
            weights: vec![0.5, 0.25, 0.25],
            cutoffs: vec![0.25, 0.5],
        }
    }

    #[test]
    fn one_household_at_a_time_by_hand() {
        let p = params();
        assert_eq!(p.width(), 2 + 3 + 2 * 4);
        let mut s = vec![0; p.width()];
        p.add(&mut s, Some(0b110), 4, 1); // deprived in 2 and 3: score 1/2
        p.add(&mut s, Some(0b010), 3, 1); // deprived in 2: score 1/4
        p.add(&mut s, Some(0), 2, 1); // not deprived
        p.add(&mut s, None, 5, 1); // unknown
        p.add(&mut s, Some(-1), 5, 1); // unknown
        assert_eq!(
            s,
            [
                2, 9, // excluded households, persons known
                0, 7, 4, // uncensored persons per indicator
                7, 0, 7, 4, // poor at 1/4 and their deprivations
                4, 0, 4, 4, // poor at 1/2 and their deprivations
            ]
        );
    }

    #[test]
    fn groups_merge_and_emit_in_order() {
        let p = params();
        let width = p.width();
        let mut g = Groups::new(p);
        let pattern: ArrayRef = Arc::new(Int64Array::from(vec![Some(1), Some(0b110), None]));
        let persons: ArrayRef = Arc::new(Int64Array::from(vec![2, 3, 4]));
        g.update_batch(&[pattern, persons], &[0, 1, 1], None, 2)
            .unwrap();
        let state = g.state(EmitTo::All).unwrap();
        let mut h = Groups::new(params());
        // Both partial groups into one group.
        h.merge_batch(&state, &[0, 0], 1).unwrap();
        let out = h.evaluate(EmitTo::All).unwrap();
        let out = datafusion::common::cast::as_struct_array(&out).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out.num_columns(), width);
        let got: Vec<(String, i64)> = out
            .column_names()
            .iter()
            .zip(out.columns())
            .map(|(name, c)| (name.to_string(), as_int64_array(c).unwrap().value(0)))
            .collect();
        let want = sum_names(3, 2)
            .into_iter()
            .zip([1, 5, 2, 3, 3, 5, 2, 3, 3, 5, 2, 3, 3])
            .collect::<Vec<_>>();
        assert_eq!(got, want);
        assert_eq!(want[5].0, "pp0");
        assert_eq!(want[12].0, "c2_1");
    }
}
