//! `mpi_measures(sums)`: the Alkire–Foster measures of a region at each
//! cut-off, from its `deprivation_sums` ([`super::deprivation`]).
//!
//! A list with one struct per cut-off, in ascending order of k: `k`,
//! `population`, `excluded_households`, `H`, `A`, `M0`,
//! `uncensored_<key>`, `censored_<key>`, `contribution_<key>` (definitions
//! in [`crate::mpi`]), every ratio null where there is no one to divide
//! by; null sums (a region without households) give population 0. Made
//! per index with its weights and cut-offs, like `deprivation_sums`.
//! Unnested, a region's rows come in the order of its cut-offs.
//!
//! ```sql
//! SELECT code, m['k'] AS k, m['M0'] AS m0
//! FROM (SELECT code, unnest(mpi_measures(sums)) AS m FROM lv)
//! ```

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Float64Array, Int64Array, ListArray, StructArray};
use datafusion::arrow::buffer::{BooleanBuffer, NullBuffer, OffsetBuffer};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields};
use datafusion::common::exec_err;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};

use super::deprivation::{each_list, CutoffSums, Params};

/// The `mpi_measures` scalar UDF of an index with these normalised
/// `weights`, `cutoffs` and indicator `keys` (see the module doc).
pub fn mpi_measures_udf(weights: &[f64], cutoffs: &[f64], keys: &[String]) -> ScalarUDF {
    let params = Params::new(weights, cutoffs);
    ScalarUDF::from(MpiMeasures {
        signature: Signature::exact(vec![params.list_type()], Volatility::Immutable),
        params,
        keys: keys.to_vec(),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct MpiMeasures {
    signature: Signature,
    params: Params,
    keys: Vec<String>,
}

impl MpiMeasures {
    /// The fields of a cut-off's measures: the cut-off and the two counts
    /// (never null), then the ratios.
    fn fields(&self) -> Fields {
        let mut fields = vec![
            Field::new("k", DataType::Float64, false),
            Field::new("population", DataType::Int64, false),
            Field::new("excluded_households", DataType::Int64, false),
        ];
        let mut ratio = |name: String| fields.push(Field::new(name, DataType::Float64, true));
        for name in ["H", "A", "M0"] {
            ratio(name.to_string());
        }
        for prefix in ["uncensored", "censored", "contribution"] {
            for key in &self.keys {
                ratio(format!("{prefix}_{key}"));
            }
        }
        fields.into()
    }

    /// The result: a list of every cut-off's measures.
    fn list_type(&self) -> DataType {
        DataType::List(Arc::new(Field::new_list_field(
            DataType::Struct(self.fields()),
            false,
        )))
    }
}

impl ScalarUDFImpl for MpiMeasures {
    fn name(&self) -> &str {
        "mpi_measures"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(self.list_type())
    }
    fn return_field_from_args(&self, _args: ReturnFieldArgs) -> DfResult<FieldRef> {
        // Never null: a region without sums has population 0.
        Ok(Arc::new(Field::new(self.name(), self.list_type(), false)))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let regions = args.number_rows;
        let [sums] = args.args.as_slice() else {
            return exec_err!("mpi_measures takes the sums of a region");
        };
        let sums = sums.to_array(regions)?;
        let bands = self.params.checked()?;
        let weights = &self.params.weights;
        let indicators = weights.len();
        if self.keys.len() != indicators {
            return exec_err!(
                "mpi_measures: {} keys for {indicators} weights",
                self.keys.len()
            );
        }
        // The cut-offs in ascending order (as given among equals).
        let order = &bands.order;
        let n = regions * order.len();
        // The integer sums of each region at each cut-off, column by column.
        let mut ks = Vec::with_capacity(n);
        let mut population = Vec::with_capacity(n);
        let mut excluded = Vec::with_capacity(n);
        let mut poor = Vec::with_capacity(n);
        let mut uncensored: Vec<Vec<i64>> =
            (0..indicators).map(|_| Vec::with_capacity(n)).collect();
        let mut censored: Vec<Vec<i64>> = (0..indicators).map(|_| Vec::with_capacity(n)).collect();
        let mut s = CutoffSums::default();
        for (_, list) in each_list(&sums, bands.width(), None)? {
            for i in order {
                bands.by_cutoff(list, *i, &mut s);
                ks.push(self.params.cutoffs[*i]);
                population.push(s.population);
                excluded.push(s.excluded);
                poor.push(s.poor);
                for (column, v) in uncensored.iter_mut().zip(&s.uncensored) {
                    column.push(*v);
                }
                for (column, v) in censored.iter_mut().zip(&s.censored) {
                    column.push(*v);
                }
            }
        }
        // The rows gathered (one per region and cut-off).
        let n = population.len();
        let float = |v: &[i64]| v.iter().map(|x| *x as f64).collect::<Vec<f64>>();
        let persons = float(&population);
        let poor = float(&poor);
        // Σ w_j·c_j = Σ size·c(k) over the poor, added in indicator order.
        let censored_sum: Vec<f64> = (0..n)
            .map(|r| {
                weights
                    .iter()
                    .zip(&censored)
                    .map(|(w, c)| w * c[r] as f64)
                    .reduce(|a, b| a + b)
                    .unwrap_or(0.0)
            })
            .collect();
        // num / den, null where den is 0 (one validity per denominator).
        let valid =
            |den: &[f64]| NullBuffer::new(BooleanBuffer::collect_bool(n, |r| den[r] != 0.0));
        let (by_persons, by_poor, by_censored) =
            (valid(&persons), valid(&poor), valid(&censored_sum));
        let ratio = |num: &[f64], den: &[f64], nulls: &NullBuffer| -> ArrayRef {
            let values: Vec<f64> = num.iter().zip(den).map(|(a, b)| a / b).collect();
            Arc::new(Float64Array::new(values.into(), Some(nulls.clone())))
        };
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(Float64Array::from(ks)),
            Arc::new(Int64Array::from(population)),
            Arc::new(Int64Array::from(excluded)),
            ratio(&poor, &persons, &by_persons),
            ratio(&censored_sum, &poor, &by_poor),
            ratio(&censored_sum, &persons, &by_persons),
        ];
        for u in &uncensored {
            columns.push(ratio(&float(u), &persons, &by_persons));
        }
        for c in &censored {
            columns.push(ratio(&float(c), &persons, &by_persons));
        }
        for (w, c) in weights.iter().zip(&censored) {
            let weighted: Vec<f64> = c.iter().map(|x| w * *x as f64).collect();
            columns.push(ratio(&weighted, &censored_sum, &by_censored));
        }
        let fields = self.fields();
        let measures = StructArray::try_new(fields.clone(), columns, None)?;
        let offsets = OffsetBuffer::from_lengths(std::iter::repeat_n(order.len(), regions));
        let list = ListArray::try_new(
            Arc::new(Field::new_list_field(DataType::Struct(fields), false)),
            offsets,
            Arc::new(measures),
            None,
        )?;
        Ok(ColumnarValue::Array(Arc::new(list)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::deprivation::tests::{params, sums, HOUSEHOLDS};
    use datafusion::arrow::array::{Array, FixedSizeListArray};
    use datafusion::common::cast::{
        as_float64_array, as_int64_array, as_list_array, as_struct_array,
    };

    /// `udf` called on the one column `arg`.
    fn call(udf: &ScalarUDF, arg: ArrayRef) -> ArrayRef {
        let rows = arg.len();
        let args = ScalarFunctionArgs {
            arg_fields: vec![Arc::new(Field::new("x", arg.data_type().clone(), true))],
            args: vec![ColumnarValue::Array(arg)],
            number_rows: rows,
            return_field: Arc::new(Field::new("m", udf.return_type(&[]).unwrap(), false)),
            config_options: Arc::new(Default::default()),
        };
        udf.invoke_with_args(args).unwrap().to_array(rows).unwrap()
    }

    /// The hand-computed households' sums, then a null list (no
    /// households), for the index of `params()` with cut-offs 1/2, 1/4.
    fn two_regions() -> ArrayRef {
        let p = params();
        let s = sums(&p, &HOUSEHOLDS);
        let width = s.len();
        // A null list's slots are not read: filled with -1.
        let values: Vec<i64> = s
            .into_iter()
            .chain(std::iter::repeat_n(-1, width))
            .collect();
        Arc::new(
            FixedSizeListArray::try_new(
                Arc::new(Field::new_list_field(DataType::Int64, true)),
                width as i32,
                Arc::new(Int64Array::from(values)),
                Some(vec![true, false].into()),
            )
            .unwrap(),
        )
    }

    const KEYS: [&str; 3] = ["a", "b", "c"];

    #[test]
    fn measures_by_hand() {
        let p = params();
        let keys = KEYS.map(String::from);
        // The cut-offs given in descending order: the result lists them
        // ascending.
        let udf = mpi_measures_udf(&p.weights, &[0.5, 0.25], &keys);
        let out = call(&udf, two_regions());
        let out = as_list_array(&out).unwrap();
        assert_eq!(out.value_offsets(), [0, 2, 4]);
        let out = as_struct_array(out.values()).unwrap();
        let ints = |name: &str| {
            as_int64_array(out.column_by_name(name).unwrap())
                .unwrap()
                .values()
                .to_vec()
        };
        let floats = |name: &str| {
            let a = as_float64_array(out.column_by_name(name).unwrap()).unwrap();
            (0..4)
                .map(|r| a.is_valid(r).then(|| a.value(r)))
                .collect::<Vec<_>>()
        };
        // Rows: the region at 1/4 and at 1/2, then the region without
        // households at both.
        assert_eq!(floats("k"), [Some(0.25), Some(0.5), Some(0.25), Some(0.5)]);
        assert_eq!(ints("population"), [9, 9, 0, 0]);
        assert_eq!(ints("excluded_households"), [2, 2, 0, 0]);
        // At 1/4: 7 poor of 9 (4 with score 1/2, 3 with 1/4): A = (2 +
        // 3/4) / 7, M0 = 2.75 / 9; among the poor deprived in b: 7, c: 4.
        // At 1/2: the 4 persons of the first household: H = 4/9, A = 1/2,
        // M0 = 2/9; contributions 1/4·4 / 2 each for b and c.
        assert_eq!(floats("H"), [Some(7.0 / 9.0), Some(4.0 / 9.0), None, None]);
        assert_eq!(floats("A"), [Some(2.75 / 7.0), Some(0.5), None, None]);
        assert_eq!(
            floats("M0"),
            [Some(2.75 / 9.0), Some(2.0 / 9.0), None, None]
        );
        assert_eq!(floats("uncensored_a"), [Some(0.0), Some(0.0), None, None]);
        assert_eq!(
            floats("uncensored_b"),
            [Some(7.0 / 9.0), Some(7.0 / 9.0), None, None]
        );
        assert_eq!(
            floats("censored_c"),
            [Some(4.0 / 9.0), Some(4.0 / 9.0), None, None]
        );
        assert_eq!(floats("contribution_a"), [Some(0.0), Some(0.0), None, None]);
        assert_eq!(
            floats("contribution_b"),
            [Some(0.25 * 7.0 / 2.75), Some(0.5), None, None]
        );
        assert_eq!(
            floats("contribution_c"),
            [Some(0.25 * 4.0 / 2.75), Some(0.5), None, None]
        );
    }
}
