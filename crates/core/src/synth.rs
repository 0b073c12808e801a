//! Deterministic synthetic registries shaped like Hebei (DESIGN §6).
//!
//! Province 13, 11 cities, about 168 counties (62 designated poor: 45
//! national, 17 provincial), about 2,200 townships and 49,000 villages
//! (about 7,400 registered poor villages) at full scale, scaled down in
//! proportion with `households`. Past 99 counties in a city (national
//! scale, tens of millions of households) cities are split into numbered
//! parts so every region code keeps its 12 digits; up to 50 million
//! households.
//!
//! **Calibration** (issue #20; the figures the Hebei platform announced in
//! 2016): at the end of 2015 about 3.1 million rural people were still
//! poor under the current line, about 1 million a year had exited in the
//! 十二五 years (2014, 2015), the 2016 target was 1 million exits, and 19
//! of the 62 designated counties exited (摘帽) in 2016. A registry that
//! holds 3.1 M poor people after 2 M exits has registered about 5.4 M
//! people — at 2.59 people per household (the size mix below) about
//! 2,070,000 households: that is [`FULL_SCALE`]. Identification is 88 % in
//! 2014, 7 % in 2015 and 5 % in 2016–2019; the yearly exit hazards (21 %,
//! 24 %, 32 %, then 40–50 %, 97 % in 2020) give about 1.0 M exits in each
//! of 2014, 2015 and 2016 and 3.1 M poor or returned people in the 2015
//! snapshot; 19/62 of the designated counties are recorded as exiting in
//! 2016 (the least poor by their score) and the rest over 2017–2020, none
//! left after 2020. Rural populations make the registry's poverty
//! incidence a few percent in 2016–2017 and near zero in 2020. Everything
//! per household (incomes, indicators, members, dates) is illustrative,
//! not public data. `--households 1200000` (the benchmarks' registry) is
//! 58 % of that scale.
//!
//! Yearly snapshots 2014–2020: incomes around the poverty line; indicator
//! gaps and nulls; exit procedure dates with some irregularities; members,
//! assistance, funds and third-party assessments.
//!
//! The same seed gives the same tables (and the same Parquet files, byte
//! for byte). Faulty rows are added only when `faults > 0`.
//!
//! ```
//! use tuopin::synth::{generate_tables, GenerateOptions};
//! let tables = generate_tables(&GenerateOptions { households: 500, seed: 7, ..Default::default() }).unwrap();
//! let names: Vec<_> = tables.iter().map(|(n, _)| *n).collect();
//! assert!(names.contains(&"households") && names.contains(&"members"));
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Float64Builder, Int32Builder, Int64Builder,
    RecordBatch, StringBuilder,
};
use datafusion::arrow::datatypes::SchemaRef;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::codes::id_check_char;
use crate::error::{Error, Result};
use crate::lines::{builtin_line, BUILTIN_SERIES};
use crate::schema::{self, TableSpec};

/// Households of the full-scale (Hebei) registry: about 5.4 million
/// registered people, 3.1 million of them poor at the end of 2015 (see the
/// module doc for the calibration).
pub const FULL_SCALE: usize = 2_070_000;
/// First and last registry years.
pub const YEARS: std::ops::RangeInclusive<i32> = 2014..=2020;

/// Progress callback: (stage, done, total).
pub type Progress = Arc<dyn Fn(&str, u64, u64) + Send + Sync>;

/// Generator settings.
#[derive(Clone)]
pub struct GenerateOptions {
    /// Number of registered households ([`FULL_SCALE`] = Hebei).
    pub households: usize,
    /// Random seed.
    pub seed: u64,
    /// Share of deliberately faulty rows (0 = none).
    pub faults: f64,
    /// Write only this year's snapshot (households, members, assistance,
    /// funds, assessments); the households' lives are still simulated over
    /// 2014–2020. `None`: every year.
    pub only_year: Option<i32>,
    /// Called with (stage, done, total) as work progresses.
    pub progress: Option<Progress>,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            households: 10_000,
            seed: 2016,
            faults: 0.0,
            only_year: None,
            progress: None,
        }
    }
}

impl std::fmt::Debug for GenerateOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GenerateOptions")
            .field("households", &self.households)
            .field("seed", &self.seed)
            .field("faults", &self.faults)
            .field("only_year", &self.only_year)
            .finish()
    }
}

/// Hebei's cities: code, name, relative number of counties, share of the
/// counties designated poor.
const CITIES: [(&str, &str, f64, f64); 11] = [
    ("1301", "石家庄市", 22.0, 0.18),
    ("1302", "唐山市", 14.0, 0.0),
    ("1303", "秦皇岛市", 7.0, 0.3),
    ("1304", "邯郸市", 18.0, 0.3),
    ("1305", "邢台市", 18.0, 0.5),
    ("1306", "保定市", 24.0, 0.45),
    ("1307", "张家口市", 16.0, 0.85),
    ("1308", "承德市", 11.0, 0.75),
    ("1309", "沧州市", 16.0, 0.3),
    ("1310", "廊坊市", 10.0, 0.0),
    ("1311", "衡水市", 12.0, 0.45),
];

/// The region hierarchy (one row per unit) plus what households need.
#[derive(Debug, Clone)]
pub struct Regions {
    /// Region rows: code, name, rural_population (villages), poor_village,
    /// poor_county, western, exit_year.
    pub rows: Vec<RegionRow>,
    villages: Vec<usize>,
}

/// One generated region.
#[derive(Debug, Clone)]
pub struct RegionRow {
    /// 12-digit code.
    pub code: String,
    /// Name.
    pub name: String,
    /// 农业户籍人口 (villages only).
    pub rural_population: Option<i64>,
    /// Registered poor village.
    pub poor_village: Option<bool>,
    /// `national` / `provincial` for designated counties.
    pub poor_county: Option<&'static str>,
    /// Western thresholds (false for Hebei, set on the province).
    pub western: Option<bool>,
    /// Exit year of a poor village or county.
    pub exit_year: Option<i32>,
    weight: f64,
}

/// The largest registry the generator makes: past it the split cities of
/// one province would need more than 99 city codes.
pub const MAX_HOUSEHOLDS: usize = 50_000_000;

fn scaled(full: f64, scale: f64, min: usize) -> usize {
    ((full * scale).round() as usize).max(min)
}

