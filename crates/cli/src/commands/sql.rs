//! `tuopin sql`: a SQL query over the dataset's tables and views.

use std::path::PathBuf;

use tuopin::SqlOptions;

use crate::context::{Context, Failure};

/// Arguments of `sql`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Dataset folder.
    pub dir: PathBuf,
    /// The query.
    pub query: String,
    /// Write the result (.parquet, .csv, .json).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Let the query write: DDL (CREATE/DROP), DML (INSERT, COPY … TO) and
    /// SET. Names tuopin registers stay protected.
    #[arg(long)]
    pub allow_write: bool,
}

/// Run the query; a query error exits 2.
pub async fn run(cx: &Context, args: &Args) -> Result<u8, Failure> {
    let engine = cx.open(&args.dir).await?;
    let options = SqlOptions {
        allow_write: args.allow_write,
    };
    let df = engine
        .sql_with(&args.query, options)
        .await
        .map_err(|e| Failure(2, e.to_string()))?;
    cx.emit(df, args.out.as_deref(), 100).await?;
    Ok(0)
}
