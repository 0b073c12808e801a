//! What every command shares: the global options ([`Context`]), opening a
//! dataset, loading rule sets, printing or writing a result, and
//! [`Failure`] with its exit code.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::prelude::DataFrame;
use indicatif::ProgressBar;
use tuopin::io::exporting::ExportHeaders;
use tuopin::io::exports::ColumnMap;
use tuopin::{Dataset, Engine, EngineOptions, Error, ErrorKind, OpenOptions, RuleSet};

/// Print a line to standard output like `println!`; a closed pipe (the
/// reader, e.g. `head`, has gone) ends the program quietly with code 0
/// instead of a panic.
macro_rules! say {
    () => { $crate::context::say_line(format_args!("")) };
    ($($arg:tt)*) => { $crate::context::say_line(format_args!($($arg)*)) };
}

/// The function behind [`say!`].
pub fn say_line(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.write_all(b"\n")) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to standard output: {e}");
        std::process::exit(2);
    }
}

/// A failure with its exit code (0 ok, 1 data rejected or rule failed to
/// load, 2 usage or I/O error).
#[derive(Debug)]
pub struct Failure(pub u8, pub String);

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

impl From<datafusion::arrow::error::ArrowError> for Failure {
    fn from(e: datafusion::arrow::error::ArrowError) -> Self {
        Failure::from(Error::from(e))
    }
}

/// The global options, handed to every command.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// Memory limit in bytes for loading and queries.
    pub memory_limit: Option<usize>,
    /// Parallel partitions (default: cores).
    pub partitions: Option<usize>,
    /// Store folder for the validated tables (default: the dataset's
    /// default store).
    pub store: Option<PathBuf>,
    /// Keep no store: validate in memory.
    pub no_cache: bool,
    /// Encoding of CSV sources.
    pub encoding: tuopin::Encoding,
    /// A file of exported headers and labels added to the built-in map.
    pub columns: Option<PathBuf>,
    /// Column names of `--out` files.
    pub headers: ExportHeaders,
    /// Print wall-clock times to stderr.
    pub timings: bool,
    /// Print the executed plan instead of the result.
    pub explain: bool,
}

impl Context {
    /// Session options of the engines this run opens.
    pub fn engine_options(&self) -> EngineOptions {
        EngineOptions::with_limits(self.memory_limit, self.partitions)
    }

    /// The `--columns` file's map, if one was given.
    fn user_columns(&self) -> Result<Option<ColumnMap>, Failure> {
        Ok(match &self.columns {
            Some(file) => Some(ColumnMap::from_file(file)?),
            None => None,
        })
    }

    /// How datasets are opened in this run (reads the `--columns` file).
    pub fn open_options(&self) -> Result<OpenOptions, Failure> {
        let columns = self.user_columns()?;
        Ok(OpenOptions {
            store: self.store.clone(),
            cache: !self.no_cache,
            memory_limit: self.memory_limit,
            encoding: self.encoding,
            columns,
            ..Default::default()
        })
    }

    /// Open, validate and wrap the dataset in `dir` in an engine (a spinner
    /// while it loads; a note when rows were rejected).
    pub async fn open(&self, dir: &Path) -> Result<Engine, Failure> {
        let spinner = ProgressBar::new_spinner().with_message(format!("loading {}", dir.display()));
        spinner.enable_steady_tick(Duration::from_millis(120));
        let started = Instant::now();
        let dataset = Dataset::open_with(dir, &self.open_options()?).await;
        spinner.finish_and_clear();
        let dataset = dataset?;
        if self.timings {
            eprintln!(
                "timing: load + validate {:.3}s ({})",
                started.elapsed().as_secs_f64(),
                store_note(&dataset)
            );
        }
        report_notes(&dataset);
        let rejected: usize = dataset.summary().iter().map(|s| s.rejected).sum();
        if rejected > 0 {
            eprintln!(
                "note: {rejected} rows rejected while loading and left out (see `tuopin validate`)"
            );
        }
        Ok(Engine::with_options(dataset, self.engine_options()).await?)
    }