/// Generate the region hierarchy for a registry of `households`.
pub fn regions(households: usize, seed: u64) -> Regions {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_0001);
    let scale = households as f64 / FULL_SCALE as f64;
    let n_counties = scaled(168.0, scale, 11);
    let n_townships = scaled(2200.0, scale, n_counties);
    let n_villages = scaled(49000.0, scale, n_townships);
    let n_national = ((45.0 / 168.0) * n_counties as f64).round() as usize;
    let n_provincial = ((17.0 / 168.0) * n_counties as f64).round() as usize;
    let n_poor_villages = ((7400.0 / 49000.0) * n_villages as f64).round() as usize;

    // Counties per city by largest remainder, at least one each.
    let total_w: f64 = CITIES.iter().map(|c| c.2).sum();
    let mut per_city: Vec<usize> = CITIES
        .iter()
        .map(|c| ((c.2 / total_w) * n_counties as f64).floor().max(1.0) as usize)
        .collect();
    let mut i = 0;
    while per_city.iter().sum::<usize>() < n_counties {
        per_city[i % CITIES.len()] += 1;
        i += 1;
    }
    while per_city.iter().sum::<usize>() > n_counties {
        let j = per_city
            .iter()
            .enumerate()
            .max_by_key(|(_, n)| **n)
            .map(|(j, _)| j)
            .unwrap_or(0);
        per_city[j] -= 1;
    }

    // A city code has two digits for its counties: past 99 counties (a
    // registry of national size) a city is split into parts of at most 99,
    // numbered on after the Hebei cities, so every code keeps 12 digits.
    // Below that scale the cities are exactly Hebei's.
    let mut cities: Vec<(String, String, f64)> = Vec::new(); // code, name, poor share
    let mut parts: Vec<usize> = Vec::new(); // counties of each city
    let mut next_code = CITIES.len() + 1;
    for (ci, (code, name, _, poor_share)) in CITIES.iter().enumerate() {
        let mut left = per_city[ci];
        let mut part = 0;
        while left > 0 || part == 0 {
            let take = left.min(99);
            let (code, name) = if part == 0 {
                (code.to_string(), name.to_string())
            } else {
                next_code += 1;
                (
                    format!("13{:02}", next_code - 1),
                    format!("{name}{}区", part + 1),
                )
            };
            cities.push((code, name, *poor_share));
            parts.push(take);
            left -= take;
            part += 1;
        }
    }

    // Counties, ranked by a poverty score so designation follows the cities'
    // shares: the top n_national are national, the next n_provincial
    // provincial.
    let mut counties: Vec<(String, String, f64)> = Vec::new();
    for (ci, (code, name, poor_share)) in cities.iter().enumerate() {
        for k in 0..parts[ci] {
            let ccode = format!("{code}{:02}000000", k + 1);
            let score = poor_share + rng.random::<f64>() * 0.6;
            counties.push((
                ccode,
                format!("{}第{}县", name.trim_end_matches('市'), k + 1),
                score,
            ));
        }
    }
    let mut ranked: Vec<usize> = (0..counties.len()).collect();
    ranked.sort_by(|a, b| counties[*b].2.total_cmp(&counties[*a].2));
    let mut designation: BTreeMap<usize, &'static str> = BTreeMap::new();
    for (r, idx) in ranked.iter().enumerate() {
        if r < n_national {
            designation.insert(*idx, "national");
        } else if r < n_national + n_provincial {
            designation.insert(*idx, "provincial");
        }
    }

    let mut rows = vec![RegionRow {
        code: "130000000000".into(),
        name: "河北省".into(),
        rural_population: None,
        poor_village: None,
        poor_county: None,
        western: Some(false),
        exit_year: None,
        weight: 0.0,
    }];
    for (code, name, _) in &cities {
        rows.push(plain(format!("{code}00000000"), name.clone()));
    }
    // Townships per county and villages per township, spread evenly.
    let spread =
        |total: usize, parts: usize, k: usize| total / parts + usize::from(k < total % parts);
    let mut villages = Vec::new();
    let mut township_counter = 0usize;
    let mut village_budget: Vec<usize> = Vec::new();
    for t in 0..n_townships {
        village_budget.push(spread(n_villages, n_townships, t));
    }
    // Poor villages go preferentially to designated counties.
    let mut all_village_slots: Vec<(usize, bool)> = Vec::new(); // (row index, in poor county)
                                                                // Exit (摘帽) years of the designated counties: the least poor 19/62
                                                                // in 2016, the others in four even groups over 2017–2020.
    let designated: Vec<usize> = ranked
        .iter()
        .copied()
        .filter(|i| designation.contains_key(i))
        .rev()
        .collect();
    let first = ((19.0 / 62.0) * designated.len() as f64).round() as usize;
    let later = designated.len() - first;
    let mut exit_year: BTreeMap<usize, i32> = BTreeMap::new();
    for (r, idx) in designated.iter().enumerate() {
        let year = if r < first {
            2016
        } else {
            2017 + ((r - first) * 4 / later.max(1)) as i32
        };
        exit_year.insert(*idx, year);
    }
    for (ci, (ccode, cname, _)) in counties.iter().enumerate() {
        let poor = designation.get(&ci).copied();
        let mut county = plain(ccode.clone(), cname.clone());
        county.poor_county = poor;
        county.exit_year = exit_year.get(&ci).copied();
        rows.push(county);
        let n_t = spread(n_townships, counties.len(), ci);
        for t in 0..n_t {
            let tcode = format!("{}{:03}000", &ccode[..6], t + 1);
            rows.push(plain(tcode.clone(), format!("{cname}第{}乡镇", t + 1)));
            let n_v = village_budget
                .get(township_counter)
                .copied()
                .unwrap_or(1)
                .max(1);
            township_counter += 1;
            for v in 0..n_v {
                let vcode = format!("{}{:03}", &tcode[..9], v + 1);
                rows.push(plain(vcode, format!("第{}村", v + 1)));
                all_village_slots.push((rows.len() - 1, poor.is_some()));
            }
        }
    }
    // Choose poor villages: weight 4 in designated counties, 1 elsewhere.
    let mut keyed: Vec<(f64, usize)> = all_village_slots
        .iter()
        .map(|(idx, in_poor)| {
            let w = if *in_poor { 4.0 } else { 1.0 };
            // Efraimidis–Spirakis weighted sampling key.
            (rng.random::<f64>().powf(1.0 / w), *idx)
        })
        .collect();
    keyed.sort_by(|a, b| b.0.total_cmp(&a.0));
    for (r, (_, idx)) in keyed.iter().enumerate() {
        let poor = r < n_poor_villages;
        let row = &mut rows[*idx];
        row.poor_village = Some(poor);
        row.exit_year = poor.then(|| 2016 + rng.random_range(0..5));
        row.weight = if poor { 3.0 } else { 0.6 } * (0.5 + rng.random::<f64>());
        villages.push(*idx);
    }
    for (idx, in_poor) in &all_village_slots {
        if *in_poor {
            rows[*idx].weight *= 2.0;
        }
    }
    villages.sort_unstable();
    Regions { rows, villages }
}

