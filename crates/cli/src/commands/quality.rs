//! `tuopin quality`: the national system's consistency checks of a year
//! (DESIGN §8) — warnings, the rows stay in the dataset.

use std::path::PathBuf;

use crate::context::{Context, Failure};

/// Arguments of `quality`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Dataset folder.
    pub dir: PathBuf,
    /// Registry year.
    #[arg(long)]
    pub year: i32,
    /// Write the warnings (.parquet, .csv, .json).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Print or write the warnings; exit 0 whether or not any check fires.
pub async fn run(cx: &Context, args: &Args) -> Result<u8, Failure> {
    let engine = cx.open(&args.dir).await?;
    let df = engine.quality(args.year).await?;
    cx.emit(df, args.out.as_deref(), 100).await?;
    Ok(0)
}
