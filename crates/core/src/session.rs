//! DataFusion sessions as tuopin makes them: text stays `Utf8`, an
//! optional greedy memory pool that names its largest consumers, and every
//! tuopin function registered ([`crate::functions`]). Validation and the
//! [`crate::Engine`] both start from [`context`].

use std::sync::Arc;

use datafusion::execution::memory_pool::{GreedyMemoryPool, TrackConsumersPool};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::error::Result;
use crate::functions;

/// A session with `config`, an optional memory `limit` in bytes, and every
/// tuopin function registered.
pub(crate) fn context(config: SessionConfig, limit: Option<usize>) -> Result<SessionContext> {
    let ctx = SessionContext::new_with_config_rt(config, runtime_env(limit)?);
    functions::register_all(&ctx);
    Ok(ctx)
}

/// Session settings shared by every tuopin session: text stays `Utf8` (the
/// declared type) rather than DataFusion's default `Utf8View` for
/// `VARCHAR`, so results have the types of DESIGN §2.2.
///
/// Filters are evaluated inside Parquet scans (`pushdown_filters`): a
/// store's tables are read through them, and a scan then decodes the
/// filter's columns first and the others only for the rows kept — a
/// household's rows are found in a 630 MB members file in ~60 ms instead of
/// ~200 ms, and a year's evaluation over a store takes 0.41–0.50 s instead
/// of 0.67–0.80 s (BENCHMARKS.md). `reorder_filters` stays off.
///
/// Any other DataFusion option can be set from the environment with its
/// `DATAFUSION_*` variable (e.g. `DATAFUSION_OPTIMIZER_PREFER_HASH_JOIN`);
/// an unreadable value is ignored in favour of the defaults. A variable
/// wins over the settings above.
pub(crate) fn base_config() -> SessionConfig {
    let mut config = SessionConfig::from_env().unwrap_or_default();
    for (key, value) in [
        ("datafusion.sql_parser.map_string_types_to_utf8view", false),
        (
            "datafusion.execution.parquet.schema_force_view_types",
            false,
        ),
        ("datafusion.execution.parquet.pushdown_filters", true),
    ] {
        if std::env::var_os(env_name(key)).is_none() {
            config = config.set_bool(key, value);
        }
    }
    config
}

/// The environment variable DataFusion reads `key` from
/// (`datafusion.execution.batch_size` → `DATAFUSION_EXECUTION_BATCH_SIZE`).
fn env_name(key: &str) -> String {
    key.to_uppercase().replace('.', "_")
}

/// The runtime of a session: with a memory `limit`, a greedy (first come,
/// first served) pool rather than fair shares — a metrics plan holds ~20
/// spillable operators at once, and fair shares starved the one big
/// aggregation long before the limit was used. The tracking wrapper names
/// the top consumers in the "resources exhausted" error.
pub(crate) fn runtime_env(limit: Option<usize>) -> Result<Arc<RuntimeEnv>> {
    let mut runtime = RuntimeEnvBuilder::new();
    if let Some(limit) = limit {
        let greedy = GreedyMemoryPool::new(limit);
        runtime = runtime.with_memory_pool(Arc::new(TrackConsumersPool::new(
            greedy,
            TOP_CONSUMERS_IN_ERRORS,
        )));
    }
    Ok(runtime.build_arc()?)
}

/// How many of the largest memory consumers a "resources exhausted" error
/// names.
const TOP_CONSUMERS_IN_ERRORS: std::num::NonZeroUsize = match std::num::NonZeroUsize::new(3) {
    Some(n) => n,
    None => std::num::NonZeroUsize::MIN,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_setting_is_read_from_the_variable_datafusion_names() {
        assert_eq!(
            env_name("datafusion.execution.parquet.pushdown_filters"),
            "DATAFUSION_EXECUTION_PARQUET_PUSHDOWN_FILTERS"
        );
    }

    #[test]
    fn sessions_filter_inside_parquet_scans_and_keep_text_as_utf8() {
        let config = base_config();
        let options = config.options();
        // The test environment sets none of these variables.
        assert!(options.execution.parquet.pushdown_filters);
        assert!(!options.execution.parquet.reorder_filters);
        assert!(!options.execution.parquet.schema_force_view_types);
        assert!(!options.sql_parser.map_string_types_to_utf8view);
    }
}
