//! `mpi_measures(sums, i)`: the Alkire–Foster measures of a region at
//! cut-off i from its `deprivation_sums` ([`super::deprivation`]).
//!
//! The struct of `population`, `excluded_households`, `H`, `A`, `M0`,
//! `uncensored_<key>`, `censored_<key>`, `contribution_<key>` (definitions
//! in [`crate::mpi`]), every ratio null where there is no one to divide
//! by; null sums (a region without households) give population 0. Made
//! per index with its weights and cut-offs, like `deprivation_sums`.
//!
//! ```sql
//! SELECT code, mpi_measures(sums, 0)['M0'] AS m0 FROM lv
//! ```

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Float64Array, Int64Array, StructArray};
use datafusion::arrow::buffer::{BooleanBuffer, NullBuffer};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields};
use datafusion::common::cast::as_int64_array;
use datafusion::common::exec_err;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};

use super::deprivation::{each_list, list_type, CutoffSums, Params};

/// The `mpi_measures` scalar UDF of an index with these normalised
/// `weights`, `cutoffs` and indicator `keys` (see the module doc).
pub fn mpi_measures_udf(weights: &[f64], cutoffs: &[f64], keys: &[String]) -> ScalarUDF {
    ScalarUDF::from(MpiMeasures {
        signature: Signature::exact(vec![list_type(), DataType::Int64], Volatility::Immutable),
        params: Params::new(weights, cutoffs),
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
    /// The result's fields: the two counts (never null), then the ratios.
    fn fields(&self) -> Fields {
        let mut fields = vec![
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
}

impl ScalarUDFImpl for MpiMeasures {
    fn name(&self) -> &str {
        "mpi_measures"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Struct(self.fields()))
    }
    fn return_field_from_args(&self, _args: ReturnFieldArgs) -> DfResult<FieldRef> {
        // Never a null struct: a region without sums has population 0.
        Ok(Arc::new(Field::new(
            self.name(),
            DataType::Struct(self.fields()),
            false,
        )))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let n = args.number_rows;
        let [sums, cutoff] = args.args.as_slice() else {
            return exec_err!("mpi_measures takes (sums, cut-off index)");
        };
        let (sums, cutoff) = (sums.to_array(n)?, cutoff.to_array(n)?);
        let cutoff = as_int64_array(&cutoff)?;
        let bands = self.params.checked()?;
        let weights = &self.params.weights;
        let indicators = weights.len();
        if self.keys.len() != indicators {
            return exec_err!(
                "mpi_measures: {} keys for {indicators} weights",
                self.keys.len()
            );
        }
        // The integer sums of each row at its cut-off, column by column.
        let mut population = Vec::with_capacity(n);
        let mut excluded = Vec::with_capacity(n);
        let mut poor = Vec::with_capacity(n);
        let mut uncensored: Vec<Vec<i64>> =
            (0..indicators).map(|_| Vec::with_capacity(n)).collect();
        let mut censored: Vec<Vec<i64>> = (0..indicators).map(|_| Vec::with_capacity(n)).collect();
        let mut s = CutoffSums::default();
        for (row, list) in each_list(&sums, bands.width(), None)? {
            let i = match cutoff.is_valid(row).then(|| cutoff.value(row)) {
                Some(i) if (0..self.params.cutoffs.len() as i64).contains(&i) => i as usize,
                other => return exec_err!("mpi_measures: no cut-off {other:?}"),
            };
            bands.by_cutoff(list, i, &mut s);
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
        // The rows gathered (one per row of `sums`).
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
        Ok(ColumnarValue::Array(Arc::new(StructArray::try_new(
            self.fields(),
            columns,
            None,
        )?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::deprivation::tests::{params, sums, HOUSEHOLDS};
    use datafusion::arrow::array::ListArray;
    use datafusion::arrow::buffer::{OffsetBuffer, ScalarBuffer};
    use datafusion::common::cast::{as_float64_array, as_struct_array};
    use datafusion::common::ScalarValue;

    #[test]
    fn measures_by_hand() {
        let p = params();
        let keys = ["a", "b", "c"].map(String::from);
        let udf = mpi_measures_udf(&p.weights, &p.cutoffs, &keys);
        let s = sums(&p, &HOUSEHOLDS);
        let width = s.len();
        let lists = ListArray::try_new(
            Arc::new(Field::new_list_field(DataType::Int64, true)),
            OffsetBuffer::new(ScalarBuffer::from(vec![0, width as i32, width as i32])),
            Arc::new(Int64Array::from(s)),
            Some(vec![true, false].into()),
        )
        .unwrap();
        let args = ScalarFunctionArgs {
            args: vec![
                ColumnarValue::Array(Arc::new(lists)),
                ColumnarValue::Scalar(ScalarValue::Int64(Some(1))),
            ],
            arg_fields: vec![
                Arc::new(Field::new("sums", list_type(), true)),
                Arc::new(Field::new("i", DataType::Int64, false)),
            ],
            number_rows: 2,
            return_field: Arc::new(Field::new("m", udf.return_type(&[]).unwrap(), false)),
            config_options: Arc::new(Default::default()),
        };
        let out = udf.invoke_with_args(args).unwrap().to_array(2).unwrap();
        let out = as_struct_array(&out).unwrap();
        let counts = |name: &str| {
            as_int64_array(out.column_by_name(name).unwrap())
                .unwrap()
                .values()
                .to_vec()
        };
        assert_eq!(counts("population"), [9, 0]);
        assert_eq!(counts("excluded_households"), [2, 0]);
        let ratio = |name: &str| {
            let a = as_float64_array(out.column_by_name(name).unwrap()).unwrap();
            (0..2)
                .map(|r| a.is_valid(r).then(|| a.value(r)))
                .collect::<Vec<_>>()
        };
        // At k = 1/2 the 4 persons of the first household are poor, with
        // score 1/2: H = 4/9, A = 1/2, M0 = 2/9; deprived (of 9): b 7,
        // c 4; among the poor: b 4, c 4; contributions 1/4·4 / 2 each.
        assert_eq!(ratio("H"), [Some(4.0 / 9.0), None]);
        assert_eq!(ratio("A"), [Some(0.5), None]);
        assert_eq!(ratio("M0"), [Some(2.0 / 9.0), None]);
        assert_eq!(ratio("uncensored_a"), [Some(0.0), None]);
        assert_eq!(ratio("uncensored_b"), [Some(7.0 / 9.0), None]);
        assert_eq!(ratio("censored_c"), [Some(4.0 / 9.0), None]);
        assert_eq!(ratio("contribution_a"), [Some(0.0), None]);
        assert_eq!(ratio("contribution_b"), [Some(0.5), None]);
        assert_eq!(ratio("contribution_c"), [Some(0.5), None]);
    }
}
