//! The one error type of the core, [`Error`], and its [`Result`] alias.
//!
//! Every variant names what went wrong *where*: the file or table, the
//! column, the rule set and indicator. Row faults in the data are not errors
//! — they go to the `rejects` table (see `validate`).
//!
//! ```
//! use tuopin::{Error, RuleSet};
//! let err = RuleSet::builtin("no-such-rules").unwrap_err();
//! assert!(matches!(err, Error::UnknownRuleSet { .. }));
//! assert!(err.to_string().contains("no-such-rules"));
//! ```

use std::path::PathBuf;

use datafusion::arrow::error::ArrowError;
use datafusion::error::DataFusionError;

/// Errors raised by the tuopin core.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or folder could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder involved.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },

    /// A required table has no file in the dataset folder.
    #[error("dataset {dir}: required table `{table}` not found (looked for {table}.parquet, {table}.csv, {table}.arrow)")]
    MissingTable {
        /// The dataset folder.
        dir: String,
        /// The table that is missing.
        table: String,
    },

    /// A table is present but its structure is unusable: unreadable file,
    /// missing required column, or a column type that cannot be cast.
    #[error("table `{table}` ({source_name}){}: {message}", column.as_ref().map(|c| format!(", column `{c}`")).unwrap_or_default())]
    Schema {
        /// The table.
        table: String,
        /// Where it came from (file path or `memory`).
        source_name: String,
        /// The column at fault, if one.
        column: Option<String>,
        /// What is wrong.
        message: String,
    },

    /// A rule file could not be parsed or is inconsistent.
    #[error("rule set `{rule_set}`{}: {message}", indicator.as_ref().map(|i| format!(", indicator `{i}`")).unwrap_or_default())]
    Rule {
        /// The rule set name (or the file when the name is unknown).
        rule_set: String,
        /// The indicator at fault, if one.
        indicator: Option<String>,
        /// What is wrong.
        message: String,
    },

    /// `RuleSet::builtin` was asked for a name it does not know.
    #[error("unknown built-in rule set `{name}` (built-ins: {known})")]
    UnknownRuleSet {
        /// The name asked for.
        name: String,
        /// The known names, comma separated.
        known: String,
    },

    /// Loading a table failed in a validation plan (a damaged file, memory
    /// exhausted, …): the inner error with the table and its source named.
    #[error("loading table `{table}` ({source_name}): {inner}")]
    Load {
        /// The table.
        table: String,
        /// Where it came from (file path or `memory`).
        source_name: String,
        /// What failed.
        inner: Box<Error>,
    },

    /// A store folder that cannot be used: it is or lies inside a source
    /// folder (or holds it), or it is a folder that is not a tuopin store.
    /// Refused before anything is written.
    #[error("store {store}: {message}")]
    Store {
        /// The store folder asked for.
        store: PathBuf,
        /// Why it cannot be used (names the other path involved).
        message: String,
    },

    /// A SQL statement that may not run: a write without opting in, or
    /// one that would replace a name tuopin registered.
    #[error("SQL refused: {message} — in `{query}`")]
    ReadOnly {
        /// The query (its start).
        query: String,
        /// What was refused and how to allow it.
        message: String,
    },

    /// A year the registry has no household snapshot of.
    #[error("no household snapshot for {year}: the registry has {years}")]
    NoSnapshot {
        /// The year asked for.
        year: i32,
        /// The years the registry has, e.g. `2014, 2015, 2016`.
        years: String,
    },

    /// A third-party reader stopped on damaged data with a panic (the
    /// Parquet decoder asserts on some malformed pages): contained where
    /// tables are read and validated, and reported as this error — wrapped
    /// in [`Error::Load`] naming the table and file — instead of unwinding
    /// into the caller (`contain_panics`).
    #[error("the reader stopped on damaged data: {message}")]
    ReaderPanic {
        /// The panic's message.
        message: String,
    },

    /// A caller passed an argument the library cannot use.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// A query failed in DataFusion (bad SQL, planning or execution).
    #[error("query failed: {0}")]
    Query(#[from] DataFusionError),

    /// An Arrow kernel failed.
    #[error("arrow: {0}")]
    Arrow(#[from] ArrowError),

    /// A Parquet file could not be read or written.
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
}

impl Error {
    /// Build an [`Error::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// `self` naming the table and source it arose in (errors that already
    /// name them are kept as they are).
    pub fn in_table(self, table: &str, source_name: &str) -> Self {
        match self {
            e @ (Error::Schema { .. }
            | Error::Load { .. }
            | Error::MissingTable { .. }
            | Error::Io { .. }) => e,
            e => Error::Load {
                table: table.to_string(),
                source_name: source_name.to_string(),
                inner: Box::new(e),
            },
        }
    }

    /// Build an [`Error::Rule`].
    pub fn rule(rule_set: &str, indicator: Option<&str>, message: impl Into<String>) -> Self {
        Error::Rule {
            rule_set: rule_set.to_string(),
            indicator: indicator.map(str::to_string),
            message: message.into(),
        }
    }

    /// The broad class of the error, as mirrored by the Python exceptions:
    /// `data`, `rule` or `query`.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Load { inner, .. } => inner.kind(),
            Error::Io { .. }
            | Error::MissingTable { .. }
            | Error::Schema { .. }
            | Error::Store { .. }
            | Error::NoSnapshot { .. }
            | Error::ReaderPanic { .. } => ErrorKind::Data,
            Error::Parquet(_) | Error::Arrow(_) => ErrorKind::Data,
            Error::Rule { .. } | Error::UnknownRuleSet { .. } => ErrorKind::Rule,
            Error::InvalidArgument(_) | Error::Query(_) | Error::ReadOnly { .. } => {
                ErrorKind::Query
            }
        }
    }
}

