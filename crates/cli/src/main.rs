//! The `tuopin` command: generate, validate, evaluate, audit and measure
//! poverty registries. See `tuopin --help` and DESIGN §5.
//!
//! Exit codes: 0 ok, 1 data rejected or rule failed to load, 2 usage or I/O
//! error.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::prelude::DataFrame;
use indicatif::{ProgressBar, ProgressStyle};
use tuopin::synth::{self, GenerateOptions};
use tuopin::{Dataset, Engine, EngineOptions, Error, ErrorKind, Level, OpenOptions, RuleSet};

#[derive(Parser)]
#[command(
    name = "tuopin",
    version,
    about = "Analytics for targeted poverty-alleviation registries (精准扶贫)"
)]
struct Cli {
    /// Memory limit for query execution, e.g. 2GiB or 512MiB (spills past it).
    #[arg(long, global = true, value_parser = parse_bytes)]
    memory_limit: Option<usize>,
    /// Number of parallel partitions (default: cores).
    #[arg(long, global = true)]
    partitions: Option<usize>,
    /// Keep the validated tables as Parquet files in this folder instead of
    /// in memory (registries larger than memory; pair with --memory-limit).
    #[arg(long, global = true)]
    store: Option<PathBuf>,
    /// Print wall-clock times of loading and of each query to stderr.
    #[arg(long, global = true)]
    timings: bool,
    /// Run the query under EXPLAIN ANALYZE and print the executed plan with
    /// per-operator times and row counts instead of the result.
    #[arg(long, global = true)]
    explain: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate a sample province in memory and print the exit summary.
    Demo {
        /// Households of the sample.
        #[arg(long, default_value_t = 20_000)]
        households: usize,
        /// Random seed.
        #[arg(long, default_value_t = 2016)]
        seed: u64,
    },
    /// Write a synthetic Hebei-shaped registry as Parquet files.
    Generate {
        /// Registered households (1200000 = Hebei).
        #[arg(long, default_value_t = 10_000)]
        households: usize,
        /// Random seed.
        #[arg(long, default_value_t = 2016)]
        seed: u64,
        /// Share of deliberately faulty rows.
        #[arg(long, default_value_t = 0.0)]
        faults: f64,
        /// Write only this year's snapshot (2014-2020).
        #[arg(long)]
        year: Option<i32>,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
    },
    /// Load and validate a dataset; print the summary and the rejects.
    Validate {
        /// Dataset folder.
        dir: PathBuf,
        /// Write the rejects table (.parquet, .csv, .json).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Evaluate a rule set for a year.
    Evaluate(RuleArgs),
    /// Audit the exit procedure of a year against a household rule set.
    Audit(RuleArgs),
    /// Built-in rule sets: list, show, check a file.
    Rules {
        #[command(subcommand)]
        action: RulesAction,
    },
    /// Metrics per region at a level (province, city, county, township, village, all).
    Metrics(LevelArgs),
    /// Households and population by primary cause of poverty.
    Causes(LevelArgs),
    /// Transitions against the previous year's snapshot.
    Transitions(LevelArgs),
    /// Run a SQL query over the dataset's tables and views.
    Sql {
        /// Dataset folder.
        dir: PathBuf,
        /// The query.
        query: String,
        /// Write the result (.parquet, .csv, .json).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
struct RuleArgs {
    /// Dataset folder.
    dir: PathBuf,
    /// Built-in name or TOML file; repeat to compare rule sets (evaluate).
    #[arg(long, required = true)]
    rules: Vec<String>,
    /// Year.
    #[arg(long)]
    year: i32,
    /// Write the result (.parquet, .csv, .json).
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(clap::Args)]
struct LevelArgs {
    /// Dataset folder.
    dir: PathBuf,
    /// Year.
    #[arg(long)]
    year: i32,
    /// Level: province, city, county, township, village or all.
    #[arg(long, default_value = "county")]
    level: String,
    /// Write the result (.parquet, .csv, .json).
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Subcommand)]
enum RulesAction {
    /// List the built-in rule sets.
    List,
    /// Print a built-in rule set's TOML (copy it to start your own).
    Show {
        /// Name.
        name: String,
    },
    /// Check a rule file against the facts schema.
    Check {
        /// TOML file.
        file: PathBuf,
    },
}

fn parse_bytes(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let (num, mult) = [
        ("GiB", 1usize << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
        ("G", 1 << 30),
        ("M", 1 << 20),
        ("K", 1 << 10),
    ]
    .iter()
    .find(|(suffix, _)| s.ends_with(suffix))
    .map(|(suffix, m)| (&s[..s.len() - suffix.len()], *m))
    .unwrap_or((s, 1));
    num.trim()
        .parse::<f64>()
        .map(|n| (n * mult as f64) as usize)
        .map_err(|_| format!("not a size: {s} (try 2GiB or 512MiB)"))
}

/// A failure with its exit code.
struct Failure(u8, String);

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        let code = match e.kind() {
            ErrorKind::Rule => 1,
            ErrorKind::Data => match e {
                Error::Io { .. } => 2,
                _ => 1,
            },
            ErrorKind::Query => 2,
        };
        Failure(code, e.to_string())
    }
}

impl From<datafusion::error::DataFusionError> for Failure {
    fn from(e: datafusion::error::DataFusionError) -> Self {
        Failure::from(Error::from(e))
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(Failure(code, message)) => {
            eprintln!("error: {message}");
            ExitCode::from(code)
        }
    }
}

fn options(cli: &Cli) -> EngineOptions {
    let defaults = EngineOptions::default();
    EngineOptions {
        memory_limit: cli.memory_limit,
        target_partitions: cli.partitions.unwrap_or(defaults.target_partitions),
        ..defaults
    }
}

fn open_options(cli: &Cli) -> OpenOptions {
    OpenOptions {
        store: cli.store.clone(),
        memory_limit: cli.memory_limit,
    }
}

async fn open(cli: &Cli, dir: &Path) -> Result<Engine, Failure> {
    let spinner = ProgressBar::new_spinner().with_message(format!("loading {}", dir.display()));
    spinner.enable_steady_tick(Duration::from_millis(120));
    let started = std::time::Instant::now();
    let dataset = Dataset::open_with(dir, &open_options(cli)).await;
    spinner.finish_and_clear();
    if cli.timings {
        eprintln!(
            "timing: load + validate {:.3}s",
            started.elapsed().as_secs_f64()
        );
    }
    let dataset = dataset?;
    let rejected: usize = dataset.summary().iter().map(|s| s.rejected).sum();
    if rejected > 0 {
        eprintln!(
            "note: {rejected} rows rejected while loading and left out (see `tuopin validate`)"
        );
    }
    Ok(Engine::with_options(dataset, options(cli))?)
}

fn load_rules(spec: &str) -> Result<RuleSet, Failure> {
    let path = Path::new(spec);
    if path.extension().is_some_and(|e| e == "toml") || path.is_file() {
        let text = std::fs::read_to_string(path).map_err(|e| Failure::from(Error::io(path, e)))?;
        return RuleSet::from_toml(&text)
            .map_err(|e| Failure(1, format!("{}: {e}", path.display())));
    }
    Ok(RuleSet::builtin(spec)?)
}

fn parse_level(s: &str) -> Result<Option<Level>, Failure> {
    if s == "all" {
        return Ok(None);
    }
    s.parse::<Level>()
        .map(Some)
        .map_err(|e| Failure(2, e.to_string()))
}

static TIMINGS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
static EXPLAIN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

async fn emit(df: DataFrame, out: Option<&Path>, limit: usize) -> Result<(), Failure> {
    if EXPLAIN.load(std::sync::atomic::Ordering::Relaxed) {
        let plan = df.explain(false, true)?.collect().await?;
        let text = pretty_format_batches(&plan).map_err(|e| Failure::from(Error::from(e)))?;
        println!("{text}");
        return Ok(());
    }
    let started = std::time::Instant::now();
    let timings = TIMINGS.load(std::sync::atomic::Ordering::Relaxed);
    match out {
        Some(path) => {
            // Streamed: a national-scale result never sits in memory whole.
            let n = tuopin::output::write_dataframe(df, path).await?;
            if timings {
                eprintln!(
                    "timing: query + write {:.3}s",
                    started.elapsed().as_secs_f64()
                );
            }
            eprintln!("wrote {n} rows to {}", path.display());
        }
        None => {
            let batches = df.collect().await?;
            if timings {
                eprintln!("timing: query {:.3}s", started.elapsed().as_secs_f64());
            }
            print_batches(&batches, limit)?
        }
    }
    Ok(())
}

fn print_batches(batches: &[RecordBatch], limit: usize) -> Result<(), Failure> {
    let total: usize = batches.iter().map(|b| b.num_rows()).sum();
    let mut shown = Vec::new();
    let mut left = limit;
    for b in batches {
        if left == 0 {
            break;
        }
        let take = b.num_rows().min(left);
        shown.push(tuopin::output::lists_as_text(&b.slice(0, take))?);
        left -= take;
    }
    let text = pretty_format_batches(&shown).map_err(|e| Failure::from(Error::from(e)))?;
    println!("{text}");
    if total > limit {
        println!(
            "… {} more rows (use --out FILE for all {total})",
            total - limit
        );
    }
    Ok(())
}

async fn run(cli: Cli) -> Result<u8, Failure> {
    TIMINGS.store(cli.timings, std::sync::atomic::Ordering::Relaxed);
    EXPLAIN.store(cli.explain, std::sync::atomic::Ordering::Relaxed);
    match &cli.command {
        Command::Demo { households, seed } => demo(&cli, *households, *seed).await,
        Command::Generate {
            households,
            seed,
            faults,
            year,
            out,
        } => {
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} ({eta})")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            let b = bar.clone();
            let opts = GenerateOptions {
                households: *households,
                seed: *seed,
                faults: *faults,
                only_year: *year,
                progress: Some(Arc::new(move |stage: &str, done: u64, total: u64| {
                    b.set_length(total);
                    b.set_position(done);
                    b.set_message(stage.to_string());
                })),
            };
            let out = out.clone();
            tokio::task::spawn_blocking(move || synth::generate(&opts, &out))
                .await
                .map_err(|e| Failure(2, e.to_string()))??;
            bar.finish_and_clear();
            eprintln!("generated {households} households (seed {seed})");
            Ok(0)
        }
        Command::Validate { dir, out } => {
            let dataset = Dataset::open_with(dir, &open_options(&cli)).await?;
            println!(
                "{:<14} {:>10} {:>10} {:>10}  source",
                "table", "rows", "accepted", "rejected"
            );
            for s in dataset.summary() {
                println!(
                    "{:<14} {:>10} {:>10} {:>10}  {}",
                    s.table, s.rows, s.accepted, s.rejected, s.source
                );
            }
            let rejects = dataset.rejects().to_vec();
            let faults = dataset.reject_count();
            if let Some(out) = out {
                let engine = Engine::new(dataset)?;
                emit(engine.rejects().await?, Some(out), 0).await?;
            } else if faults > 0 {
                println!();
                print_batches(&rejects, 50)?;
            }
            Ok(if faults > 0 { 1 } else { 0 })
        }
        Command::Evaluate(args) => {
            let engine = open(&cli, &args.dir).await?;
            let rules = args
                .rules
                .iter()
                .map(|r| load_rules(r))
                .collect::<Result<Vec<_>, _>>()?;
            if rules.len() > 1 {
                let df = engine.evaluate_many(&rules, args.year).await?;
                if args.out.is_some() {
                    emit(df, args.out.as_deref(), 0).await?;
                } else {
                    compare_summary(&engine, df, &rules).await?;
                }
                return Ok(0);
            }
            let df = engine.evaluate(&rules[0], args.year).await?;
            match &args.out {
                Some(out) => emit(df, Some(out), 0).await?,
                None => evaluation_summary(&engine, df, &rules[0]).await?,
            }
            Ok(0)
        }
        Command::Audit(args) => {
            let engine = open(&cli, &args.dir).await?;
            let rules = load_rules(&args.rules[0])?;
            let df = engine.audit(&rules, args.year).await?;
            match &args.out {
                Some(out) => emit(df, Some(out), 0).await?,
                None => {
                    engine.context().register_table("__audit", df.into_view())?;
                    println!("audit of {} exits under {}", args.year, rules.name);
                    emit(engine.sql("SELECT flag, count(*) AS households FROM __audit GROUP BY flag ORDER BY households DESC").await?, None, 50).await?;
                    emit(
                        engine
                            .sql("SELECT * FROM __audit ORDER BY household_id, flag")
                            .await?,
                        None,
                        20,
                    )
                    .await?;
                }
            }
            Ok(0)
        }
        Command::Rules { action } => match action {
            RulesAction::List => {
                for name in RuleSet::builtin_names() {
                    let r = RuleSet::builtin(name)?;
                    println!("{:<15} {:<10} {}", name, r.unit.as_str(), r.description);
                }
                Ok(0)
            }
            RulesAction::Show { name } => {
                let text = RuleSet::builtin_toml(name).ok_or_else(|| {
                    Failure(
                        1,
                        format!(
                            "unknown built-in rule set `{name}` (built-ins: {})",
                            RuleSet::builtin_names().join(", ")
                        ),
                    )
                })?;
                print!("{text}");
                Ok(0)
            }
            RulesAction::Check { file } => {
                let rules = load_rules(&file.display().to_string())?;
                // Compile against the facts views of an empty registry.
                let engine = empty_engine().await?;
                let schema = engine.schema_of(rules.unit.facts_view()).await?;
                let df_schema = datafusion::common::DFSchema::try_from(schema.as_ref().clone())?;
                rules
                    .compile(&engine.context().state(), &df_schema)
                    .map_err(|e| Failure(1, format!("{}: {e}", file.display())))?;
                println!(
                    "{}: rule set `{}` ({}), {} indicators, {} points{} — ok",
                    file.display(),
                    rules.name,
                    rules.unit,
                    rules.indicators.len(),
                    rules.total_points(),
                    rules
                        .pass_score
                        .map(|p| format!(", pass at {p}"))
                        .unwrap_or_else(|| ", all must pass".into())
                );
                Ok(0)
            }
        },
        Command::Metrics(a) | Command::Causes(a) | Command::Transitions(a) => {
            let level = parse_level(&a.level)?;
            let engine = open(&cli, &a.dir).await?;
            let df = match &cli.command {
                Command::Metrics(_) => engine.metrics(a.year, level).await?,
                Command::Causes(_) => engine.causes(a.year, level).await?,
                _ => engine.transitions(a.year, level).await?,
            };
            emit(df, a.out.as_deref(), 100).await?;
            Ok(0)
        }
        Command::Sql { dir, query, out } => {
            let engine = open(&cli, dir).await?;
            let df = engine
                .sql(query)
                .await
                .map_err(|e| Failure(2, e.to_string()))?;
            emit(df, out.as_deref(), 100).await?;
            Ok(0)
        }
    }
}

