//! `tuopin import`: a folder of registry exports (GB18030 or UTF-8 CSV,
//! Chinese headers and labels — DESIGN §8) → a tuopin dataset: one
//! Parquet file per table with the English columns, and the rejects
//! ledger as `rejects.parquet`. A progress bar shows the bytes read.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tuopin::{Dataset, Engine, OpenOptions};

use crate::context::{report_notes, Context, Failure};

/// Arguments of `import`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Folder of exports.
    pub src: PathBuf,
    /// Folder to write the dataset into (created; must not be `src`).
    #[arg(long)]
    pub out: PathBuf,
}

/// Write the dataset; exit 1 when rows were rejected (they are in
/// `rejects.parquet`, not in the tables).
pub async fn run(cx: &Context, args: &Args) -> Result<u8, Failure> {
    let same = |a: &PathBuf, b: &PathBuf| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if same(&args.src, &args.out) {
        return Err(Failure(
            2,
            format!(
                "--out {} is the exports folder: write the dataset elsewhere",
                args.out.display()
            ),
        ));
    }
    // A bar over the bytes of the exports as they are read, then a
    // spinner while the rows are checked.
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg:<12} {bar:40} {bytes}/{total_bytes} ({eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let b = bar.clone();
    let options = OpenOptions {
        progress: Some(Arc::new(move |stage: &str, done: u64, total: u64| {
            if stage == "reading" {
                b.set_length(total);
                b.set_position(done);
            } else if done == 0 {
                b.enable_steady_tick(Duration::from_millis(120));
            }
            b.set_message(stage.to_string());
        })),
        ..cx.open_options()?
    };
    let dataset = Dataset::open_with(&args.src, &options).await;
    bar.finish_and_clear();
    let dataset = dataset?;
    report_notes(&dataset);
    std::fs::create_dir_all(&args.out)
        .map_err(|e| Failure(2, format!("cannot create {}: {e}", args.out.display())))?;
    // The tables read from files (not the built-in poverty lines).
    let tables: Vec<(String, usize)> = dataset
        .summary()
        .iter()
        .filter(|s| s.source != "built-in")
        .map(|s| (s.table.clone(), s.accepted))
        .collect();
    let faults = dataset.reject_count();
    let engine = Engine::new(dataset).await?;
    for (table, accepted) in &tables {
        let path = args.out.join(format!("{table}.parquet"));
        let df = engine.sql(&format!("SELECT * FROM {table}")).await?;
        tuopin::output::write_dataframe(df, &path).await?;
        say!("{table:<14} {accepted:>10} rows  → {}", path.display());
    }
    let rejects = args.out.join("rejects.parquet");
    tuopin::output::write_dataframe(engine.rejects().await?, &rejects).await?;
    say!(
        "{:<14} {faults:>10} rows  → {}",
        "rejects",
        rejects.display()
    );
    Ok(if faults > 0 { 1 } else { 0 })
}