/// Broad class of an [`Error`]; the Python exceptions `DataError`,
/// `RuleError` and `QueryError` follow it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Bad or unreadable input data.
    Data,
    /// A bad rule set.
    Rule,
    /// A failed query or a bad argument.
    Query,
}

/// Run `future`, turning a panic inside it into [`Error::ReaderPanic`].
///
/// Used around reading and validating a table: a damaged file can make a
/// third-party decoder panic (on a tokio worker; DataFusion resumes the
/// panic in the task that polls the plan), and a library must answer with
/// an error naming the file, not unwind into the caller's service.
pub(crate) async fn contain_panics<T>(
    future: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    use futures::FutureExt;
    let result = std::panic::AssertUnwindSafe(future)
        .catch_unwind()
        .await
        .unwrap_or_else(|payload| Err(Error::from_panic(payload.as_ref())));
    // Some DataFusion operators (the Parquet sink among them) report a
    // panicked task as an error instead of resuming the panic.
    match result {
        Err(e) => match panicked_task(&e) {
            Some(message) => Err(Error::ReaderPanic { message }),
            None => Err(e),
        },
        ok => ok,
    }
}

/// The message of a panicked tokio task somewhere in `e`'s source chain.
fn panicked_task(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut current = Some(e);
    while let Some(err) = current {
        // DataFusion's repartition shares the join error between its
        // outputs: an `Arc<JoinError>`.
        let join = err.downcast_ref::<tokio::task::JoinError>().or_else(|| {
            err.downcast_ref::<std::sync::Arc<tokio::task::JoinError>>()
                .map(|j| j.as_ref())
        });
        if let Some(join) = join.filter(|j| j.is_panic()) {
            return Some(join.to_string());
        }
        current = err.source();
    }
    None
}

impl Error {
    /// An [`Error::ReaderPanic`] from a panic's payload.
    pub(crate) fn from_panic(payload: &(dyn std::any::Any + Send)) -> Self {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_string());
        Error::ReaderPanic { message }
    }
}

/// `Result` with the core's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod panic_tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_panicked_task_deep_in_a_datafusion_error_is_a_reader_panic() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let join = rt.block_on(async {
            tokio::spawn(async { panic!("bit width 40") })
                .await
                .unwrap_err()
        });
        // The shape DataFusion's repartition reports it in.
        let df = DataFusionError::Shared(Arc::new(DataFusionError::Shared(Arc::new(
            DataFusionError::Context(
                "Join Error".into(),
                Box::new(DataFusionError::External(Box::new(Arc::new(join)))),
            ),
        ))));
        let e = rt
            .block_on(contain_panics(async { Err::<(), _>(Error::Query(df)) }))
            .unwrap_err();
        assert!(
            matches!(&e, Error::ReaderPanic { message } if message.contains("bit width 40")),
            "{e:?}"
        );
        // A panic unwinding out of the future, too.
        let e = rt
            .block_on(contain_panics(async {
                if e.kind() == ErrorKind::Data {
                    panic!("decoder assertion");
                }
                Ok(())
            }))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "the reader stopped on damaged data: decoder assertion"
        );
        // Other errors pass unchanged.
        let e = rt
            .block_on(contain_panics(async {
                Err::<(), _>(Error::InvalidArgument("x".into()))
            }))
            .unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)));
    }
}
