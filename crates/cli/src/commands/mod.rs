//! One module per command group; each takes the [`Context`] of the global
//! options and its own arguments, and returns the exit code.
//!
//! [`Context`]: crate::context::Context

pub mod cache;
pub mod dashboard;
pub mod demo;
pub mod evaluate;
pub mod generate;
pub mod import;
pub mod mpi;
pub mod quality;
pub mod report;
pub mod rules;
pub mod sql;
pub mod validate;
