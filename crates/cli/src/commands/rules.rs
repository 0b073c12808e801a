//! `tuopin rules list | show NAME | check FILE`.

use std::path::PathBuf;

use datafusion::arrow::array::RecordBatch;
use tuopin::{Dataset, Engine, RuleSet};

use crate::context::{load_rules, Failure};

/// What to do with rule sets.
#[derive(clap::Subcommand, Debug)]
pub enum Action {
    /// List the built-in rule sets.
    List,
    /// Print a built-in rule set's TOML (copy it to start your own).
    Show {
        /// Name.
        name: String,
    },
    /// Check a rule file against the facts schema.
    Check {
        /// TOML file.
        file: PathBuf,
    },
}

/// Run `action`.
pub async fn run(action: &Action) -> Result<u8, Failure> {
    match action {
        Action::List => {
            for name in RuleSet::builtin_names() {
                let r = RuleSet::builtin(name)?;
                say!("{:<15} {:<10} {}", name, r.unit.as_str(), r.description);
            }
            Ok(0)
        }
        Action::Show { name } => {
            let text = RuleSet::builtin_toml(name).ok_or_else(|| {
                Failure(
                    1,
                    format!(
                        "unknown built-in rule set `{name}` (built-ins: {})",
                        RuleSet::builtin_names().join(", ")
                    ),
                )
            })?;
            say!("{}", text.trim_end_matches('\n'));
            Ok(0)
        }
        Action::Check { file } => check(file).await,
    }
}

/// Compile a rule file against the facts views of an empty registry.
async fn check(file: &std::path::Path) -> Result<u8, Failure> {
    let rules = load_rules(&file.display().to_string())?;
    let engine = empty_engine().await?;
    let schema = engine.schema_of(rules.unit.facts_view()).await?;
    let df_schema = datafusion::common::DFSchema::try_from(schema.as_ref().clone())?;
    rules
        .compile(&engine.context().state(), &df_schema)
        .map_err(|e| Failure(1, format!("{}: {e}", file.display())))?;
    say!(
        "{}: rule set `{}` ({}), {} indicators, {} points{} — ok",
        file.display(),
        rules.name,
        rules.unit,
        rules.indicators.len(),
        rules.total_points(),
        rules
            .pass_score
            .map(|p| format!(", pass at {p}"))
            .unwrap_or_else(|| ", all must pass".into())
    );
    Ok(0)
}

async fn empty_engine() -> Result<Engine, Failure> {
    let regions = RecordBatch::new_empty(tuopin::schema::REGIONS.schema());
    let households = RecordBatch::new_empty(tuopin::schema::HOUSEHOLDS.schema());
    let ds = Dataset::from_batches([("regions", vec![regions]), ("households", vec![households])])
        .await?;
    Ok(Engine::new(ds).await?)
}
