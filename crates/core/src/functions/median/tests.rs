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
fn groups_roll_up_lists_to_the_same_medians() {
    // Villages (23 groups) rolled up to counties (g % 5) from their
    // lists only, as the metrics plan does: every emit reads the pairs
    // straight from the lists' runs, which arrive out of group order.
    let (g, v, w) = rows(4000, 23, 9);
    let counties: Vec<usize> = g.iter().map(|k| k % 5).collect();
    let want = expected(&counties, &v, &w, 5);
    let mut villages = WeightedMedianGroups::new(Output::Pairs);
    villages
        .update_batch(&[v.clone(), w.clone()], &g, None, 23)
        .unwrap();
    let village_pairs = villages.evaluate(EmitTo::All).unwrap();
    let to_county: Vec<usize> = (0..23).map(|k| k % 5).collect();
    // Partial: two halves of the villages, each a state per county.
    let mut states = Vec::new();
    for (lo, hi) in [(0, 11), (11, 23)] {
        let mut part = WeightedMedianGroups::new(Output::Pairs);
        part.update_batch(
            &[village_pairs.slice(lo, hi - lo)],
            &to_county[lo..hi],
            None,
            5,
        )
        .unwrap();
        assert!(part.only_runs(EmitTo::All));
        states.push(part.state(EmitTo::All).unwrap());
    }
    // Final, once as medians and once as pairs merged again.
    let mut final_medians = WeightedMedianGroups::new(Output::Median);
    let mut final_pairs = WeightedMedianGroups::new(Output::Pairs);
    for state in &states {
        let order: Vec<usize> = (0..5).rev().collect();
        let reversed: Vec<ArrayRef> = state
            .iter()
            .map(|a| {
                let idx = Int64Array::from((0..5).rev().collect::<Vec<i64>>());
                datafusion::arrow::compute::take(a, &idx, None).unwrap()
            })
            .collect();
        final_medians.merge_batch(&reversed, &order, 5).unwrap();
        final_pairs.merge_batch(&reversed, &order, 5).unwrap();
    }
    assert_eq!(medians(&final_medians.evaluate(EmitTo::All).unwrap()), want);
    assert_eq!(final_medians.num_groups, 0);
    let pairs = final_pairs.evaluate(EmitTo::All).unwrap();
    let mut again = WeightedMedianGroups::new(Output::Median);
    again
        .update_batch(&[pairs], &[0, 1, 2, 3, 4], None, 5)
        .unwrap();
    assert_eq!(medians(&again.evaluate(EmitTo::All).unwrap()), want);
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
    for n in (1..60).chain([100, 257, 1000, 4001]) {
        let spread = [3, 10, 1000][n % 3];
        let values: Vec<f64> = (0..n)
            .map(|_| match next() % 13 {
                0 => -0.0,
                1 => 0.0,
                _ => (next() % spread) as f64 - 3.0,
            })
            .collect();
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
        assert_eq!(
            weighted_median(&values, &weights).map(f64::to_bits),
            expected.map(f64::to_bits),
            "case {n}"
        );
    }
    assert_eq!(weighted_median(&[1.0], &[0]), None);
}

#[test]
fn huge_weights_do_not_overflow() {
    // Σ weights is far past i64::MAX: summed in i128.
    let w = i64::MAX;
    assert_eq!(weighted_median(&[1.0, 2.0, 3.0], &[w, w, w]), Some(2.0));
    assert_eq!(weighted_median(&[1.0, 2.0], &[w, w]), Some(1.5));
    assert_eq!(weighted_median(&[5.0, 1.0], &[w, 1]), Some(5.0));
}