fn plain(code: String, name: String) -> RegionRow {
    RegionRow {
        code,
        name,
        rural_population: None,
        poor_village: None,
        poor_county: None,
        western: None,
        exit_year: None,
        weight: 0.0,
    }
}

/// A household's life in the registry.
#[derive(Debug, Clone)]
struct Life {
    village: u32,
    size: u8,
    category: u8,
    cause: u8,
    identified: i32,
    exit1: Option<i32>,
    returned: Option<i32>,
    exit2: Option<i32>,
    mistaken: bool,
}

impl Life {
    /// Status and exit_year in snapshot `y` (None: not yet identified).
    fn status(&self, y: i32) -> Option<(u8, Option<i32>)> {
        if y < self.identified {
            return None;
        }
        match (self.exit1, self.returned, self.exit2) {
            (Some(e1), _, _) if y < e1 => Some((0, None)),
            (None, _, _) => Some((0, None)),
            (Some(e1), Some(r), _) if y >= r => match self.exit2 {
                Some(e2) if y >= e2 => Some((1, Some(e2))),
                _ => Some((2, Some(e1))),
            },
            (Some(e1), _, _) => Some((1, Some(e1))),
        }
    }
}

const CAUSE_WEIGHTS: [f64; 12] = [
    42.0, 10.0, 5.0, 3.0, 3.0, 2.0, 10.0, 12.0, 7.0, 2.0, 2.0, 2.0,
];
const SIZE_WEIGHTS: [f64; 7] = [25.0, 32.0, 18.0, 14.0, 7.0, 3.0, 1.0];

fn pick(rng: &mut ChaCha8Rng, weights: &[f64]) -> usize {
    let total: f64 = weights.iter().sum();
    let mut x = rng.random::<f64>() * total;
    for (i, w) in weights.iter().enumerate() {
        if x < *w {
            return i;
        }
        x -= w;
    }
    weights.len() - 1
}

fn lives(regions: &Regions, households: usize, rng: &mut ChaCha8Rng) -> Vec<Life> {
    let mut cum = Vec::with_capacity(regions.villages.len());
    let mut acc = 0.0;
    for idx in &regions.villages {
        acc += regions.rows[*idx].weight.max(1e-6);
        cum.push(acc);
    }
    let mut out = Vec::with_capacity(households);
    for _ in 0..households {
        let x = rng.random::<f64>() * acc;
        let v = cum
            .partition_point(|c| *c < x)
            .min(cum.len().saturating_sub(1));
        // Identification: 88 % in 2014, 7 % in 2015, the rest 2016–2019.
        let id = rng.random::<f64>();
        let identified = if id < 0.88 {
            2014
        } else if id < 0.95 {
            2015
        } else {
            rng.random_range(2016..=2019)
        };
        // Yearly exit hazards calibrated to Hebei (module doc): about 1 M
        // people exit in each of 2014, 2015 and 2016 at full scale;
        // almost everyone left is lifted out in 2020.
        let mut exit1 = None;
        for y in identified.max(2014)..=2020 {
            let p = match y {
                2014 => 0.212,
                2015 => 0.244,
                2016 => 0.316,
                2017 => 0.40,
                2018 => 0.45,
                2019 => 0.50,
                _ => 0.97,
            };
            if rng.random::<f64>() < p {
                exit1 = Some(y);
                break;
            }
        }
        // A few return to poverty (by 2019); most of them exit again by
        // 2020, when poverty under the current line ended.
        let returned = exit1
            .filter(|e| *e < 2019 && rng.random::<f64>() < 0.04)
            .map(|e| rng.random_range(e + 1..=2019));
        let exit2 = returned
            .filter(|_| rng.random::<f64>() < 0.9)
            .map(|r| rng.random_range(r + 1..=2020));
        out.push(Life {
            village: v as u32,
            size: (pick(rng, &SIZE_WEIGHTS) + 1) as u8,
            category: pick(rng, &[70.0, 25.0, 5.0]) as u8,
            cause: pick(rng, &CAUSE_WEIGHTS) as u8,
            identified,
            exit1,
            returned,
            exit2,
            mistaken: rng.random::<f64>() < 0.005,
        });
    }
    out
}

/// Receives generated tables batch by batch.
trait Sink {
    fn push(&mut self, table: &'static TableSpec, batch: RecordBatch) -> Result<()>;
}

struct MemorySink(BTreeMap<&'static str, Vec<RecordBatch>>);

impl Sink for MemorySink {
    fn push(&mut self, table: &'static TableSpec, batch: RecordBatch) -> Result<()> {
        self.0.entry(table.name).or_default().push(batch);
        Ok(())
    }
}

struct ParquetSink {
    dir: std::path::PathBuf,
    writers: BTreeMap<&'static str, parquet::arrow::ArrowWriter<std::fs::File>>,
}

impl Sink for ParquetSink {
    fn push(&mut self, table: &'static TableSpec, batch: RecordBatch) -> Result<()> {
        if !self.writers.contains_key(table.name) {
            let path = self.dir.join(format!("{}.parquet", table.name));
            let file = std::fs::File::create(&path).map_err(|e| Error::io(&path, e))?;
            let props = parquet::file::properties::WriterProperties::builder()
                .set_compression(parquet::basic::Compression::SNAPPY)
                .set_max_row_group_row_count(Some(256 * 1024))
                .build();
            let w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), Some(props))?;
            self.writers.insert(table.name, w);
        }
        if let Some(w) = self.writers.get_mut(table.name) {
            w.write(&batch)?;
        }
        Ok(())
    }
}

/// Generate every table in memory, as `(table, batches)`.
pub fn generate_tables(opts: &GenerateOptions) -> Result<Vec<(&'static str, Vec<RecordBatch>)>> {
    let mut sink = MemorySink(BTreeMap::new());
    run(opts, &mut sink)?;
    Ok(sink.0.into_iter().collect())
}

