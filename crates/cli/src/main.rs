//! The `tuopin` command: generate, validate, evaluate, audit and measure
//! poverty registries. See `tuopin --help` and DESIGN §5.
//!
//! `main` parses the arguments into a [`context::Context`] (the global
//! options) and a command; each command lives in its own module under
//! `commands/`.
//!
//! Exit codes: 0 ok, 1 data rejected or rule failed to load, 2 usage or I/O
//! error.

#[macro_use]
mod context;
mod commands;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use commands::report::Report;
use context::{parse_bytes, Context, Failure};

#[derive(Parser)]
#[command(
    name = "tuopin",
    version,
    about = "Analytics for targeted poverty-alleviation registries (精准扶贫)"
)]
struct Cli {
    /// Memory limit for loading and query execution, e.g. 2GiB or 512MiB
    /// (spills past it).
    #[arg(long, global = true, value_parser = parse_bytes, allow_hyphen_values = true)]
    memory_limit: Option<usize>,
    /// Number of parallel partitions (default: cores).
    #[arg(long, global = true)]
    partitions: Option<usize>,
    /// Keep the validated tables in this store folder instead of the
    /// dataset's default store under $TUOPIN_CACHE (or
    /// ${XDG_CACHE_HOME:-~/.cache}/tuopin); reused while the sources are
    /// unchanged.
    #[arg(long, global = true, conflicts_with = "no_cache")]
    store: Option<PathBuf>,
    /// Validate in memory and keep nothing (no store).
    #[arg(long, global = true)]
    no_cache: bool,
    /// Encoding of CSV sources: auto (UTF-8 with or without BOM, else
    /// GB18030), utf-8 or gb18030 (GBK).
    #[arg(long, global = true, default_value = "auto")]
    encoding: tuopin::Encoding,
    /// A TOML file of exported headers and labels, added to the built-in
    /// Chinese map (crates/core/columns/zh.toml has the form).
    #[arg(long, global = true, value_name = "FILE")]
    columns: Option<PathBuf>,
    /// Column names of --out files: en (tuopin's) or zh (the national
    /// system's Chinese headers, where a column has one).
    #[arg(long, global = true, default_value = "en")]
    headers: tuopin::io::exporting::ExportHeaders,
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

impl Cli {
    fn context(&self) -> Context {
        Context {
            memory_limit: self.memory_limit,
            partitions: self.partitions,
            store: self.store.clone(),
            no_cache: self.no_cache,
            encoding: self.encoding,
            columns: self.columns.clone(),
            headers: self.headers,
            timings: self.timings,
            explain: self.explain,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Generate a sample province in memory and print the exit summary.
    Demo(commands::demo::Args),
    /// Write a synthetic Hebei-shaped registry as Parquet files, or as
    /// exports (--format csv|xlsx, --headers zh, --encoding gb18030).
    Generate(commands::generate::Args),
    /// Load and validate a dataset; print the summary and the rejects.
    Validate(commands::validate::Args),
    /// Turn a folder of registry exports (GB18030/UTF-8 CSV, Chinese
    /// headers) into a dataset: Parquet tables and rejects.parquet.
    Import(commands::import::Args),
    /// Evaluate a rule set for a year.
    Evaluate(commands::evaluate::Args),
    /// Audit the exit procedure of a year against a household rule set.
    Audit(commands::evaluate::Args),
    /// Built-in rule sets: list, show, check a file.
    Rules {
        #[command(subcommand)]
        action: commands::rules::Action,
    },
    /// Metrics per region at a level (province, city, county, township, village, all).
    Metrics(commands::report::Args),
    /// Households and population by primary cause of poverty.
    Causes(commands::report::Args),
    /// Transitions against the previous year's snapshot.
    Transitions(commands::report::Args),
    /// Multidimensional poverty (Alkire–Foster) from a household rule set's
    /// indicators, or its change (--from/--to).
    Mpi(commands::mpi::Args),
    /// The national system's consistency checks of a year, as warnings.
    Quality(commands::quality::Args),
    /// The command dashboard (攻坚指挥) in the browser: region pages from
    /// the province down to each household, read-only.
    Serve(commands::dashboard::ServeArgs),
    /// A region page as one self-contained HTML file (for mail and print).
    Report(commands::dashboard::ReportArgs),
    /// Run a SQL query over the dataset's tables and views.
    Sql(commands::sql::Args),
    /// The stores of validated datasets: list, clear.
    Cache {
        #[command(subcommand)]
        action: commands::cache::Action,
    },
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

async fn run(cli: Cli) -> Result<u8, Failure> {
    let cx = cli.context();
    match &cli.command {
        Command::Demo(a) => commands::demo::run(&cx, a).await,
        Command::Generate(a) => commands::generate::run(&cx, a).await,
        Command::Validate(a) => commands::validate::run(&cx, a).await,
        Command::Evaluate(a) => commands::evaluate::evaluate(&cx, a).await,
        Command::Audit(a) => commands::evaluate::audit(&cx, a).await,
        Command::Rules { action } => commands::rules::run(action).await,
        Command::Metrics(a) => commands::report::run(&cx, Report::Metrics, a).await,
        Command::Causes(a) => commands::report::run(&cx, Report::Causes, a).await,
        Command::Transitions(a) => commands::report::run(&cx, Report::Transitions, a).await,
        Command::Mpi(a) => commands::mpi::run(&cx, a).await,
        Command::Quality(a) => commands::quality::run(&cx, a).await,
        Command::Sql(a) => commands::sql::run(&cx, a).await,
        Command::Serve(a) => commands::dashboard::serve(&cx, a).await,
        Command::Report(a) => commands::dashboard::report(&cx, a).await,
        Command::Import(a) => commands::import::run(&cx, a).await,
        Command::Cache { action } => commands::cache::run(action),
    }
}
