//! # tuopin — analytics for targeted poverty-alleviation registries
//!
//! tuopin (脱贫, "leaving poverty") models a 建档立卡 registry — regions,
//! households, members, assistance, funds and third-party assessments — as
//! Arrow tables, validates it into accepted rows plus a `rejects` ledger,
//! decides which households, villages and counties may exit poverty under a
//! declared rule set, audits the exit procedure, and measures progress at
//! every administrative level. Every analytic is an Apache DataFusion plan.
//!
//! ```no_run
//! # async fn run() -> tuopin::Result<()> {
//! use tuopin::{Dataset, Engine, RuleSet, Level};
//! let engine = Engine::new(Dataset::open("data/hebei").await?)?;
//! let hebei = RuleSet::builtin("hebei-2016")?;
//! engine.evaluate(&hebei, 2016).await?.show_limit(10).await?;
//! engine.metrics(2016, Some(Level::County)).await?.show_limit(10).await?;
//! # Ok(()) }
//! ```
//!
//! Where to look:
//! - [`codes`]: region codes and resident ID numbers;
//! - [`schema`]: the tables and their columns;
//! - [`dataset`] and [`validate`]: loading and the rejects ledger;
//! - [`store`]: disk-backed datasets for registries larger than memory;
//! - [`links`]: household facts carried from validation onto members and
//!   assistance rows;
//! - [`rules`]: rule sets and the outcome rule;
//! - [`engine`]: the session, evaluation and audit;
//! - [`metrics`]: every metric, causes, transitions, village/county facts;
//! - [`synth`]: the Hebei-shaped synthetic generator;
//! - [`output`]: writing results as Parquet, CSV or JSON.

pub mod codes;
pub mod dataset;
pub mod engine;
pub mod error;
pub mod functions;
pub mod lines;
pub mod links;
pub mod metrics;
pub mod output;
pub mod rules;
pub mod schema;
pub mod store;
pub mod synth;
pub mod validate;

pub use codes::Level;
pub use dataset::{Dataset, OpenOptions, Table, TableSummary};
pub use engine::{Engine, EngineOptions};
pub use error::{Error, ErrorKind, Result};
pub use rules::{Indicator, RuleSet, Unit};
pub use synth::{generate, GenerateOptions};
