//! `level_medians(village, value, weight)`: the exact weighted median of
//! every region at all five levels, from household rows, in one aggregate
//! that holds each pair once — the `median_income` of `metrics --level
//! all`.
//!
//! Rolling villages' pairs up with GROUPING SETS (`weighted_values`, then
//! `weighted_median(pairs)`) gave each of the five levels its own copy of
//! every pair: 2.1 GB of pairs for a registry of 30 M households, more
//! than a 3 GiB limit leaves (BENCHMARKS.md). Here each partial sorts its
//! (village, value, weight) triples by village code; the final merges the
//! sorted runs. In village order every region of every level is a stretch
//! of consecutive pairs (rolling a code up keeps the order of codes), so
//! each level gathers its current region's pairs into one reused buffer
//! and takes their median ([`super::median_in_place`], the function every
//! other median uses) when the region ends. Memory is the pairs once plus
//! one buffer per level (the province's as large as a province); every
//! access is sequential (a walk in income order with a state per region, tried
//! first, spent 10 s of one core at 30 M households on cache misses).
//!
//! The result is one list of `{code, median}` per group (a region's code
//! is its village code rolled up, as [`crate::codes::roll_up_int_sql`]),
//! coarsest level first, codes ascending; regions without pairs are left
//! out:
//!
//! ```sql
//! SELECT m['code'] AS code, m['median'] AS median
//! FROM (SELECT unnest(level_medians(village, income, size)) AS m FROM h)
//! ```

use super::*;
use crate::codes::Level;

/// `level_medians(village bigint, value float64, weight bigint) ->
/// list<struct<code: bigint, median: float64>>` (see the module docs).
/// Rows with a null village, a null value or a weight that is null or
/// ≤ 0 are skipped, as `weighted_median` skips them.
pub fn level_medians_udaf() -> AggregateUDF {
    AggregateUDF::from(LevelMedians {
        signature: Signature::exact(
            vec![DataType::Int64, DataType::Float64, DataType::Int64],
            Volatility::Immutable,
        ),
    })
}

