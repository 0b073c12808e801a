//! `tuopin generate`: a synthetic Hebei-shaped registry as Parquet files,
//! or as the exports of the national system (`--format csv|xlsx`, with the
//! global `--headers zh` and `--encoding gb18030`; DESIGN §8).

use std::path::PathBuf;
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressStyle};
use tuopin::synth::{self, GenerateOptions};

use tuopin::io::exporting::{self, ExportFormat, ExportHeaders, ExportOptions};

use crate::context::{Context, Failure};

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
    /// parquet (tuopin's dataset), or csv / xlsx as the national system
    /// exports them (with --headers zh: Chinese headers and labels, 是/否,
    /// 2016年12月31日; with --encoding gb18030: GB18030 CSV).
    #[arg(long, default_value = "parquet", value_parser = ["parquet", "csv", "xlsx"])]
    pub format: String,
    /// Excel: rows per part; a longer table becomes a folder of parts.
    #[arg(long, default_value_t = 1_000_000)]
    pub part_rows: usize,
}

/// Write the registry with a progress bar.
pub async fn run(cx: &Context, args: &Args) -> Result<u8, Failure> {
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
    // Exports are written from a Parquet dataset generated beside them.
    let export = match args.format.as_str() {
        "parquet" => None,
        other => Some(other.parse::<ExportFormat>()?),
    };
    let parquet = match export {
        None => args.out.clone(),
        Some(_) => {
            let mut name = args.out.file_name().unwrap_or_default().to_os_string();
            name.push(".parquet-tmp");
            args.out.with_file_name(name)
        }
    };
    let at = parquet.clone();
    tokio::task::spawn_blocking(move || synth::generate(&opts, &at))
        .await
        .map_err(|e| Failure(2, e.to_string()))??;
    bar.finish_and_clear();
    if let Some(format) = export {
        let options = ExportOptions {
            format,
            headers: cx.headers,
            encoding: match cx.encoding {
                tuopin::Encoding::Auto => tuopin::Encoding::Utf8,
                e => e,
            },
            part_rows: args.part_rows,
            ..ExportOptions::default()
        };
        let written = exporting::export_dataset(&parquet, &args.out, &options).await;
        let _ = std::fs::remove_dir_all(&parquet);
        let written = written?;
        eprintln!(
            "wrote {} export files ({}{}) to {}",
            written.len(),
            args.format,
            if cx.headers == ExportHeaders::Chinese {
                ", Chinese headers"
            } else {
                ""
            },
            args.out.display()
        );
    }
    eprintln!(
        "generated {} households (seed {})",
        args.households, args.seed
    );
    Ok(0)
}
