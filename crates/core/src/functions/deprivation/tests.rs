//! Tests of `deprivation_sums`: sums by hand, cut-offs in any order,
//! bands looked up and scored, partial results merged and rolled up.

use super::*;

pub(in crate::functions) fn params() -> Params {
    // Three indicators weighted 1/2, 1/4, 1/4; cut-offs 1/4 and 1/2.
    Params::new(&[0.5, 0.25, 0.25], &[0.25, 0.5])
}

/// The households of the hand-computed case: (pattern, persons).
pub(in crate::functions) const HOUSEHOLDS: [(Option<i64>, i64); 5] = [
    (Some(0b110), 4), // deprived in 2 and 3: score 1/2
    (Some(0b010), 3), // deprived in 2: score 1/4
    (Some(0), 2),     // not deprived
    (None, 5),        // unknown
    (Some(-1), 5),    // unknown
];

/// The sums (bands) of these households under `p`.
pub(in crate::functions) fn sums(p: &Params, households: &[(Option<i64>, i64)]) -> Vec<i64> {
    let bands = p.checked().unwrap();
    let mut sums = vec![0; bands.width()];
    for (pattern, persons) in households {
        bands.add(&mut sums, *pattern, *persons);
    }
    sums
}

fn by_cutoff(bands: &Bands, sums: &[i64], i: usize) -> CutoffSums {
    let mut out = CutoffSums::default();
    bands.by_cutoff(Some(sums), i, &mut out);
    out
}

fn cutoff_sums(
    excluded: i64,
    population: i64,
    uncensored: &[i64],
    poor: i64,
    censored: &[i64],
) -> CutoffSums {
    CutoffSums {
        excluded,
        population,
        uncensored: uncensored.to_vec(),
        poor,
        censored: censored.to_vec(),
    }
}

#[test]
fn one_household_at_a_time_by_hand() {
    let p = params();
    let bands = p.checked().unwrap();
    // Three bands (poor at none, at 1/4 only, at both) of 1 + 3 sums,
    // and the excluded households.
    assert_eq!(bands.width(), 3 * 4 + 1);
    let s = sums(&p, &HOUSEHOLDS);
    assert_eq!(s, [2, 0, 0, 0, 3, 0, 3, 0, 4, 0, 4, 4, 2]);
    assert_eq!(
        by_cutoff(&bands, &s, 0),
        cutoff_sums(2, 9, &[0, 7, 4], 7, &[0, 7, 4])
    );
    assert_eq!(
        by_cutoff(&bands, &s, 1),
        cutoff_sums(2, 9, &[0, 7, 4], 4, &[0, 4, 4])
    );
    let mut none = CutoffSums::default();
    bands.by_cutoff(None, 1, &mut none);
    assert_eq!(none, cutoff_sums(0, 0, &[0, 0, 0], 0, &[0, 0, 0]));
}

#[test]
fn cut_offs_in_any_order_and_repeated_as_each_alone() {
    let weights = [0.5, 0.25, 0.25];
    let households: Vec<(Option<i64>, i64)> = (0..8)
        .map(|pattern| (Some(pattern), pattern + 1))
        .chain([(None, 3)])
        .collect();
    let cutoffs = [0.5, 0.25, 1.0, 0.5, 0.75];
    let all = Params::new(&weights, &cutoffs);
    let all_sums = sums(&all, &households);
    for (i, k) in cutoffs.iter().enumerate() {
        let alone = Params::new(&weights, &[*k]);
        assert_eq!(
            by_cutoff(&all.checked().unwrap(), &all_sums, i),
            by_cutoff(&alone.checked().unwrap(), &sums(&alone, &households), 0),
            "k = {k}"
        );
    }
    // At k = 1 only the household deprived in all three (7: 8 persons)
    // is poor.
    let at_one = by_cutoff(&all.checked().unwrap(), &all_sums, 2);
    assert_eq!((at_one.poor, at_one.censored), (8, vec![8, 8, 8]));
}