/// Generate every table and write `<table>.parquet` files into `dir`.
pub fn generate(opts: &GenerateOptions, dir: impl AsRef<Path>) -> Result<()> {
    let dir = dir.as_ref();
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut sink = ParquetSink {
        dir: dir.to_path_buf(),
        writers: BTreeMap::new(),
    };
    run(opts, &mut sink)?;
    for (_, w) in std::mem::take(&mut sink.writers) {
        w.close()?;
    }
    Ok(())
}

fn batch(schema: SchemaRef, columns: Vec<ArrayRef>) -> Result<RecordBatch> {
    Ok(RecordBatch::try_new(schema, columns)?)
}

fn days(y: i32, m: u32, d: u32) -> i32 {
    // Days since 1970-01-01 (proleptic Gregorian).
    let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m as i32 + 2) / 5 + d as i32 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn run(opts: &GenerateOptions, sink: &mut dyn Sink) -> Result<()> {
    if opts.households == 0 || opts.households > MAX_HOUSEHOLDS {
        return Err(Error::InvalidArgument(format!(
            "households must be between 1 and {MAX_HOUSEHOLDS}"
        )));
    }
    if !(0.0..=0.5).contains(&opts.faults) {
        return Err(Error::InvalidArgument(
            "faults must be between 0 and 0.5".into(),
        ));
    }
    let progress = |stage: &str, done: u64, total: u64| {
        if let Some(p) = &opts.progress {
            p(stage, done, total)
        }
    };
    let mut regions = regions(opts.households, opts.seed);
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let lives = lives(&regions, opts.households, &mut rng);

    // Rural population: the village's registered people are 5–30% of it.
    let mut persons = vec![0i64; regions.villages.len()];
    for l in &lives {
        persons[l.village as usize] += i64::from(l.size);
    }
    for (vi, idx) in regions.villages.iter().enumerate() {
        let row = &mut regions.rows[*idx];
        let share = if row.poor_village == Some(true) {
            0.12 + 0.15 * rng.random::<f64>()
        } else {
            0.03 + 0.06 * rng.random::<f64>()
        };
        let pop = ((persons[vi] as f64 / share).round() as i64)
            .max(persons[vi] + 20)
            .max(150);
        row.rural_population = Some(pop);
    }
    write_regions(&regions, opts, &mut rng, sink)?;
    write_poverty_lines(sink)?;

    let years: Vec<i32> = match opts.only_year {
        Some(y) if YEARS.contains(&y) => vec![y],
        Some(y) => {
            return Err(Error::InvalidArgument(format!(
                "year {y} is outside the generated registry years 2014-2020"
            )))
        }
        None => YEARS.collect(),
    };
    let total = (years.len() * lives.len()) as u64;
    let mut done = 0u64;
    let chunk = 64 * 1024;
    let mut hh_ids: Vec<String> = Vec::with_capacity(lives.len());
    for i in 0..lives.len() {
        hh_ids.push(format!("H{:08}", i + 1));
    }
    // County index of each village, for assessments.
    for y in years.iter().copied() {
        let mut start = 0;
        while start < lives.len() {
            let end = (start + chunk).min(lives.len());
            write_household_chunk(
                &regions,
                &lives,
                &hh_ids,
                start..end,
                y,
                opts,
                &mut rng,
                sink,
            )?;
            done += (end - start) as u64;
            progress("households", done, total);
            start = end;
        }
    }
    write_funds(&regions, opts, &years, &mut rng, sink)?;
    write_assessments(&regions, &lives, &hh_ids, &years, &mut rng, sink)?;
    Ok(())
}

fn write_regions(
    regions: &Regions,
    opts: &GenerateOptions,
    rng: &mut ChaCha8Rng,
    sink: &mut dyn Sink,
) -> Result<()> {
    let n = regions.rows.len();
    let mut code = StringBuilder::new();
    let mut name = StringBuilder::new();
    let mut pop = Int64Builder::with_capacity(n);
    let mut pv = BooleanBuilder::with_capacity(n);
    let mut pc = StringBuilder::new();
    let mut west = BooleanBuilder::with_capacity(n);
    let mut exit = Int32Builder::with_capacity(n);
    for r in &regions.rows {
        let mut c = r.code.clone();
        if opts.faults > 0.0
            && r.code.ends_with("000000")
            && r.code[4..6] != *"00"
            && rng.random::<f64>() < opts.faults / 4.0
        {
            // A malformed county-level code (no villages lose their parent
            // check because the well-formed row is kept as well).
            code.append_value(&c);
            name.append_value(&r.name);
            pop.append_option(r.rural_population);
            pv.append_option(r.poor_village);
            pc.append_option(r.poor_county);
            west.append_option(r.western);
            exit.append_option(r.exit_year);
            c = format!("{}X", &r.code[..11]);
        }
        code.append_value(&c);
        name.append_value(&r.name);
        pop.append_option(r.rural_population);
        pv.append_option(r.poor_village);
        pc.append_option(r.poor_county);
        west.append_option(r.western);
        exit.append_option(r.exit_year);
    }
    sink.push(
        &schema::REGIONS,
        batch(
            schema::REGIONS.schema(),
            vec![
                Arc::new(code.finish()),
                Arc::new(name.finish()),
                Arc::new(pop.finish()),
                Arc::new(pv.finish()),
                Arc::new(pc.finish()),
                Arc::new(west.finish()),
                Arc::new(exit.finish()),
            ],
        )?,
    )
}

fn write_poverty_lines(sink: &mut dyn Sink) -> Result<()> {
    let t = crate::lines::builtin_table()?;
    for b in t.batches {
        sink.push(&schema::POVERTY_LINES, b)?;
    }
    Ok(())
}

const CATEGORIES: [&str; 3] = ["general", "dibao", "tekun"];
const STATUSES: [&str; 3] = ["poor", "exited", "returned"];

