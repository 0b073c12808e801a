//! `deprivation_sums`: the integer sums behind the Alkire–Foster index
//! ([`crate::mpi`]) of a group of households, in one pass and without a
//! score column per household; and `mpi_measures`, the index's measures
//! from them.
//!
//! Both are made for one index ([`deprivation_sums_udaf`],
//! [`super::measures::mpi_measures_udf`]) with its normalised weights w_j and cut-offs k_i —
//! they are part of the functions, not arguments, because an aggregate's
//! literal arguments are repeated into a column for every row.
//!
//! - `deprivation_sums(pattern, persons)` adds up households, each as its
//!   deprivation `pattern` (bit j set: deprived in indicator j, as
//!   [`super::flags::flag_mask_udf`] gives it; null or negative: some
//!   indicator unknown) and its `persons`. A household is poor at k_i when
//!   its score Σ_j w_j·d_j (added in indicator order) is ≥ k_i −
//!   [`K_TOLERANCE`]. The result is a fixed-size list of BIGINT sums
//!   (kept by band: see `Bands`; fixed-size, so a join or a repartition
//!   moves the lists as one flat column); `deprivation_sums(sums)` adds
//!   such lists up (a roll-up to larger regions).
//! - `mpi_measures(sums)` lists a region's measures at each cut-off, in
//!   ascending k ([`super::measures`]): `k`, `population`,
//!   `excluded_households`, `H`, `A`, `M0`, `uncensored_<key>`,
//!   `censored_<key>`, `contribution_<key>` (definitions in
//!   [`crate::mpi`]); null sums (a region without households) give
//!   population 0 and null ratios.
//!
//! Integer sums, so any grouping and any partitioning give the same
//! result. The index registers its functions on the session state of its
//! own plan only; a distributed run (Ballista) needs a codec that carries
//! the weights and cut-offs.
//!
//! ```sql
//! WITH v AS (
//!   SELECT village_code,
//!          deprivation_sums(flag_mask(NOT p_income, NOT p_water), CAST(size AS BIGINT)) AS sums
//!   FROM f GROUP BY village_code)
//! SELECT county, unnest(mpi_measures(sums)) AS m FROM (
//!   SELECT left(village_code, 6) AS county, deprivation_sums(sums) AS sums
//!   FROM v GROUP BY 1)
//! ```

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, FixedSizeListArray, Int64Array};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::cast::{as_fixed_size_list_array, as_int64_array};
use datafusion::common::{exec_err, plan_err, ScalarValue};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, EmitTo, GroupsAccumulator, Signature,
    TypeSignature, Volatility,
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
    let params = Params::new(weights, cutoffs);
    AggregateUDF::from(DeprivationSums {
        signature: Signature::one_of(
            vec![
                TypeSignature::Exact(vec![DataType::Int64, DataType::Int64]),
                TypeSignature::Exact(vec![params.list_type()]),
            ],
            Volatility::Immutable,
        ),
        params,
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct DeprivationSums {
    signature: Signature,
    params: Params,
}

impl AggregateUDFImpl for DeprivationSums {
    fn name(&self) -> &str {
        "deprivation_sums"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(self.params.list_type())
    }
    fn state_fields(&self, _args: StateFieldsArgs) -> DfResult<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(
            "sums",
            self.params.list_type(),
            true,
        ))])
    }
    fn accumulator(&self, _args: AccumulatorArgs) -> DfResult<Box<dyn Accumulator>> {
        let bands = self.params.checked()?;
        let sums = vec![0; bands.width()];
        Ok(Box::new(One {
            bands,
            sums,
            places: Vec::new(),
        }))
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
pub(super) struct Params {
    /// Normalised weights, one per indicator.
    pub(super) weights: Vec<f64>,
    /// Cut-offs as given.
    pub(super) cutoffs: Vec<f64>,
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
    pub(super) fn new(weights: &[f64], cutoffs: &[f64]) -> Self {
        Params {
            weights: weights.to_vec(),
            cutoffs: cutoffs.to_vec(),
        }
    }

    /// Sums per group: per band (one more than the cut-offs) the persons
    /// and the persons deprived in each indicator, then the households
    /// left out (see [`Bands`]).
    pub(super) fn width(&self) -> usize {
        (self.cutoffs.len() + 1) * (1 + self.weights.len()) + 1
    }

    /// The type of this index's lists of sums: a fixed-size list of
    /// [`Params::width`] BIGINTs, so that moving rows of them (a join's or
    /// a repartition's `take`) gathers one flat column rather than copying
    /// list by list.
    pub(super) fn list_type(&self) -> DataType {
        DataType::FixedSizeList(
            Arc::new(Field::new_list_field(DataType::Int64, true)),
            // At most (cut-offs + 1) · 63 + 1 sums: the width is small.
            i32::try_from(self.width()).unwrap_or(i32::MAX),
        )
    }

    /// Ready to add, refused past [`MAX_FLAGS`] weights.
    pub(super) fn checked(&self) -> DfResult<Bands> {
        if self.weights.len() > MAX_FLAGS {
            return plan_err!("deprivation_sums takes at most {MAX_FLAGS} weights");
        }
        let mut order: Vec<usize> = (0..self.cutoffs.len()).collect();
        order.sort_by(|a, b| self.cutoffs[*a].total_cmp(&self.cutoffs[*b]));
        let mut from_band = vec![0; order.len()];
        for (place, i) in order.iter().enumerate() {
            from_band[*i] = place + 1;
        }
        let mut bands = Bands {
            params: self.clone(),
            ascending: order.iter().map(|i| self.cutoffs[*i]).collect(),
            order,
            from_band,
            band_of: Vec::new(),
        };
        if self.weights.len() <= TABULATED {
            bands.band_of = (0..1i64 << self.weights.len())
                .map(|p| bands.band(p))
                .collect();
        }
        Ok(bands)
    }
}

/// The sums of a group of households, kept by *band* rather than by
/// cut-off: band b holds the households poor at exactly the b lowest
/// cut-offs (band 0: poor at none), each band as `persons` followed by
/// the persons deprived in each indicator; then one last slot for the
/// households left out (an indicator unknown). A household adds to one
/// band only (1 + its deprivations values, side by side in memory), where
/// sums by cut-off would touch every cut-off it is poor at; a cut-off's
/// sums are those of the bands from its place up ([`Bands::by_cutoff`]).
#[derive(Debug, Clone)]
pub(super) struct Bands {
    params: Params,
    /// The cut-offs in ascending order.
    ascending: Vec<f64>,
    /// Their indices among the cut-offs as given (ties in given order).
    pub(super) order: Vec<usize>,
    /// For each cut-off as given, the band from which a household is poor
    /// at it.
    from_band: Vec<usize>,
    /// The band of every deprivation pattern, when there are at most
    /// [`TABULATED`] indicators (else computed per household).
    band_of: Vec<usize>,
}

/// Up to this many indicators, each pattern's band is looked up in a
/// table (2^n entries) rather than scored per household.
const TABULATED: usize = 10;

/// A group's sums for one cut-off ([`Bands::by_cutoff`]).
#[derive(Debug, Default, PartialEq)]
pub(super) struct CutoffSums {
    /// Households left out (an indicator unknown).
    pub(super) excluded: i64,
    /// Persons in the households with every indicator known.
    pub(super) population: i64,
    /// Of those, persons deprived in each indicator.
    pub(super) uncensored: Vec<i64>,
    /// Persons poor at the cut-off.
    pub(super) poor: i64,
    /// Of those, persons deprived in each indicator.
    pub(super) censored: Vec<i64>,
}

impl Bands {
    /// Values per band: persons, then one per indicator.
    fn band_width(&self) -> usize {
        1 + self.params.weights.len()
    }

    /// Sums per group ([`Params::width`]).
    pub(super) fn width(&self) -> usize {
        self.params.width()
    }

    /// Where a household of deprivation `pattern` adds up within its
    /// group's sums: the band's offset and the pattern (bits past the
    /// indicators dropped), or none for a household left out (null or
    /// negative pattern: an indicator unknown).
    fn place(&self, pattern: Option<i64>) -> Option<(usize, i64)> {
        let pattern = pattern.filter(|p| *p >= 0)? & ((1 << self.params.weights.len()) - 1);
        // A table index is below 2^n: `pattern` holds n bits.
        let band = match self.band_of.get(pattern as usize) {
            Some(band) => *band,
            None => self.band(pattern),
        };
        Some((band * self.band_width(), pattern))
    }

    /// The band of a household deprived as `pattern` (n bits): how many
    /// cut-offs its score Σ_j w_j·d_j (added in indicator order) reaches.
    fn band(&self, pattern: i64) -> usize {
        let mut score = 0.0;
        let mut bits = pattern;
        while bits != 0 {
            score += self.params.weights[bits.trailing_zeros() as usize];
            bits &= bits - 1;
        }
        self.ascending
            .iter()
            .take_while(|k| score >= *k - K_TOLERANCE)
            .count()
    }

    /// Add `persons` to the band at `at` of `sums`: its persons and the
    /// persons deprived in each indicator of `pattern`.
    fn add_at(sums: &mut [i64], at: usize, pattern: i64, persons: i64) {
        sums[at] += persons;
        let mut bits = pattern;
        while bits != 0 {
            sums[at + 1 + bits.trailing_zeros() as usize] += persons;
            bits &= bits - 1;
        }
    }

    /// Add one household of deprivation `pattern` with `persons` persons
    /// to a group's `sums`.
    #[cfg(test)]
    fn add(&self, sums: &mut [i64], pattern: Option<i64>, persons: i64) {
        match self.place(pattern) {
            Some((at, pattern)) => Self::add_at(sums, at, pattern, persons),
            None => sums[self.width() - 1] += 1,
        }
    }

    /// A group's sums (`width` values, or none: no households) for
    /// cut-off `i` (as given), into `out`.
    pub(super) fn by_cutoff(&self, sums: Option<&[i64]>, i: usize, out: &mut CutoffSums) {
        let (bw, bands) = (self.band_width(), self.ascending.len() + 1);
        let from = self.from_band[i];
        out.uncensored.clear();
        out.censored.clear();
        let Some(sums) = sums else {
            (out.excluded, out.population, out.poor) = (0, 0, 0);
            out.uncensored.resize(bw - 1, 0);
            out.censored.resize(bw - 1, 0);
            return;
        };
        let added = |from: usize, v: usize| (from..bands).map(|b| sums[b * bw + v]).sum::<i64>();
        out.excluded = sums[self.width() - 1];
        out.population = added(0, 0);
        out.poor = added(from, 0);
        out.uncensored.extend((1..bw).map(|v| added(0, v)));
        out.censored.extend((1..bw).map(|v| added(from, v)));
    }

    /// Add every row of an update kept by `filter` to the sums at
    /// `group(row)`: households (`pattern`, `persons`), or lists of sums.
    fn add_rows(
        &self,
        values: &[ArrayRef],
        filter: Option<&BooleanArray>,
        sums: &mut [i64],
        places: &mut Places,
        mut group: impl FnMut(usize) -> usize,
    ) -> DfResult<()> {
        let width = self.width();
        let (pattern, persons) = match values {
            [lists] => return merge_lists(lists, width, filter, group, sums),
            [pattern, persons, ..] => (as_int64_array(pattern)?, as_int64_array(persons)?),
            [] => return exec_err!("deprivation_sums: missing arguments"),
        };
        let (patterns, sizes) = (pattern.values(), persons.values());
        let (unknown, no_size) = (pattern.nulls(), persons.nulls());
        // First where each row adds up (its group's sums are rarely in
        // cache: households come in any order of villages), then the
        // additions, each group's sums read a few rows ahead so that the
        // memory fetches overlap instead of one stalling each row.
        places.clear();
        places.reserve(pattern.len());
        for row in 0..pattern.len() {
            if !kept(filter, row) {
                continue;
            }
            // A null pattern: some indicator unknown; null persons: none.
            let p = match unknown {
                Some(nulls) if nulls.is_null(row) => None,
                _ => Some(patterns[row]),
            };
            let s = match no_size {
                Some(nulls) if nulls.is_null(row) => 0,
                _ => sizes[row],
            };
            let at = group(row) * width;
            places.push(match self.place(p) {
                Some((band, pattern)) => (at + band, pattern, s),
                // The excluded households' slot: one household.
                None => (at + width - 1, 0, 1),
            });
        }
        let mut ahead = 0;
        for (i, (at, pattern, persons)) in places.iter().enumerate() {
            if let Some((next, ..)) = places.get(i + LOOKAHEAD) {
                ahead ^= sums[*next];
            }
            Self::add_at(sums, *at, *pattern, *persons);
        }
        std::hint::black_box(ahead);
        Ok(())
    }
}

/// Where each row of a batch adds up (offset, pattern, persons): kept by
/// an accumulator from batch to batch (a fresh one per batch was 200 kB
/// allocated and paged in each time).
type Places = Vec<(usize, i64, i64)>;

/// How many rows ahead `add_rows` reads the sums it will add to.
const LOOKAHEAD: usize = 16;

/// Rows of `width` sums as a list column.
fn to_list(sums: Vec<i64>, width: usize) -> DfResult<ArrayRef> {
    let Ok(size) = i32::try_from(width) else {
        return exec_err!("deprivation_sums: {width} sums per group");
    };
    Ok(Arc::new(FixedSizeListArray::try_new(
        Arc::new(Field::new_list_field(DataType::Int64, true)),
        size,
        Arc::new(Int64Array::from(sums)),
        None,
    )?))
}

/// Each list of `width` sums in `lists` (kept by `filter`), a list as
/// long as `width` or null, as `&[i64]`.
pub(super) fn each_list<'a>(
    lists: &'a ArrayRef,
    width: usize,
    filter: Option<&'a BooleanArray>,
) -> DfResult<impl Iterator<Item = (usize, Option<&'a [i64]>)> + 'a> {
    let lists = as_fixed_size_list_array(lists)?;
    if lists.value_length() as usize != width {
        return exec_err!(
            "deprivation_sums: lists of {} sums, expected {width}",
            lists.value_length()
        );
    }
    // Row r's values are at r·width (a sliced list column slices its
    // values).
    let values = as_int64_array(lists.values())?.values();
    Ok((0..lists.len())
        .filter(move |r| kept(filter, *r))
        .map(move |r| {
            let at = r * width;
            let sums = lists.is_valid(r).then(|| &values[at..at + width]);
            (r, sums)
        }))
}

/// Add the lists of sums in `lists` (kept by `filter`) into `sums` at
/// `target(row)`.
fn merge_lists(
    lists: &ArrayRef,
    width: usize,
    filter: Option<&BooleanArray>,
    mut target: impl FnMut(usize) -> usize,
    sums: &mut [i64],
) -> DfResult<()> {
    for (row, list) in each_list(lists, width, filter)? {
        if let Some(list) = list {
            let at = target(row) * width;
            for (s, v) in sums[at..at + width].iter_mut().zip(list) {
                *s += v;
            }
        }
    }
    Ok(())
}

/// The accumulator of one group (no GROUP BY).
#[derive(Debug)]
struct One {
    bands: Bands,
    sums: Vec<i64>,
    places: Places,
}

impl Accumulator for One {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DfResult<()> {
        self.bands
            .add_rows(values, None, &mut self.sums, &mut self.places, |_| 0)
    }
    fn evaluate(&mut self) -> DfResult<ScalarValue> {
        self.state()?
            .pop()
            .map_or_else(|| exec_err!("deprivation_sums: no state"), Ok)
    }
    fn size(&self) -> usize {
        std::mem::size_of_val(self)
            + self.sums.capacity() * 8
            + self.places.capacity() * std::mem::size_of::<(usize, i64, i64)>()
    }
    fn state(&mut self) -> DfResult<Vec<ScalarValue>> {
        let list = to_list(self.sums.clone(), self.bands.width())?;
        Ok(vec![ScalarValue::try_from_array(&list, 0)?])
    }
    fn merge_batch(&mut self, states: &[ArrayRef]) -> DfResult<()> {
        self.bands
            .add_rows(states, None, &mut self.sums, &mut self.places, |_| 0)
    }
}

/// The accumulator of many groups: `width` sums per group, side by side.
#[derive(Debug)]
struct Groups {
    bands: Bands,
    sums: Vec<i64>,
    places: Places,
}

impl Groups {
    fn new(bands: Bands) -> Self {
        Groups {
            bands,
            sums: Vec::new(),
            places: Vec::new(),
        }
    }

    fn grow(&mut self, groups: usize) {
        let want = groups * self.bands.width();
        if self.sums.len() < want {
            self.sums.resize(want, 0);
        }
    }

    /// The sums of the groups `emit_to` asks for, taken out, as a list
    /// column.
    fn take(&mut self, emit_to: EmitTo) -> DfResult<ArrayRef> {
        let width = self.bands.width();
        let taken = match emit_to {
            EmitTo::All => std::mem::take(&mut self.sums),
            EmitTo::First(n) => {
                let rest = self.sums.split_off((n * width).min(self.sums.len()));
                std::mem::replace(&mut self.sums, rest)
            }
        };
        to_list(taken, width)
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
        self.bands.add_rows(
            values,
            opt_filter,
            &mut self.sums,
            &mut self.places,
            |row| group_indices[row],
        )
    }
    fn evaluate(&mut self, emit_to: EmitTo) -> DfResult<ArrayRef> {
        self.take(emit_to)
    }
    fn state(&mut self, emit_to: EmitTo) -> DfResult<Vec<ArrayRef>> {
        Ok(vec![self.take(emit_to)?])
    }
    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> DfResult<()> {
        self.grow(total_num_groups);
        self.bands.add_rows(
            &values[..values.len().min(1)],
            None,
            &mut self.sums,
            &mut self.places,
            |row| group_indices[row],
        )
    }
    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> DfResult<Vec<ArrayRef>> {
        // Each input row becomes the state of a group of its own.
        let width = self.bands.width();
        let mut sums = vec![0; values.first().map_or(0, |v| v.len()) * width];
        self.bands
            .add_rows(values, opt_filter, &mut sums, &mut Vec::new(), |row| row)?;
        Ok(vec![to_list(sums, width)?])
    }
    fn size(&self) -> usize {
        std::mem::size_of_val(self)
            + self.sums.capacity() * 8
            + self.places.capacity() * std::mem::size_of::<(usize, i64, i64)>()
    }
}

#[cfg(test)]
pub(super) mod tests;