async fn empty_engine() -> Result<Engine, Failure> {
    let regions = RecordBatch::new_empty(tuopin::schema::REGIONS.schema());
    let households = RecordBatch::new_empty(tuopin::schema::HOUSEHOLDS.schema());
    let ds = Dataset::from_batches([("regions", vec![regions]), ("households", vec![households])])
        .await?;
    Ok(Engine::new(ds)?)
}

async fn evaluation_summary(
    engine: &Engine,
    df: DataFrame,
    rules: &RuleSet,
) -> Result<(), Failure> {
    engine.context().register_table("__eval", df.into_view())?;
    let unit = rules.unit.as_str();
    println!("{} ({}s by outcome)", rules.name, unit);
    emit(
        engine.sql("SELECT outcome, count(*) AS units, round(100.0 * count(*) / sum(count(*)) OVER (), 1) AS pct FROM __eval GROUP BY outcome ORDER BY outcome").await?,
        None,
        10,
    )
    .await?;
    println!("top failing indicators");
    emit(
        engine.sql("SELECT indicator, count(*) AS units FROM (SELECT unnest(failed) AS indicator FROM __eval) GROUP BY indicator ORDER BY units DESC, indicator").await?,
        None,
        10,
    )
    .await?;
    engine.context().deregister_table("__eval")?;
    Ok(())
}

