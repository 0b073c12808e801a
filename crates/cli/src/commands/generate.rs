//! `tuopin generate`: a synthetic Hebei-shaped registry as Parquet files.

use std::path::PathBuf;
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressStyle};
use tuopin::synth::{self, GenerateOptions};

use crate::context::Failure;

/// Arguments of `generate`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Registered households (2070000 = Hebei's registry: 3.1 M poor at the
    /// end of 2015).
    #[arg(long, default_value_t = 10_000)]
    pub households: usize,
    /// Random seed.
    #[arg(long, default_value_t = 2016)]
    pub seed: u64,
    /// Share of deliberately faulty rows.
    #[arg(long, default_value_t = 0.0)]
    pub faults: f64,
    /// Write only this year's snapshot (2014-2020).
    #[arg(long)]
    pub year: Option<i32>,
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
}

/// Write the registry with a progress bar.
pub async fn run(args: &Args) -> Result<u8, Failure> {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} ({eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let b = bar.clone();
    let opts = GenerateOptions {
        households: args.households,
        seed: args.seed,
        faults: args.faults,
        only_year: args.year,
        progress: Some(Arc::new(move |stage: &str, done: u64, total: u64| {
            b.set_length(total);
            b.set_position(done);
            b.set_message(stage.to_string());
        })),
    };
    let out = args.out.clone();
    tokio::task::spawn_blocking(move || synth::generate(&opts, &out))
        .await
        .map_err(|e| Failure(2, e.to_string()))??;
    bar.finish_and_clear();
    eprintln!(
        "generated {} households (seed {})",
        args.households, args.seed
    );
    Ok(0)
}
