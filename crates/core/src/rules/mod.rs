//! Exit rule sets: declared in TOML, checked, and compiled to one DataFusion
//! plan per evaluation.
//!
//! ```
//! use tuopin::RuleSet;
//! let rules = RuleSet::from_toml(r#"
//!     name = "strict"
//!     unit = "household"
//!     [[indicator]]
//!     key = "income"
//!     points = 100
//!     veto = true
//!     when = "per_capita_net_income > poverty_line"
//! "#).unwrap();
//! assert_eq!(rules.indicators.len(), 1);
//! assert!(RuleSet::builtin("hebei-2016").unwrap().pass_score == Some(80.0));
//! ```
//!
//! Where things happen:
//! - `model.rs` — [`RuleSet::from_toml`] parses and runs the checks that
//!   need no data (unique keys, points ≥ 0, pass_score ≤ total);
//! - `compile.rs` — [`RuleSet::compile`] parses each `when` with
//!   DataFusion's SQL parser against the unit's facts schema and refuses
//!   anything but columns and deterministic scalar functions, with errors
//!   naming the rule set, indicator and the nearest existing column;
//! - `outcome.rs` — `outcome_columns` turns compiled indicators into the
//!   output columns (`pass_<key>`, `score`, `failed`, `vetoed_by`,
//!   `unknown`, `outcome`) with the three-valued outcome rule of DESIGN §3.
//!
//! - `audit.rs` — the procedure audit's flags, each defined once.
//!
//! Evaluating a rule set over data is [`crate::Engine::evaluate`]; the
//! flag functions the outcome uses are in [`crate::functions`].

pub(crate) mod audit;
mod compile;
mod model;
mod outcome;

pub use model::{Indicator, RuleSet, Unit, BUILTINS};
pub(crate) use outcome::outcome_columns;