async fn compare_summary(engine: &Engine, df: DataFrame, rules: &[RuleSet]) -> Result<(), Failure> {
    engine.context().register_table("__cmp", df.into_view())?;
    let cols = rules
        .iter()
        .map(|r| {
            let c = format!("\"outcome_{}\"", r.name.replace('"', "\"\""));
            format!(
                "SELECT '{n}' AS rule_set, sum(CASE WHEN {c} = 'exit' THEN 1 ELSE 0 END) AS exit, \
                 sum(CASE WHEN {c} = 'stay' THEN 1 ELSE 0 END) AS stay, \
                 sum(CASE WHEN {c} = 'undetermined' THEN 1 ELSE 0 END) AS undetermined FROM __cmp",
                n = r.name.replace('\'', "''")
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    emit(engine.sql(&cols).await?, None, 50).await?;
    engine.context().deregister_table("__cmp")?;
    Ok(())
}

async fn demo(cli: &Cli, households: usize, seed: u64) -> Result<u8, Failure> {
    println!("tuopin demo: a synthetic Hebei-shaped province of {households} registered households (seed {seed})\n");
    let opts = GenerateOptions {
        households,
        seed,
        ..Default::default()
    };
    let tables = tokio::task::spawn_blocking(move || synth::generate_tables(&opts))
        .await
        .map_err(|e| Failure(2, e.to_string()))??;
    let dataset = Dataset::from_batches(tables).await?;
    println!("loaded:");
    for s in dataset.summary() {
        println!(
            "  {:<14} {:>9} rows, {:>3} rejected",
            s.table, s.accepted, s.rejected
        );
    }
    let engine = Engine::with_options(dataset, options(cli))?;
    let year = 2016;
    println!();
    let hebei = RuleSet::builtin("hebei-2016")?;
    let outcomes = engine
        .evaluate(&hebei, year)
        .await?
        .filter(datafusion::prelude::col("household_id").is_not_null())?;
    println!("household exit under hebei-2016, {year} (all households of the snapshot):");
    evaluation_summary(&engine, outcomes, &hebei).await?;
    println!("\nper city, {year}:");
    emit(
        engine
            .sql(&format!(
                "SELECT name AS city, round(100 * poverty_incidence, 2) AS incidence_pct, exited_households AS exits, \
                 round(mean_income, 0) AS mean_income, poor_villages_remaining FROM ({}) ORDER BY code",
                tuopin::metrics::metrics_sql(&engine, Some(year), Some(Level::City))
            ))
            .await?,
        None,
        20,
    )
    .await?;
    let final_year = 2020;
    println!("\ncounties under county-2016 in {final_year} (designated poor counties):");
    let county = RuleSet::builtin("county-2016")?;
    engine.context().register_table(
        "__county",
        engine.evaluate(&county, final_year).await?.into_view(),
    )?;
    emit(
        engine
            .sql("SELECT e.outcome, count(*) AS counties FROM __county e JOIN region_facts r ON r.code = e.code WHERE r.poor_county IS NOT NULL GROUP BY e.outcome ORDER BY e.outcome")
            .await?,
        None,
        10,
    )
    .await?;
    emit(
        engine
            .sql("SELECT e.code, e.name, e.outcome, e.vetoed_by, e.unknown FROM __county e JOIN region_facts r ON r.code = e.code WHERE r.poor_county IS NOT NULL ORDER BY e.outcome, e.code")
            .await?,
        None,
        12,
    )
    .await?;
    Ok(0)
}