#[allow(clippy::too_many_arguments)]
fn write_household_chunk(
    regions: &Regions,
    lives: &[Life],
    ids: &[String],
    range: std::ops::Range<usize>,
    y: i32,
    opts: &GenerateOptions,
    rng: &mut ChaCha8Rng,
    sink: &mut dyn Sink,
) -> Result<()> {
    let line = builtin_line(y).unwrap_or(BUILTIN_SERIES[6].1);
    let cap = range.len();
    let mut b = HouseholdBuilders::new(cap);
    let mut m = MemberBuilders::new(cap * 3);
    let mut a = AssistanceBuilders::new(cap);
    let chance = |rng: &mut ChaCha8Rng, p: f64| rng.random::<f64>() < p;
    for i in range {
        let life = &lives[i];
        let Some((status, exit_year)) = life.status(y) else {
            continue;
        };
        let vcode = &regions.rows[regions.villages[life.village as usize]].code;
        let size = i32::from(life.size);
        let exited = status == 1;
        let exiting_now = exited && exit_year == Some(y);
        // Per-capita income relative to the line.
        let ratio = match status {
            1 if life.mistaken && exiting_now => 0.7 + 0.3 * rng.random::<f64>(),
            1 => 1.02 + 0.8 * rng.random::<f64>(),
            2 => 0.5 + 0.5 * rng.random::<f64>(),
            _ => 0.45 + 0.6 * rng.random::<f64>() + 0.04 * f64::from(y - 2014),
        };
        let net = (ratio * line * f64::from(size)).round();
        let expense = (net * 0.1 * rng.random::<f64>()).round();
        let gross = net + expense;
        let wage_share = 0.4 + 0.3 * rng.random::<f64>();
        let business_share = 0.1 * rng.random::<f64>() + if expense > 0.0 { 0.1 } else { 0.0 };
        let property_share = 0.03 * rng.random::<f64>();
        let wage = (gross * wage_share).round();
        let business = (gross * business_share).round();
        let property = (gross * property_share).round();
        let transfer = gross - wage - business - property;
        let null = |rng: &mut ChaCha8Rng, v: f64, p: f64| {
            if rng.random::<f64>() < p {
                None
            } else {
                Some(v)
            }
        };

        let mut hid = ids[i].clone();
        let mut row_size = size;
        let mut category = CATEGORIES[life.category as usize].to_string();
        let mut wage_v = null(rng, wage, 0.01);
        let mut village = vcode.clone();
        let mut medical = if chance(rng, if exited { 0.99 } else { 0.93 }) {
            size
        } else {
            size - 1
        };
        if opts.faults > 0.0 && chance(rng, opts.faults) {
            match rng.random_range(0..6) {
                0 => row_size = 0,
                1 => category = "rich".into(),
                2 => wage_v = Some(-500.0),
                3 => medical = size + 2,
                4 => village = format!("{}999", &vcode[..9]),
                _ => hid = ids[(i + 1).min(ids.len() - 1)].clone(),
            }
        }
        b.household_id.append_value(&hid);
        b.year.append_value(y);
        b.village_code.append_value(&village);
        b.size.append_value(row_size);
        b.category.append_value(&category);
        b.status.append_value(STATUSES[status as usize]);
        b.identified_year.append_value(life.identified);
        b.exit_year.append_option(exit_year);
        b.primary_cause
            .append_value(schema::CAUSES[life.cause as usize]);
        b.wage.append_option(wage_v);
        b.business.append_option(null(rng, business, 0.005));
        b.property.append_option(null(rng, property, 0.005));
        b.transfer.append_option(null(rng, transfer, 0.005));
        b.expense.append_option(null(rng, expense, 0.005));
        let opt_bool = |rng: &mut ChaCha8Rng, p_true: f64, p_null: f64| {
            if rng.random::<f64>() < p_null {
                None
            } else {
                Some(rng.random::<f64>() < p_true)
            }
        };
        b.safe_housing
            .append_option(opt_bool(rng, if exited { 0.995 } else { 0.86 }, 0.01));
        b.dropouts.append_option(if chance(rng, 0.01) {
            None
        } else {
            Some(i32::from(chance(rng, if exited { 0.004 } else { 0.03 })))
        });
        b.medical.append_option(if chance(rng, 0.01) {
            None
        } else {
            Some(medical.max(0))
        });
        let children = (size - 2).max(0).min(rng.random_range(0..=2));
        let eligible = size - children;
        let enrolled = if chance(rng, if exited { 0.95 } else { 0.82 }) {
            eligible
        } else {
            (eligible - 1).max(0)
        };
        b.pension_eligible.append_option(if chance(rng, 0.01) {
            None
        } else {
            Some(eligible)
        });
        b.pension_enrolled.append_option(if chance(rng, 0.01) {
            None
        } else {
            Some(enrolled)
        });
        b.safe_water
            .append_option(opt_bool(rng, if exited { 0.985 } else { 0.9 }, 0.02));
        b.electricity
            .append_option(opt_bool(rng, if exited { 0.998 } else { 0.98 }, 0.01));
        let proposed = if exiting_now {
            chance(rng, 0.98)
        } else {
            status == 0 && chance(rng, 0.02)
        };
        b.exit_proposed.append_option(if chance(rng, 0.005) {
            None
        } else {
            Some(proposed)
        });
        if exiting_now && !chance(rng, 0.01) {
            let mut vr = Some(days(y, 10, rng.random_range(1..=28)));
            let tr = Some(days(y, 11, rng.random_range(1..=28)));
            let mut cr = Some(days(y, 12, rng.random_range(1..=28)));
            let r = rng.random::<f64>();
            if r < 0.01 {
                vr = None;
            } else if r < 0.02 {
                cr = Some(days(y + 1, 1, rng.random_range(1..=28)));
            } else if r < 0.03 {
                vr = Some(days(y, 11, 29));
            }
            b.village_reviewed.append_option(vr);
            b.township_audited.append_option(tr);
            b.county_approved.append_option(cr);
        } else if status == 0 && chance(rng, 0.003) {
            // Approved although still recorded poor: a wrongful-exit risk.
            b.village_reviewed.append_value(days(y, 10, 5));
            b.township_audited.append_value(days(y, 11, 5));
            b.county_approved.append_value(days(y, 12, 5));
        } else {
            b.village_reviewed.append_null();
            b.township_audited.append_null();
            b.county_approved.append_null();
        }

        // Members: the same people every year, a year older.
        let mut person_rng =
            ChaCha8Rng::seed_from_u64(opts.seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let county6 = &vcode[..6];
        for k in 0..size {
            let pid = format!("{}-{}", ids[i], k + 1);
            let relation = match k {
                0 => "head",
                1 => "spouse",
                _ => ["child", "parent", "grandchild", "other"]
                    [pick(&mut person_rng, &[6.0, 2.0, 1.5, 0.5])],
            };
            let birth = match relation {
                "head" | "spouse" => 1940 + person_rng.random_range(0..50),
                "parent" => 1925 + person_rng.random_range(0..25),
                "grandchild" => 2000 + person_rng.random_range(0..14),
                _ => 1975 + person_rng.random_range(0..38),
            };
            let sex = if (k == 0) ^ person_rng.random_bool(0.15) {
                "M"
            } else {
                "F"
            };
            let month = person_rng.random_range(1..=12);
            let day = person_rng.random_range(1..=28);
            let seq = person_rng.random_range(0..1000);
            let first17 = format!("{county6}{birth:04}{month:02}{day:02}{seq:03}");
            let mut id = format!("{first17}{}", id_check_char(&first17).unwrap_or('0'));
            let age = y - birth;
            let health = ["healthy", "chronic", "serious", "disabled"]
                [pick(&mut person_rng, &[60.0, 25.0, 8.0, 7.0])];
            let labor = if !(16..=65).contains(&age) {
                "none"
            } else {
                ["normal", "skilled", "weak", "lost"]
                    [pick(&mut person_rng, &[55.0, 10.0, 20.0, 15.0])]
            };
            let migrant = if matches!(labor, "normal" | "skilled") && person_rng.random_bool(0.4) {
                person_rng.random_range(6..=12)
            } else if matches!(labor, "normal" | "skilled") {
                person_rng.random_range(0..6)
            } else {
                0
            };
            if opts.faults > 0.0 && rng.random::<f64>() < opts.faults / 2.0 {
                // Wrong check digit.
                let c = id_check_char(&first17).unwrap_or('0');
                let wrong = if c == '0' { '1' } else { '0' };
                id = format!("{first17}{wrong}");
            }
            m.household_id.append_value(&ids[i]);
            m.year.append_value(y);
            m.person_id.append_value(&pid);
            m.relation.append_value(relation);
            m.sex.append_value(sex);
            m.birth_year.append_value(birth);
            m.id_number.append_value(&id);
            m.education.append_value(match age {
                a if a < 6 => "none",
                a if a < 12 => "primary",
                a if a < 15 => "junior",
                _ => ["primary", "junior", "senior", "college", "none"]
                    [pick(&mut person_rng, &[35.0, 40.0, 12.0, 3.0, 10.0])],
            });
            m.in_school.append_value((6..=18).contains(&age));
            m.health.append_value(health);
            m.labor.append_value(labor);
            m.migrant.append_value(migrant);
        }

        // Assistance for the poor (and some recently exited).
        let helped = match status {
            0 | 2 => chance(rng, 0.9),
            _ => exit_year.is_some_and(|e| y - e <= 1) && chance(rng, 0.3),
        };
        if helped {
            let n = 1 + usize::from(chance(rng, 0.35));
            for h in 0..n {
                a.household_id.append_value(&ids[i]);
                a.year.append_value(y);
                let t = pick(rng, &[60.0, 15.0, 10.0, 15.0]);
                a.helper_id.append_value(format!(
                    "{}-{}{:04}",
                    county6,
                    ["C", "E", "O", "I"][t],
                    rng.random_range(0..2000)
                ));
                a.helper_type.append_value(schema::HELPER_TYPES[t]);
                let measure = (pick(rng, &[30.0, 20.0, 5.0, 5.0, 10.0, 15.0, 12.0, 3.0]) + h) % 8;
                a.measure.append_value(schema::MEASURES[measure]);
            }
        }
    }
    sink.push(&schema::HOUSEHOLDS, b.finish()?)?;
    sink.push(&schema::MEMBERS, m.finish()?)?;
    sink.push(&schema::ASSISTANCE, a.finish()?)?;
    Ok(())
}

struct HouseholdBuilders {
    household_id: StringBuilder,
    year: Int32Builder,
    village_code: StringBuilder,
    size: Int32Builder,
    category: StringBuilder,
    status: StringBuilder,
    identified_year: Int32Builder,
    exit_year: Int32Builder,
    primary_cause: StringBuilder,
    wage: Float64Builder,
    business: Float64Builder,
    property: Float64Builder,
    transfer: Float64Builder,
    expense: Float64Builder,
    safe_housing: BooleanBuilder,
    dropouts: Int32Builder,
    medical: Int32Builder,
    pension_eligible: Int32Builder,
    pension_enrolled: Int32Builder,
    safe_water: BooleanBuilder,
    electricity: BooleanBuilder,
    exit_proposed: BooleanBuilder,
    village_reviewed: Date32Builder,
    township_audited: Date32Builder,
    county_approved: Date32Builder,
}

impl HouseholdBuilders {
    fn new(n: usize) -> Self {
        HouseholdBuilders {
            household_id: StringBuilder::with_capacity(n, n * 9),
            year: Int32Builder::with_capacity(n),
            village_code: StringBuilder::with_capacity(n, n * 12),
            size: Int32Builder::with_capacity(n),
            category: StringBuilder::with_capacity(n, n * 7),
            status: StringBuilder::with_capacity(n, n * 6),
            identified_year: Int32Builder::with_capacity(n),
            exit_year: Int32Builder::with_capacity(n),
            primary_cause: StringBuilder::with_capacity(n, n * 8),
            wage: Float64Builder::with_capacity(n),
            business: Float64Builder::with_capacity(n),
            property: Float64Builder::with_capacity(n),
            transfer: Float64Builder::with_capacity(n),
            expense: Float64Builder::with_capacity(n),
            safe_housing: BooleanBuilder::with_capacity(n),
            dropouts: Int32Builder::with_capacity(n),
            medical: Int32Builder::with_capacity(n),
            pension_eligible: Int32Builder::with_capacity(n),
            pension_enrolled: Int32Builder::with_capacity(n),
            safe_water: BooleanBuilder::with_capacity(n),
            electricity: BooleanBuilder::with_capacity(n),
            exit_proposed: BooleanBuilder::with_capacity(n),
            village_reviewed: Date32Builder::with_capacity(n),
            township_audited: Date32Builder::with_capacity(n),
            county_approved: Date32Builder::with_capacity(n),
        }
    }

    fn finish(mut self) -> Result<RecordBatch> {
        batch(
            schema::HOUSEHOLDS.schema(),
            vec![
                Arc::new(self.household_id.finish()),
                Arc::new(self.year.finish()),
                Arc::new(self.village_code.finish()),
                Arc::new(self.size.finish()),
                Arc::new(self.category.finish()),
                Arc::new(self.status.finish()),
                Arc::new(self.identified_year.finish()),
                Arc::new(self.exit_year.finish()),
                Arc::new(self.primary_cause.finish()),
                Arc::new(self.wage.finish()),
                Arc::new(self.business.finish()),
                Arc::new(self.property.finish()),
                Arc::new(self.transfer.finish()),
                Arc::new(self.expense.finish()),
                Arc::new(self.safe_housing.finish()),
                Arc::new(self.dropouts.finish()),
                Arc::new(self.medical.finish()),
                Arc::new(self.pension_eligible.finish()),
                Arc::new(self.pension_enrolled.finish()),
                Arc::new(self.safe_water.finish()),
                Arc::new(self.electricity.finish()),
                Arc::new(self.exit_proposed.finish()),
                Arc::new(self.village_reviewed.finish()),
                Arc::new(self.township_audited.finish()),
                Arc::new(self.county_approved.finish()),
            ],
        )
    }
}

struct MemberBuilders {
    household_id: StringBuilder,
    year: Int32Builder,
    person_id: StringBuilder,
    relation: StringBuilder,
    sex: StringBuilder,
    birth_year: Int32Builder,
    id_number: StringBuilder,
    education: StringBuilder,
    in_school: BooleanBuilder,
    health: StringBuilder,
    labor: StringBuilder,
    migrant: Int32Builder,
}

impl MemberBuilders {
    fn new(n: usize) -> Self {
        MemberBuilders {
            household_id: StringBuilder::with_capacity(n, n * 9),
            year: Int32Builder::with_capacity(n),
            person_id: StringBuilder::with_capacity(n, n * 11),
            relation: StringBuilder::with_capacity(n, n * 5),
            sex: StringBuilder::with_capacity(n, n),
            birth_year: Int32Builder::with_capacity(n),
            id_number: StringBuilder::with_capacity(n, n * 18),
            education: StringBuilder::with_capacity(n, n * 6),
            in_school: BooleanBuilder::with_capacity(n),
            health: StringBuilder::with_capacity(n, n * 7),
            labor: StringBuilder::with_capacity(n, n * 6),
            migrant: Int32Builder::with_capacity(n),
        }
    }

    fn finish(mut self) -> Result<RecordBatch> {
        batch(
            schema::MEMBERS.schema(),
            vec![
                Arc::new(self.household_id.finish()),
                Arc::new(self.year.finish()),
                Arc::new(self.person_id.finish()),
                Arc::new(self.relation.finish()),
                Arc::new(self.sex.finish()),
                Arc::new(self.birth_year.finish()),
                Arc::new(self.id_number.finish()),
                Arc::new(self.education.finish()),
                Arc::new(self.in_school.finish()),
                Arc::new(self.health.finish()),
                Arc::new(self.labor.finish()),
                Arc::new(self.migrant.finish()),
            ],
        )
    }
}

struct AssistanceBuilders {
    household_id: StringBuilder,
    year: Int32Builder,
    helper_id: StringBuilder,
    helper_type: StringBuilder,
    measure: StringBuilder,
}

impl AssistanceBuilders {
    fn new(n: usize) -> Self {
        AssistanceBuilders {
            household_id: StringBuilder::with_capacity(n, n * 9),
            year: Int32Builder::with_capacity(n),
            helper_id: StringBuilder::with_capacity(n, n * 12),
            helper_type: StringBuilder::with_capacity(n, n * 6),
            measure: StringBuilder::with_capacity(n, n * 8),
        }
    }

    fn finish(mut self) -> Result<RecordBatch> {
        batch(
            schema::ASSISTANCE.schema(),
            vec![
                Arc::new(self.household_id.finish()),
                Arc::new(self.year.finish()),
                Arc::new(self.helper_id.finish()),
                Arc::new(self.helper_type.finish()),
                Arc::new(self.measure.finish()),
            ],
        )
    }
}

fn write_funds(
    regions: &Regions,
    opts: &GenerateOptions,
    years: &[i32],
    rng: &mut ChaCha8Rng,
    sink: &mut dyn Sink,
) -> Result<()> {
    let mut pid = StringBuilder::new();
    let mut year = Int32Builder::new();
    let mut region = StringBuilder::new();
    let mut source = StringBuilder::new();
    let mut sector = StringBuilder::new();
    let mut alloc = Float64Builder::new();
    let mut disb = Float64Builder::new();
    let mut benefited = Int32Builder::new();
    let mut seq = 0u64;
    for y in years.iter().copied() {
        for r in &regions.rows {
            let n = match (r.code.ends_with("000000000"), r.poor_county, r.poor_village) {
                (_, Some(_), _) => 6,
                (_, _, Some(true)) => 1,
                (true, _, _) => 2,
                _ if r.code.ends_with("000000") => 2,
                _ => 0,
            };
            for _ in 0..n {
                seq += 1;
                let a = (1.0e5 + 4.9e6 * rng.random::<f64>()).round();
                let mut d = (a * (0.55 + 0.45 * rng.random::<f64>())).round();
                if opts.faults > 0.0 && rng.random::<f64>() < opts.faults {
                    d = -d;
                }
                pid.append_value(format!("P{y}{seq:07}"));
                year.append_value(y);
                region.append_value(&r.code);
                source
                    .append_value(schema::FUND_SOURCES[pick(rng, &[40.0, 25.0, 10.0, 15.0, 10.0])]);
                sector.append_value(
                    schema::SECTORS[pick(rng, &[35.0, 25.0, 8.0, 8.0, 12.0, 7.0, 5.0])],
                );
                alloc.append_value(a);
                disb.append_value(d);
                benefited.append_option(rng.random_bool(0.9).then(|| rng.random_range(10..500)));
            }
        }
    }
    sink.push(
        &schema::FUNDS,
        batch(
            schema::FUNDS.schema(),
            vec![
                Arc::new(pid.finish()),
                Arc::new(year.finish()),
                Arc::new(region.finish()),
                Arc::new(source.finish()),
                Arc::new(sector.finish()),
                Arc::new(alloc.finish()),
                Arc::new(disb.finish()),
                Arc::new(benefited.finish()),
            ],
        )?,
    )
}

fn write_assessments(
    regions: &Regions,
    lives: &[Life],
    ids: &[String],
    years: &[i32],
    rng: &mut ChaCha8Rng,
    sink: &mut dyn Sink,
) -> Result<()> {
    // Households by village, then samples per designated county and year.
    let mut by_county: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, l) in lives.iter().enumerate() {
        let code = &regions.rows[regions.villages[l.village as usize]].code;
        by_county.entry(&code[..6]).or_default().push(i);
    }
    let mut year_b = Int32Builder::new();
    let mut village = StringBuilder::new();
    let mut hid = StringBuilder::new();
    let mut sample = StringBuilder::new();
    let mut finding = StringBuilder::new();
    let mut recognized = BooleanBuilder::new();
    for county in regions.rows.iter().filter(|r| r.poor_county.is_some()) {
        let Some(members) = by_county.get(&county.code[..6]) else {
            continue;
        };
        // A county with a few sloppy assessments fails the third-party check.
        let sloppy = rng.random_bool(0.15);
        for y in years.iter().copied().filter(|y| *y >= 2016) {
            for k in 0..300 {
                let i = members[rng.random_range(0..members.len())];
                let l = &lives[i];
                let vcode = &regions.rows[regions.villages[l.village as usize]].code;
                let (s, f, h) = match k % 3 {
                    0 => match l.status(y) {
                        Some((1, _)) => (
                            "exited",
                            if l.mistaken || (sloppy && rng.random_bool(0.05)) {
                                "mistaken_exit"
                            } else {
                                "ok"
                            },
                            Some(&ids[i]),
                        ),
                        Some(_) => ("poor", "ok", Some(&ids[i])),
                        None => continue,
                    },
                    1 => match l.status(y) {
                        Some((0, _)) | Some((2, _)) => ("poor", "ok", Some(&ids[i])),
                        Some(_) => ("exited", "ok", Some(&ids[i])),
                        None => continue,
                    },
                    _ => (
                        "non_registered",
                        if rng.random_bool(if sloppy { 0.05 } else { 0.003 }) {
                            "missed"
                        } else {
                            "ok"
                        },
                        None,
                    ),
                };
                year_b.append_value(y);
                village.append_value(vcode);
                hid.append_option(h);
                sample.append_value(s);
                finding.append_value(f);
                let p = rng.random::<f64>();
                recognized.append_option(if p < 0.02 {
                    None
                } else {
                    Some(p < if sloppy { 0.85 } else { 0.96 })
                });
            }
        }
    }
    sink.push(
        &schema::ASSESSMENTS,
        batch(
            schema::ASSESSMENTS.schema(),
            vec![
                Arc::new(year_b.finish()),
                Arc::new(village.finish()),
                Arc::new(hid.finish()),
                Arc::new(sample.finish()),
                Arc::new(finding.finish()),
                Arc::new(recognized.finish()),
            ],
        )?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// People of `lives` for whom `pred` holds.
    fn people(lives: &[Life], pred: impl Fn(&Life) -> bool) -> f64 {
        lives
            .iter()
            .filter(|l| pred(l))
            .map(|l| f64::from(l.size))
            .sum()
    }

    #[test]
    fn people_are_calibrated_to_hebei_2015_2016() {
        // A tenth of full scale, extrapolated: 3.1 M poor or returned at
        // the end of 2015, about 1 M exits in each of 2014, 2015, 2016.
        let households = FULL_SCALE / 10;
        let regions = regions(households, 2016);
        let lives = lives(&regions, households, &mut ChaCha8Rng::seed_from_u64(2016));
        let full = FULL_SCALE as f64 / households as f64;
        let poor_2015 = full * people(&lives, |l| matches!(l.status(2015), Some((0 | 2, _))));
        assert!(
            (poor_2015 - 3.1e6).abs() < 0.1e6,
            "poor at end of 2015: {poor_2015}"
        );
        let exits = |y: i32| full * people(&lives, |l| l.status(y) == Some((1, Some(y))));
        for y in [2014, 2015, 2016] {
            assert!(
                (exits(y) - 1.0e6).abs() < 0.08e6,
                "exits in {y}: {}",
                exits(y)
            );
        }
        // The 2016 target as a share: 1 / 3.1 of the poor at the end of 2015.
        let share = exits(2016) / poor_2015;
        assert!(
            (share - 1.0 / 3.1).abs() < 0.02,
            "2016 exits / 2015 poor: {share}"
        );
        // Registered people about 5.4 M; almost nobody poor after 2020.
        let registered = full * people(&lives, |l| l.status(2020).is_some());
        assert!(
            (registered - 5.4e6).abs() < 0.15e6,
            "registered {registered}"
        );
        let left = people(&lives, |l| matches!(l.status(2020), Some((0 | 2, _))));
        assert!(left * full < 0.1e6, "poor in 2020: {}", left * full);
    }

    #[test]
    fn nineteen_of_the_62_designated_counties_exit_in_2016() {
        let r = regions(FULL_SCALE, 2016);
        let designated: Vec<&RegionRow> =
            r.rows.iter().filter(|x| x.poor_county.is_some()).collect();
        assert_eq!(designated.len(), 62);
        let in_year = |y: i32| designated.iter().filter(|x| x.exit_year == Some(y)).count();
        assert_eq!(in_year(2016), 19);
        assert_eq!(
            (2016..=2020).map(in_year).sum::<usize>(),
            62,
            "none left after 2020"
        );
        assert!(
            (2017..=2020).all(|y| in_year(y) >= 10),
            "spread over 2017-2020"
        );
        // Scaled down, the same proportion.
        let small = regions(FULL_SCALE / 10, 2016);
        let d = small
            .rows
            .iter()
            .filter(|x| x.poor_county.is_some())
            .count();
        let first = small
            .rows
            .iter()
            .filter(|x| x.poor_county.is_some() && x.exit_year == Some(2016))
            .count();
        assert_eq!(first, ((19.0 / 62.0) * d as f64).round() as usize);
    }

    #[test]
    fn days_since_epoch() {
        assert_eq!(days(1970, 1, 1), 0);
        assert_eq!(days(2016, 12, 31), 17166);
        assert_eq!(days(2000, 3, 1), 11017);
    }

    #[test]
    fn life_status_timeline() {
        let l = Life {
            village: 0,
            size: 3,
            category: 0,
            cause: 0,
            identified: 2014,
            exit1: Some(2016),
            returned: Some(2018),
            exit2: Some(2020),
            mistaken: false,
        };
        assert_eq!(l.status(2013), None);
        assert_eq!(l.status(2015), Some((0, None)));
        assert_eq!(l.status(2016), Some((1, Some(2016))));
        assert_eq!(l.status(2018), Some((2, Some(2016))));
        assert_eq!(l.status(2020), Some((1, Some(2020))));
    }
}