    /// Write `df` to `out` (streamed), or print its first `limit` rows;
    /// with `--explain` print the executed plan instead.
    pub async fn emit(
        &self,
        df: DataFrame,
        out: Option<&Path>,
        limit: usize,
    ) -> Result<(), Failure> {
        self.emit_columns(df, out, limit, &Columns::All).await
    }

    /// [`Context::emit`] printing only `columns` in the terminal (a file
    /// gets every column).
    pub async fn emit_columns(
        &self,
        df: DataFrame,
        out: Option<&Path>,
        limit: usize,
        columns: &Columns,
    ) -> Result<(), Failure> {
        if self.explain {
            let plan = df.explain(false, true)?.collect().await?;
            say!("{}", pretty_format_batches(&plan)?);
            return Ok(());
        }
        let started = Instant::now();
        match out {
            Some(path) => {
                // Streamed: a national-scale result never sits in memory whole.
                let df = if self.headers == ExportHeaders::Chinese {
                    let map = match self.user_columns()? {
                        Some(user) => ColumnMap::builtin().extended(&user),
                        None => ColumnMap::builtin(),
                    };
                    tuopin::io::exporting::with_headers(df, self.headers, &map)?
                } else {
                    df
                };
                let n = tuopin::output::write_dataframe(df, path).await?;
                if self.timings {
                    eprintln!(
                        "timing: query + write {:.3}s",
                        started.elapsed().as_secs_f64()
                    );
                }
                eprintln!("wrote {n} rows to {}", path.display());
            }
            None => {
                let all: Vec<String> = df
                    .schema()
                    .fields()
                    .iter()
                    .map(|f| f.name().clone())
                    .collect();
                let shown = columns.pick(&all)?;
                let hidden = all.len() - shown.len();
                let names: Vec<&str> = shown.iter().map(String::as_str).collect();
                let batches = df.select_columns(&names)?.collect().await?;
                if self.timings {
                    eprintln!("timing: query {:.3}s", started.elapsed().as_secs_f64());
                }
                print_batches(&batches, limit)?;
                if hidden > 0 {
                    say!("({hidden} more columns: --all-columns, or --columns a,b,… to choose)");
                }
            }
        }
        Ok(())
    }
}

/// Print what a caller should know about `year` (no poverty line, …) to
/// stderr.
pub async fn report_year_notes(engine: &Engine, year: i32) -> Result<(), Failure> {
    for note in engine.notes(year).await? {
        eprintln!("note: {note}");
    }
    Ok(())
}

/// Print the load report's notes (renamed columns) to stderr.
pub fn report_notes(dataset: &Dataset) {
    for s in dataset.summary() {
        for note in &s.notes {
            eprintln!("note: {} ({}): {note}", s.table, s.source);
        }
    }
}

/// `--columns` / `--all-columns`, shared by the commands that print wide
/// results.
#[derive(clap::Args, Debug)]
pub struct ColumnArgs {
    /// Columns to print, comma-separated (the terminal view; a file gets all).
    #[arg(long)]
    pub columns: Option<String>,
    /// Print every column in the terminal.
    #[arg(long)]
    pub all_columns: bool,
}

impl ColumnArgs {
    /// The choice these flags make, `default` when neither is given.
    pub fn choice(&self, default: &'static [&'static str]) -> Columns {
        Columns::chosen(self.columns.as_deref(), self.all_columns, default)
    }
}

/// Which columns a result prints in the terminal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Columns {
    /// Every column.
    All,
    /// These, in this order (each must exist).
    Only(Vec<String>),
    /// These where the result has them (the default view of a command).
    Default(&'static [&'static str]),
}

