//! The built-in national poverty line series (2,300 yuan per person per
//! year at 2010 prices, in current yuan).
//!
//! | year | line | source |
//! |---|---|---|
//! | 2014 | 2,800 | approximate (not confirmed from a public source) |
//! | 2015 | 2,855 | approximate |
//! | 2016 | 2,952 | confirmed (Hebei 2016 exit rules, NBS) |
//! | 2017 | 2,952 | approximate (the 2016 figure carried over) |
//! | 2018 | 2,995 | approximate |
//! | 2019 | 3,218 | confirmed (NBS) |
//! | 2020 | 4,000 | confirmed (State Council) |
//!
//! Only 2016, 2019 and 2020 are confirmed from public sources; supply your
//! own `poverty_lines` table when the exact figures matter. The monitoring
//! line defaults to 1.5 × the poverty line.
//!
//! ```
//! assert_eq!(tuopin::lines::builtin_line(2016), Some(2952.0));
//! assert_eq!(tuopin::lines::builtin_line(2013), None);
//! ```

use std::sync::Arc;

use datafusion::arrow::array::{Float64Array, Int32Array, RecordBatch};

use crate::error::Result;
use crate::schema::POVERTY_LINES;
use crate::table::Table;

/// `(year, poverty line)` of the built-in series.
pub const BUILTIN_SERIES: [(i32, f64); 7] = [
    (2014, 2800.0),
    (2015, 2855.0),
    (2016, 2952.0),
    (2017, 2952.0),
    (2018, 2995.0),
    (2019, 3218.0),
    (2020, 4000.0),
];

/// Years of the built-in series confirmed from public sources.
pub const CONFIRMED_YEARS: [i32; 3] = [2016, 2019, 2020];

/// The built-in line for `year`, if the series covers it.
pub fn builtin_line(year: i32) -> Option<f64> {
    BUILTIN_SERIES
        .iter()
        .find(|(y, _)| *y == year)
        .map(|(_, l)| *l)
}

/// The built-in series as a `poverty_lines` table.
pub fn builtin_table() -> Result<Table> {
    let schema = POVERTY_LINES.schema();
    let years = Int32Array::from_iter_values(BUILTIN_SERIES.iter().map(|(y, _)| *y));
    let lines = Float64Array::from_iter_values(BUILTIN_SERIES.iter().map(|(_, l)| *l));
    let monitoring = Float64Array::from_iter_values(BUILTIN_SERIES.iter().map(|(_, l)| l * 1.5));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(years), Arc::new(lines), Arc::new(monitoring)],
    )?;
    Ok(Table::new(schema, vec![batch]))
}
