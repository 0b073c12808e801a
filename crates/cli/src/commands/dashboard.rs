//! `tuopin serve`: the command dashboard (攻坚指挥) over a registry, and
//! `tuopin report`: one region page as a self-contained HTML file
//! (DESIGN §10; the web application is the `tuopin-web` crate).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tuopin::synth::{self, GenerateOptions};
use tuopin::{Dataset, Engine};
use tuopin_web::{App, ServeOptions};

use crate::context::{load_rules, Context, Failure};

/// Arguments of `serve`.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Dataset folder (not needed with --demo).
    #[arg(required_unless_present = "demo")]
    pub dir: Option<PathBuf>,
    /// Serve the embedded demo sample (what `tuopin demo` shows) instead.
    #[arg(long, conflicts_with = "dir")]
    pub demo: bool,
    /// Address to listen on; anything but loopback needs --token.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// A token every request must carry (Authorization: Bearer …, or the
    /// cookie set by /login?token=…).
    #[arg(long)]
    pub token: Option<String>,
    /// Household rule sets to offer (built-in name or TOML file; repeat;
    /// default: hebei-2016 and national-2016).
    #[arg(long)]
    pub rules: Vec<String>,
}

/// Arguments of `report`.
#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// Dataset folder.
    pub dir: PathBuf,
    /// Year.
    #[arg(long)]
    pub year: i32,
    /// Region code (default: the province).
    #[arg(long)]
    pub region: Option<String>,
    /// Household rule set (built-in name or TOML file; default hebei-2016).
    #[arg(long)]
    pub rules: Option<String>,
    /// The HTML file to write.
    #[arg(long)]
    pub out: PathBuf,
}

/// Open the dataset (or the demo sample) and serve until Ctrl-C.
pub async fn serve(cx: &Context, args: &ServeArgs) -> Result<u8, Failure> {
    let options = ServeOptions {
        bind: args.bind,
        token: args.token.clone(),
    };
    tuopin_web::check_bind(&options).map_err(|e| Failure(2, e.to_string()))?;
    let engine = match &args.dir {
        Some(dir) if !args.demo => cx.open(dir).await?,
        _ => {
            let opts = GenerateOptions {
                households: 20_000,
                seed: 2016,
                ..Default::default()
            };
            let tables = tokio::task::spawn_blocking(move || synth::generate_tables(&opts))
                .await
                .map_err(|e| Failure(2, e.to_string()))??;
            Engine::with_options(Dataset::from_batches(tables).await?, cx.engine_options()).await?
        }
    };
    let rules = args
        .rules
        .iter()
        .map(|r| load_rules(r))
        .collect::<Result<Vec<_>, _>>()?;
    let app = App::new(Arc::new(engine), rules, args.token.clone())
        .await
        .map_err(web_failure)?;
    eprintln!("preparing the figures of every year …");
    app.data.warm().await.map_err(web_failure)?;
    let app = Arc::new(app);
    eprintln!(
        "tuopin dashboard on http://{}/  (Ctrl-C stops it){}",
        args.bind,
        if args.token.is_some() {
            format!("; open http://{}/login?token=… first", args.bind)
        } else {
            String::new()
        }
    );
    tuopin_web::serve(app, &options, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
    .map_err(web_failure)?;
    Ok(0)
}

/// Write the report file.
pub async fn report(cx: &Context, args: &ReportArgs) -> Result<u8, Failure> {
    let engine = cx.open(&args.dir).await?;
    let rules = args.rules.as_deref().map(load_rules).transpose()?;
    let html = tuopin_web::report(Arc::new(engine), args.year, args.region.as_deref(), rules)
        .await
        .map_err(web_failure)?;
    std::fs::write(&args.out, html)
        .map_err(|e| Failure(2, format!("cannot write {}: {e}", args.out.display())))?;
    eprintln!("wrote {}", args.out.display());
    Ok(0)
}

/// A dashboard error as an exit code: a bad request value (year, region,
/// rule set) is a usage error (2), a data error 1.
fn web_failure(e: tuopin_web::WebError) -> Failure {
    match e {
        tuopin_web::WebError::Engine(inner) => Failure::from(inner),
        tuopin_web::WebError::NotFound(m) => Failure(2, m),
        other => Failure(2, other.public_message().replace("internal error: ", "")),
    }
}
