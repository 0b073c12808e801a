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
//! let engine = Engine::new(Dataset::open("data/hebei").await?).await?;
//! let hebei = RuleSet::builtin("hebei-2016")?;
//! engine.evaluate(&hebei, 2016).await?.show_limit(10).await?;
//! engine.metrics(2016, Some(Level::County)).await?.show_limit(10).await?;
//! # Ok(()) }
//! ```
//!
//! Where to look — the modules in layers, each using only those above it
//! in this list (checked by `tests/layering.rs`):
//!
//! | layer | module | what |
//! |---|---|---|
//! | base | [`error`], [`schema`], [`codes`], [`links`] | errors; tables and columns; region codes, levels and ID numbers; the link columns validation carries |
//! | functions | [`functions`] (`codes.rs`, `flags.rs`, `median.rs`) | every UDF/UDAF, one `register_all` |
//! | session | `session`, [`sql`] | DataFusion sessions as tuopin makes them; what user SQL may do |
//! | rules | [`rules`] (`model.rs`, `compile.rs`, `outcome.rs`) | rule files, the `when` sandbox, the outcome rule |
//! | data | `table`, [`lines`] | validated tables; the built-in poverty lines |
//! | io | [`io`] (`source.rs`, `store.rs`, [`io::output`]) | reading sources, the store, writing results |
//! | metrics | `metrics` (`defs.rs` declares every metric once; `causes.rs`, `transitions.rs`) | the metrics plan |
//! | facts | `facts` | `household_facts`, `region_facts`, `village_facts`, `county_facts` |
//! | catalog | `catalog` | registers every table and view; table providers |
//! | validate | `validate` (`checks.rs`) | typing, row checks, references, the rejects ledger |
//! | dataset | [`dataset`] | [`Dataset::open`]: find, read, validate, store |
//! | engine | [`engine`] | the facade: evaluate, audit, metrics, causes, transitions, SQL |
//! | analyses | [`mpi`], [`quality`] | more `Engine` methods built on the facade: the multidimensional poverty index, the consistency checks |
//!
//! [`synth`] (the Hebei-shaped synthetic generator) stands beside them and
//! uses only the base, `lines` and `schema`.

pub(crate) mod catalog;
pub mod codes;
pub mod dataset;
pub mod engine;
pub mod error;
pub(crate) mod facts;
pub mod functions;
pub mod io;
pub mod lines;
pub mod links;
pub(crate) mod metrics;
pub mod mpi;
pub mod quality;
pub mod rules;
pub mod schema;
pub(crate) mod session;
pub mod sql;
pub mod synth;
pub(crate) mod table;
pub(crate) mod validate;

pub use codes::{Level, LevelSelection};
pub use dataset::{Dataset, OpenOptions};
pub use engine::{Engine, EngineOptions};
pub use error::{Error, ErrorKind, Result};
pub use facts::{YearLines, ASSESSMENT_RATES};
pub use io::exports::{ColumnMap, Encoding};
pub use io::output;
pub use rules::{Indicator, RuleSet, Unit};
pub use sql::SqlOptions;
pub use synth::{generate, GenerateOptions};
pub use table::{Table, TableSummary};
