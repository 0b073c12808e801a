//! `tuopin validate`: load a dataset, print the summary and the rejects.

use std::path::PathBuf;

use tuopin::{Dataset, Engine};

use crate::context::{print_batches, report_notes, store_note, Context, Failure};

/// Arguments of `validate`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Dataset folder.
    pub dir: PathBuf,
    /// Write the rejects table (.parquet, .csv, .json).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Exit 1 when rows were rejected.
pub async fn run(cx: &Context, args: &Args) -> Result<u8, Failure> {
    let dataset = Dataset::open_with(&args.dir, &cx.open_options()?).await?;
    report_notes(&dataset);
    say!("{}", store_note(&dataset));
    say!(
        "{:<14} {:>10} {:>10} {:>10}  source",
        "table",
        "rows",
        "accepted",
        "rejected"
    );
    for s in dataset.summary() {
        say!(
            "{:<14} {:>10} {:>10} {:>10}  {}",
            s.table,
            s.rows,
            s.accepted,
            s.rejected,
            s.source
        );
    }
    let rejects = dataset.rejects().to_vec();
    let faults = dataset.reject_count();
    if let Some(out) = &args.out {
        let engine = Engine::new(dataset).await?;
        cx.emit(engine.rejects().await?, Some(out), 0).await?;
    } else if faults > 0 {
        say!();
        print_batches(&rejects, 50)?;
    }
    Ok(if faults > 0 { 1 } else { 0 })
}