impl Columns {
    /// `--columns` / `--all-columns` as given, else the command's default.
    pub fn chosen(columns: Option<&str>, all: bool, default: &'static [&'static str]) -> Columns {
        match (columns, all) {
            (_, true) => Columns::All,
            (Some(list), false) => Columns::Only(
                list.split(',')
                    .map(|c| c.trim().to_string())
                    .filter(|c| !c.is_empty())
                    .collect(),
            ),
            (None, false) => Columns::Default(default),
        }
    }

    /// The columns of `all` to print.
    pub fn pick(&self, all: &[String]) -> Result<Vec<String>, Failure> {
        match self {
            Columns::All => Ok(all.to_vec()),
            Columns::Default(wanted) => {
                let picked: Vec<String> = wanted
                    .iter()
                    .filter(|w| all.iter().any(|a| a == *w))
                    .map(|w| w.to_string())
                    .collect();
                Ok(if picked.is_empty() {
                    all.to_vec()
                } else {
                    picked
                })
            }
            Columns::Only(wanted) => {
                for w in wanted {
                    if !all.contains(w) {
                        return Err(Failure(
                            2,
                            format!("no column `{w}` (columns: {})", all.join(", ")),
                        ));
                    }
                }
                Ok(wanted.clone())
            }
        }
    }
}

/// Print the first `limit` rows of `batches` as a table (lists as text).
pub fn print_batches(batches: &[RecordBatch], limit: usize) -> Result<(), Failure> {
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
    say!("{}", pretty_format_batches(&shown)?);
    if total > limit {
        say!(
            "… {} more rows (use --out FILE for all {total})",
            total - limit
        );
    }
    Ok(())
}

/// A rule set by built-in name or TOML file.
pub fn load_rules(spec: &str) -> Result<RuleSet, Failure> {
    let path = Path::new(spec);
    if path.extension().is_some_and(|e| e == "toml") || path.is_file() {
        let text = std::fs::read_to_string(path).map_err(|e| Failure::from(Error::io(path, e)))?;
        return RuleSet::from_toml(&text)
            .map_err(|e| Failure(1, format!("{}: {e}", path.display())));
    }
    Ok(RuleSet::builtin(spec)?)
}

/// A byte size such as `2GiB`, `512MiB`, `3G` or `1048576`: positive and
/// finite, else an error naming the value.
pub fn parse_bytes(s: &str) -> Result<usize, String> {
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
    let bad = || format!("not a size: {s} (try 2GiB or 512MiB)");
    let n = num.trim().parse::<f64>().map_err(|_| bad())?;
    let bytes = n * mult as f64;
    if !bytes.is_finite() || bytes < 1.0 || bytes >= usize::MAX as f64 {
        return Err(format!(
            "memory limit must be a positive size, got {s} (try 2GiB or 512MiB)"
        ));
    }
    Ok(bytes as usize)
}

/// Where a dataset's validated tables are: `in memory`, `reopened store
/// …` or `validated into store …`.
pub fn store_note(dataset: &Dataset) -> String {
    match (dataset.store(), dataset.reused_store()) {
        (None, _) => "in memory".into(),
        (Some(at), true) => format!("reopened store {}", at.display()),
        (Some(at), false) => format!("validated into store {}", at.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_positive_and_finite() {
        assert_eq!(parse_bytes("2GiB"), Ok(2 << 30));
        assert_eq!(parse_bytes("512MiB"), Ok(512 << 20));
        assert_eq!(parse_bytes("1.5K"), Ok(1536));
        assert!(parse_bytes("-1G").is_err());
        assert!(parse_bytes("0").is_err());
        assert!(parse_bytes("NaN").is_err());
        assert!(parse_bytes("infG").is_err());
        assert!(parse_bytes("lots").is_err());
    }

    #[test]
    fn column_choice() {
        let all: Vec<String> = ["level", "code", "name", "fgt0"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let default = Columns::chosen(None, false, &["code", "missing", "name"]);
        assert_eq!(default.pick(&all).unwrap(), ["code", "name"]);
        assert_eq!(
            Columns::chosen(None, true, &["code"]).pick(&all).unwrap(),
            all
        );
        let only = Columns::chosen(Some("fgt0, code"), false, &[]);
        assert_eq!(only.pick(&all).unwrap(), ["fgt0", "code"]);
        assert!(Columns::chosen(Some("nope"), false, &[])
            .pick(&all)
            .is_err());
    }
}