#[test]
fn groups_merge_and_roll_up() {
    let p = params();
    let bands = p.checked().unwrap();
    let mut g = Groups::new(p.checked().unwrap());
    let pattern: ArrayRef = Arc::new(Int64Array::from(vec![Some(1), Some(0b110), None]));
    let persons: ArrayRef = Arc::new(Int64Array::from(vec![2, 3, 4]));
    g.update_batch(&[pattern, persons], &[0, 1, 1], None, 2)
        .unwrap();
    let state = g.state(EmitTo::All).unwrap();
    // Both partial groups into one group, as partial results and as
    // the input of a roll-up (`deprivation_sums(sums)`).
    let mut merged = Groups::new(p.checked().unwrap());
    merged.merge_batch(&state, &[0, 0], 1).unwrap();
    let mut rolled = Groups::new(p.checked().unwrap());
    rolled.update_batch(&state, &[0, 0], None, 1).unwrap();
    for mut g in [merged, rolled] {
        let out = g.evaluate(EmitTo::All).unwrap();
        let out = as_fixed_size_list_array(&out).unwrap();
        assert_eq!(out.len(), 1);
        let list = out.value(0);
        let list = as_int64_array(&list).unwrap().values();
        // Household 1 (2 persons, deprived in indicator 1 of weight
        // 1/2) and household 2 (3 persons, score 1/2) are poor at both.
        assert_eq!(
            by_cutoff(&bands, list, 1),
            cutoff_sums(1, 5, &[2, 3, 3], 5, &[2, 3, 3])
        );
    }
}

/// Up to ten indicators a pattern's band is looked up, past ten it is
/// scored per household: both by hand, with bits past the indicators
/// ignored.
#[test]
fn bands_looked_up_to_ten_indicators_and_scored_past() {
    // (indicators, deprivations, band at cut-offs 1/3 and 1/2): equal
    // weights 1/n, so the score is deprivations / n.
    let cases = [
        (10, 3, 0), // 0.3
        (10, 4, 1), // 0.4
        (10, 5, 2), // 0.5 (as floats 0.1 + … + 0.1, within 1e-9)
        (11, 3, 0), // 0.27
        (11, 4, 1), // 0.36
        (11, 5, 1), // 0.45
        (11, 6, 2), // 0.55
    ];
    for (n, deprived, band) in cases {
        let bands = Params::new(&vec![1.0 / n as f64; n], &[1.0 / 3.0, 0.5])
            .checked()
            .unwrap();
        assert_eq!(bands.band_of.len(), if n <= TABULATED { 1 << n } else { 0 });
        let low = (1i64 << deprived) - 1;
        for pattern in [low, low << (n - deprived)] {
            let at = Some((band * bands.band_width(), pattern));
            assert_eq!(bands.place(Some(pattern)), at, "n {n}, {pattern:b}");
            assert_eq!(bands.place(Some(pattern | 1 << 40)), at, "n {n}");
        }
    }
}

/// Batch after batch into the same groups (the accumulator keeps its
/// row places between batches) adds up as one batch does.
#[test]
fn batches_add_up_as_one() {
    let p = params();
    let rows: Vec<(Option<i64>, i64, usize)> = HOUSEHOLDS
        .iter()
        .enumerate()
        .map(|(i, (pattern, persons))| (*pattern, *persons, i % 2))
        .collect();
    let batch = |rows: &[(Option<i64>, i64, usize)]| -> (Vec<ArrayRef>, Vec<usize>) {
        let pattern: ArrayRef = Arc::new(Int64Array::from(
            rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        ));
        let persons: ArrayRef = Arc::new(Int64Array::from(
            rows.iter().map(|r| r.1).collect::<Vec<_>>(),
        ));
        (vec![pattern, persons], rows.iter().map(|r| r.2).collect())
    };
    let mut once = Groups::new(p.checked().unwrap());
    let (values, groups) = batch(&rows);
    once.update_batch(&values, &groups, None, 2).unwrap();
    let mut twice = Groups::new(p.checked().unwrap());
    for part in [&rows[..3], &rows[3..]] {
        let (values, groups) = batch(part);
        twice.update_batch(&values, &groups, None, 2).unwrap();
    }
    assert_eq!(once.sums, twice.sums);
    let (even, odd) = (
        sums(&p, &[HOUSEHOLDS[0], HOUSEHOLDS[2], HOUSEHOLDS[4]]),
        sums(&p, &[HOUSEHOLDS[1], HOUSEHOLDS[3]]),
    );
    assert_eq!(once.sums, [even, odd].concat());
}
