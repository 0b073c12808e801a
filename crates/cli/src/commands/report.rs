//! `tuopin metrics`, `causes` and `transitions`: per-region reports at a
//! level or at every level.

use std::path::PathBuf;

use tuopin::LevelSelection;

use crate::context::{report_year_notes, ColumnArgs, Columns, Context, Failure};

/// Arguments of the per-level reports.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Dataset folder.
    pub dir: PathBuf,
    /// Year.
    #[arg(long)]
    pub year: i32,
    /// Level: province, city, county, township, village or all.
    #[arg(long, default_value = "county")]
    pub level: LevelSelection,
    #[command(flatten)]
    pub view: ColumnArgs,
    /// Write the result (.parquet, .csv, .json).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Which report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    /// DESIGN §4 metrics.
    Metrics,
    /// By primary cause.
    Causes,
    /// Against the previous year.
    Transitions,
}

/// The columns `metrics` prints by default: the key figures of a region
/// (27 columns side by side do not fit a terminal).
pub const METRICS_VIEW: &[&str] = &[
    "level",
    "code",
    "name",
    "year",
    "poor_households",
    "poor_population",
    "poverty_incidence",
    "exited_population",
    "mean_income",
    "median_income",
    "poor_villages_remaining",
];

/// Run `report` at the chosen level(s).
pub async fn run(cx: &Context, report: Report, args: &Args) -> Result<u8, Failure> {
    let engine = cx.open(&args.dir).await?;
    let level = args.level.level();
    report_year_notes(&engine, args.year).await?;
    let df = match report {
        Report::Metrics => engine.metrics(args.year, level).await?,
        Report::Causes => engine.causes(args.year, level).await?,
        Report::Transitions => engine.transitions(args.year, level).await?,
    };
    let default: &'static [&'static str] = match report {
        Report::Metrics => METRICS_VIEW,
        _ => &[],
    };
    let columns = match (report, &args.view.columns) {
        (Report::Metrics, _) | (_, Some(_)) => args.view.choice(default),
        _ => Columns::All,
    };
    cx.emit_columns(df, args.out.as_deref(), 100, &columns)
        .await?;
    Ok(0)
}