/// `struct<code: bigint, median: float64>`, one region's median.
fn region_fields() -> Fields {
    Fields::from(vec![
        Field::new("code", DataType::Int64, false),
        Field::new("median", DataType::Float64, false),
    ])
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct LevelMedians {
    signature: Signature,
}

impl AggregateUDFImpl for LevelMedians {
    fn name(&self) -> &str {
        "level_medians"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(list_of(DataType::Struct(region_fields())))
    }
    fn accumulator(&self, _args: AccumulatorArgs) -> DfResult<Box<dyn Accumulator>> {
        Ok(Box::<LevelMediansAccumulator>::default())
    }
    fn state_fields(&self, args: StateFieldsArgs) -> DfResult<Vec<FieldRef>> {
        // One sorted run: villages, values and weights, as three lists.
        let field = |part: &str, t: DataType| {
            Arc::new(Field::new(
                format!("{}_{part}", args.name),
                list_of(t),
                true,
            ))
        };
        Ok(vec![
            field("villages", DataType::Int64),
            field("values", DataType::Float64),
            field("weights", DataType::Int64),
        ])
    }
}

/// A pair not yet sorted: its village, value and weight (> 0).
#[derive(Debug, Clone, Copy)]
struct Triple {
    village: i64,
    value: f64,
    weight: i64,
}

/// Pairs sorted by village code, with their villages: arrays without
/// nulls, weights > 0 (this module wrote them).
#[derive(Debug, Clone)]
struct Run {
    villages: Int64Array,
    values: Float64Array,
    weights: Int64Array,
}

impl Run {
    fn len(&self) -> usize {
        self.values.len()
    }

    /// A run of the three columns (already in village order).
    fn from_columns(villages: Vec<i64>, values: Vec<f64>, weights: Vec<i64>) -> Run {
        Run {
            villages: Int64Array::from(villages),
            values: Float64Array::from(values),
            weights: Int64Array::from(weights),
        }
    }

    /// Sort `triples` by village into a run (the vector is consumed).
    fn sorted(mut triples: Vec<Triple>) -> Run {
        triples.sort_unstable_by_key(|t| t.village);
        Run::from_columns(
            triples.iter().map(|t| t.village).collect(),
            triples.iter().map(|t| t.value).collect(),
            triples.iter().map(|t| t.weight).collect(),
        )
    }

    /// Merge sorted `runs` into one.
    fn merged(runs: &[Run]) -> Run {
        let n = runs.iter().map(Run::len).sum();
        let (mut villages, mut values, mut weights) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        merge_order(runs, |r, i| {
            villages.push(runs[r].villages.value(i));
            values.push(runs[r].values.value(i));
            weights.push(runs[r].weights.value(i));
        });
        Run::from_columns(villages, values, weights)
    }
}

/// Call `f(run, index)` for every pair of sorted `runs`, in village order
/// (a k-way merge; runs are few — one per partition).
fn merge_order(runs: &[Run], mut f: impl FnMut(usize, usize)) {
    let mut at = vec![0usize; runs.len()];
    let head =
        |r: usize, at: &[usize]| (at[r] < runs[r].len()).then(|| runs[r].villages.value(at[r]));
    let mut heads: Vec<Option<i64>> = (0..runs.len()).map(|r| head(r, &at)).collect();
    loop {
        let mut best: Option<(usize, i64)> = None;
        for (r, h) in heads.iter().enumerate() {
            if let Some(v) = *h {
                if best.is_none_or(|(_, b)| v < b) {
                    best = Some((r, v));
                }
            }
        }
        let Some((r, _)) = best else { return };
        f(r, at[r]);
        at[r] += 1;
        heads[r] = head(r, &at);
    }
}

/// The pairs of the current region of one level, and the medians of the
/// regions before it.
#[derive(Debug)]
struct RegionBuffer {
    /// `10^k`: a village code rolls up to this level as `v - v % unit`.
    unit: i64,
    region: Option<i64>,
    pairs: Vec<(f64, i64)>,
    codes: Vec<i64>,
    medians: Vec<f64>,
}

impl RegionBuffer {
    fn new(level: Level) -> Self {
        RegionBuffer {
            unit: level.code_unit(),
            region: None,
            pairs: Vec::new(),
            codes: Vec::new(),
            medians: Vec::new(),
        }
    }

    /// Add the next pair (in village order) of village `village`.
    fn add(&mut self, village: i64, pair: (f64, i64)) {
        let region = village - village % self.unit;
        if self.region != Some(region) {
            self.close();
            self.region = Some(region);
        }
        self.pairs.push(pair);
    }

    /// The current region is complete: take its median.
    fn close(&mut self) {
        if let (Some(region), Some(median)) = (self.region, median_in_place(&mut self.pairs)) {
            self.codes.push(region);
            self.medians.push(median);
        }
        self.pairs.clear();
    }
}

/// Pairs of one group: sorted runs (from states, or fresh input sorted).
#[derive(Debug, Default)]
struct LevelMediansAccumulator {
    fresh: Vec<Triple>,
    runs: Vec<Run>,
}

impl LevelMediansAccumulator {
    /// Every pair as sorted runs (fresh input sorted into one).
    fn runs(&mut self) -> &[Run] {
        if !self.fresh.is_empty() {
            let run = Run::sorted(std::mem::take(&mut self.fresh));
            self.runs.push(run);
        }
        &self.runs
    }

    /// The medians of every region at every level, as a list of
    /// `{code, median}`: the runs are merged in village order, where each
    /// region of each level is a stretch of consecutive pairs (rolling up
    /// keeps the order of codes); each level gathers its current region's
    /// pairs and takes their median when the region ends.
    fn medians(runs: &[Run]) -> ListArray {
        let mut levels: Vec<RegionBuffer> = Level::ALL.into_iter().map(RegionBuffer::new).collect();
        merge_order(runs, |r, i| {
            let run = &runs[r];
            let (village, pair) = (
                run.villages.value(i),
                (run.values.value(i), run.weights.value(i)),
            );
            for level in levels.iter_mut() {
                level.add(village, pair);
            }
        });
        let (mut codes, mut medians) = (Vec::new(), Vec::new());
        for mut level in levels {
            level.close();
            codes.append(&mut level.codes);
            medians.append(&mut level.medians);
        }
        let rows = StructArray::new(
            region_fields(),
            vec![
                Arc::new(Int64Array::from(codes)),
                Arc::new(Float64Array::from(medians)),
            ],
            None,
        );
        one_list(Arc::new(rows))
    }
}

/// `values` as a list array of one row.
fn one_list(values: ArrayRef) -> ListArray {
    ListArray::new(
        Arc::new(Field::new_list_field(values.data_type().clone(), true)),
        OffsetBuffer::from_lengths([values.len()]),
        values,
        None,
    )
}

impl Accumulator for LevelMediansAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DfResult<()> {
        let villages = as_int64_array(&values[0])?;
        let v = as_float64_array(&values[1])?;
        let w = as_int64_array(&values[2])?;
        self.fresh.reserve(villages.len());
        for i in 0..villages.len() {
            if villages.is_valid(i) {
                if let Some((value, weight)) = pair_at(v, w, i) {
                    self.fresh.push(Triple {
                        village: villages.value(i),
                        value,
                        weight,
                    });
                }
            }
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> DfResult<()> {
        let lists = [
            as_list_array(&states[0])?,
            as_list_array(&states[1])?,
            as_list_array(&states[2])?,
        ];
        for row in 0..lists[0].len() {
            if lists.iter().any(|l| l.is_null(row)) {
                continue;
            }
            let [villages, values, weights] = lists.map(|l| l.value(row));
            let run = Run {
                villages: as_int64_array(&villages)?.clone(),
                values: as_float64_array(&values)?.clone(),
                weights: as_int64_array(&weights)?.clone(),
            };
            let n = run.len();
            let whole = |a: &dyn Array| a.len() == n && a.null_count() == 0;
            let weighed = run.weights.values().iter().all(|w| *w > 0);
            if !(whole(&run.villages) && whole(&run.values) && whole(&run.weights) && weighed) {
                return Err(DataFusionError::Execution(format!(
                    "level_medians: state row {row} is not a run of {n} pairs"
                )));
            }
            self.runs.push(run);
        }
        Ok(())
    }

    fn state(&mut self) -> DfResult<Vec<ScalarValue>> {
        let runs = self.runs();
        let run = match runs {
            [one] => one.clone(),
            _ => Run::merged(runs),
        };
        self.runs.clear();
        Ok(vec![
            ScalarValue::List(Arc::new(one_list(Arc::new(run.villages)))),
            ScalarValue::List(Arc::new(one_list(Arc::new(run.values)))),
            ScalarValue::List(Arc::new(one_list(Arc::new(run.weights)))),
        ])
    }

    fn evaluate(&mut self) -> DfResult<ScalarValue> {
        let medians = Self::medians(self.runs());
        Ok(ScalarValue::List(Arc::new(medians)))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
            + self.fresh.capacity() * std::mem::size_of::<Triple>()
            + self.runs.iter().map(|r| r.len() * 24).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (code, median) rows of a `level_medians` result.
    fn rows(result: &ScalarValue) -> Vec<(i64, f64)> {
        let ScalarValue::List(list) = result else {
            panic!("not a list: {result:?}");
        };
        let rows = list.value(0);
        let rows = as_struct_array(&rows).unwrap();
        let codes = as_int64_array(rows.column(0)).unwrap();
        let medians = as_float64_array(rows.column(1)).unwrap();
        (0..rows.len())
            .map(|i| (codes.value(i), medians.value(i)))
            .collect()
    }

    fn batch(
        villages: &[Option<i64>],
        values: &[Option<f64>],
        weights: &[Option<i64>],
    ) -> Vec<ArrayRef> {
        vec![
            Arc::new(Int64Array::from(villages.to_vec())),
            Arc::new(Float64Array::from(values.to_vec())),
            Arc::new(Int64Array::from(weights.to_vec())),
        ]
    }

    #[test]
    fn a_small_case_by_hand() {
        // Village …001: 1 ×1, 3 ×1 → 2. Village …002: 10 ×2 → 10. Their
        // township (and every level above): 1 3 10 10 → (3 + 10) / 2.
        // A null value, a null village and a zero weight are skipped.
        let mut acc = LevelMediansAccumulator::default();
        acc.update_batch(&batch(
            &[
                Some(130102001001),
                Some(130102001001),
                Some(130102001002),
                Some(130102001002),
                None,
                Some(130102001002),
            ],
            &[
                Some(1.0),
                Some(3.0),
                Some(10.0),
                None,
                Some(50.0),
                Some(99.0),
            ],
            &[Some(1), Some(1), Some(2), Some(4), Some(1), Some(0)],
        ))
        .unwrap();
        assert_eq!(
            rows(&acc.evaluate().unwrap()),
            vec![
                (130000000000, 6.5),
                (130100000000, 6.5),
                (130102000000, 6.5),
                (130102001000, 6.5),
                (130102001001, 2.0),
                (130102001002, 10.0),
            ]
        );
    }

    #[test]
    fn partials_merged_give_each_regions_weighted_median() {
        // 4,000 rows over 60 villages in 2 provinces, with ties, signed
        // zeros, negative values, nulls and weights ≤ 0, split over three
        // partial accumulators whose states are merged in a final one.
        let mut next = {
            let mut seed = 7u64;
            move || {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (seed >> 33) as i64
            }
        };
        let n = 4000;
        let villages: Vec<Option<i64>> = (0..n)
            .map(|_| {
                let v = next() % 60;
                let code = [13, 14][(v % 2) as usize] * 10_000_000_000
                    + (1 + v % 3) * 100_000_000
                    + (1 + v % 5) * 1_000_000
                    + (1 + v % 4) * 1_000
                    + 1
                    + v;
                (next() % 50 != 0).then_some(code)
            })
            .collect();
        let values: Vec<Option<f64>> = (0..n)
            .map(|_| match next() % 20 {
                0 => None,
                1 => Some(-0.0),
                2 => Some(0.0),
                k => Some((next() % 40 - 10) as f64 / (k as f64)),
            })
            .collect();
        let weights: Vec<Option<i64>> = (0..n)
            .map(|_| (next() % 25 != 0).then(|| next() % 7 - 1))
            .collect();
        let mut final_acc = LevelMediansAccumulator::default();
        for part in [0..1500, 1500..1501, 1501..n] {
            let mut partial = LevelMediansAccumulator::default();
            partial
                .update_batch(&batch(
                    &villages[part.clone()],
                    &values[part.clone()],
                    &weights[part],
                ))
                .unwrap();
            let state: Vec<ArrayRef> = partial
                .state()
                .unwrap()
                .iter()
                .map(|s| s.to_array().unwrap())
                .collect();
            final_acc.merge_batch(&state).unwrap();
        }
        let got = rows(&final_acc.evaluate().unwrap());

        let mut single = LevelMediansAccumulator::default();
        single
            .update_batch(&batch(&villages, &values, &weights))
            .unwrap();
        assert_eq!(rows(&single.evaluate().unwrap()), got, "one phase");

        // Expected: each region's weighted median, the slow way.
        let mut expected = Vec::new();
        for level in Level::ALL {
            let unit = level.code_unit();
            let mut codes: Vec<i64> = villages.iter().flatten().map(|v| v - v % unit).collect();
            codes.sort_unstable();
            codes.dedup();
            for code in codes {
                let (vs, ws): (Vec<f64>, Vec<i64>) = (0..n)
                    .filter(|i| villages[*i].is_some_and(|v| v - v % unit == code))
                    .filter_map(|i| Some((values[i]?, weights[i]?)))
                    .unzip();
                if let Some(m) = weighted_median(&vs, &ws) {
                    expected.push((code, m));
                }
            }
        }
        assert!(expected.len() > 60, "{} regions", expected.len());
        assert_eq!(got.len(), expected.len());
        for (g, e) in got.iter().zip(&expected) {
            assert_eq!(g.0, e.0);
            assert_eq!(g.1.to_bits(), e.1.to_bits(), "region {}", g.0);
        }
    }

    #[test]
    fn a_state_that_is_not_a_run_is_an_error() {
        let mut acc = LevelMediansAccumulator::default();
        let state = vec![
            Arc::new(one_list(Arc::new(Int64Array::from(vec![1, 2])))) as ArrayRef,
            Arc::new(one_list(Arc::new(Float64Array::from(vec![1.0])))),
            Arc::new(one_list(Arc::new(Int64Array::from(vec![1, 1])))),
        ];
        let err = acc.merge_batch(&state).unwrap_err().to_string();
        assert!(err.contains("level_medians"), "{err}");
        // A weight ≤ 0 is no pair of a run either.
        let state = vec![
            Arc::new(one_list(Arc::new(Int64Array::from(vec![1, 2])))) as ArrayRef,
            Arc::new(one_list(Arc::new(Float64Array::from(vec![1.0, 2.0])))),
            Arc::new(one_list(Arc::new(Int64Array::from(vec![1, -1])))),
        ];
        assert!(acc.merge_batch(&state).is_err());
    }
}
