//! `tuopin mpi`: the multidimensional poverty index (Alkire–Foster) of a
//! household rule set per region, or its change between two years.

use std::path::PathBuf;

use tuopin::LevelSelection;

use crate::context::{load_rules, report_year_notes, ColumnArgs, Context, Failure};

/// Arguments of `mpi`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Dataset folder.
    pub dir: PathBuf,
    /// Household rule set whose indicators are the dimensions (built-in
    /// name or TOML file).
    #[arg(long)]
    pub rules: String,
    /// Year (or use --from and --to for the change).
    #[arg(long, required_unless_present = "from")]
    pub year: Option<i32>,
    /// Level: province, city, county, township, village or all.
    #[arg(long, default_value = "county")]
    pub level: LevelSelection,
    /// Poverty cut-off k in (0, 1]; repeat for several (one for --from/--to).
    #[arg(long, default_values_t = [1.0 / 3.0])]
    pub k: Vec<f64>,
    /// First year of a change (with --to).
    #[arg(long, requires = "to", conflicts_with = "year")]
    pub from: Option<i32>,
    /// Last year of a change (with --from).
    #[arg(long, requires = "from")]
    pub to: Option<i32>,
    #[command(flatten)]
    pub view: ColumnArgs,
    /// Write the result (.parquet, .csv, .json).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// The columns printed by default: the headline figures.
const VIEW: &[&str] = &[
    "level",
    "code",
    "name",
    "year",
    "k",
    "population",
    "excluded_households",
    "H",
    "A",
    "M0",
    "from_year",
    "to_year",
    "M0_from",
    "M0_to",
    "M0_abs",
    "M0_ann",
];

/// Run the index or its change.
pub async fn run(cx: &Context, args: &Args) -> Result<u8, Failure> {
    let rules = load_rules(&args.rules)?;
    let engine = cx.open(&args.dir).await?;
    let level = args.level.level();
    let df = match (args.from, args.to, args.year) {
        (Some(from), Some(to), _) => {
            let [k] = args.k[..] else {
                return Err(Failure(2, "--from/--to take exactly one --k".into()));
            };
            engine.mpi_change(&rules, from, to, level, k).await?
        }
        (_, _, Some(year)) => {
            report_year_notes(&engine, year).await?;
            engine.mpi(&rules, year, level, &args.k).await?
        }
        _ => return Err(Failure(2, "give --year, or --from and --to".into())),
    };
    let columns = args.view.choice(VIEW);
    cx.emit_columns(df, args.out.as_deref(), 100, &columns)
        .await?;
    Ok(0)
}
