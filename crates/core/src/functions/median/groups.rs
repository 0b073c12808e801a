//! The weighted median of many groups at once (GROUP BY): one flat vector
//! of pairs tagged with their group, bucketed by a counting sort.

use super::*;

/// Weighted-median state of many groups at once (the fast path DataFusion
/// uses for GROUP BY). New pairs are appended to one flat vector tagged
/// with their group — no allocation per group. The first emit buckets all
/// pairs by group with one counting sort, so each group's pairs become one
/// contiguous slice (the median is selected in place, the state lists are
/// that order); DataFusion emits a group table in chunks of a batch
/// (`EmitTo::First`), and later chunks are then slices of those buckets.
/// When every pair came in lists (a roll-up's input, a final phase's
/// states) and every group is emitted at once, the pairs are read
/// straight from the lists instead (`only_runs`): copied once into the
/// state, or gathered a group at a time for its median.
#[derive(Debug)]
pub(super) struct WeightedMedianGroups {
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
    pub(super) num_groups: usize,
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

impl Run {
    /// The run's values and weights in the arrays of `sources`.
    fn slices<'a>(&self, sources: &'a [(Float64Array, Int64Array)]) -> (&'a [f64], &'a [i64]) {
        let (v, w) = &sources[self.source];
        (
            &v.values()[self.v..self.v + self.len],
            &w.values()[self.w..self.w + self.len],
        )
    }
}

impl WeightedMedianGroups {
    pub(super) fn new(output: Output) -> Self {
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
            let (v, w) = r.slices(&self.sources);
            let at = &mut next[r.group as usize];
            let dst = &mut pairs[*at..*at + r.len];
            for (d, p) in dst.iter_mut().zip(v.iter().zip(w)) {
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

    /// Whether every pair not yet emitted lies in `runs` (list input only,
    /// nothing bucketed yet): an emit of every group then reads the pairs
    /// straight from the runs (`lists_from_runs`, `medians_from_runs`)
    /// instead of bucketing them first — one copy of each pair rather
    /// than two, and no table of every pair at once for the medians.
    pub(super) fn only_runs(&self, emit_to: EmitTo) -> bool {
        let all = match emit_to {
            EmitTo::All => true,
            EmitTo::First(n) => n >= self.num_groups,
        };
        all && self.fresh.is_empty() && self.first == 0 && self.done.groups() == 0
    }

    /// The runs in group order (by a counting sort, stable) and where each
    /// of the `num_groups` groups starts in that order (`num_groups + 1`
    /// entries).
    fn runs_by_group(&self) -> (Vec<usize>, Vec<usize>) {
        let n = self.num_groups;
        let mut starts = vec![0usize; n + 1];
        for r in &self.runs {
            starts[r.group as usize + 1] += 1;
        }
        for g in 0..n {
            starts[g + 1] += starts[g];
        }
        let mut next = starts.clone();
        let mut order = vec![0usize; self.runs.len()];
        for (i, r) in self.runs.iter().enumerate() {
            let at = &mut next[r.group as usize];
            order[*at] = i;
            *at += 1;
        }
        (order, starts)
    }

    /// Every group's pairs as the two state lists, copied once from the
    /// runs; every group is emitted.
    fn lists_from_runs(&mut self) -> DfResult<Vec<ArrayRef>> {
        let (order, starts) = self.runs_by_group();
        let total: usize = self.runs.iter().map(|r| r.len).sum();
        let (mut values, mut weights) = (Vec::with_capacity(total), Vec::with_capacity(total));
        let mut offsets = Vec::with_capacity(self.num_groups + 1);
        offsets.push(0i32);
        for g in 0..self.num_groups {
            for &i in &order[starts[g]..starts[g + 1]] {
                let (v, w) = self.runs[i].slices(&self.sources);
                values.extend_from_slice(v);
                weights.extend_from_slice(w);
            }
            offsets.push(i32::try_from(values.len()).map_err(|_| too_many_pairs())?);
        }
        self.clear_runs();
        Ok(state_lists(offsets, values, weights))
    }

    /// Every group's median, its pairs gathered from the runs into one
    /// buffer reused from group to group; every group is emitted.
    fn medians_from_runs(&mut self) -> ArrayRef {
        let (order, starts) = self.runs_by_group();
        let mut pairs: Vec<(f64, i64)> = Vec::new();
        let medians: Float64Array = (0..self.num_groups)
            .map(|g| {
                pairs.clear();
                for &i in &order[starts[g]..starts[g + 1]] {
                    let (v, w) = self.runs[i].slices(&self.sources);
                    pairs.extend(v.iter().copied().zip(w.iter().copied()));
                }
                median_in_place(&mut pairs)
            })
            .collect();
        self.clear_runs();
        Arc::new(medians)
    }

    /// Forget the runs and their arrays once every group is emitted.
    fn clear_runs(&mut self) {
        self.runs = Vec::new();
        self.sources = Vec::new();
        self.num_groups = 0;
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
        if self.only_runs(emit_to) {
            return Ok(match self.output {
                Output::Median => self.medians_from_runs(),
                Output::Pairs => Arc::new(StructArray::new(
                    pairs_fields(),
                    self.lists_from_runs()?,
                    None,
                )),
            });
        }
        let range = self.emit(emit_to);
        let out = self.done.finish(range, self.output);
        self.release_if_done();
        out
    }

    fn state(&mut self, emit_to: EmitTo) -> DfResult<Vec<ArrayRef>> {
        if self.only_runs(emit_to) {
            return self.lists_from_runs();
        }
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
