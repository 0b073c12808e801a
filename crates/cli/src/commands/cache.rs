//! `tuopin cache`: the stores that keep validated datasets (DESIGN §7).

use std::path::PathBuf;

use tuopin::io::cache;

use crate::context::Failure;

/// What to do with the stores.
#[derive(clap::Subcommand, Debug)]
pub enum Action {
    /// List the stores under the cache root with their dataset, size and
    /// status (current, stale, orphaned, incomplete).
    List,
    /// Remove the store of dataset folder DIR, or every store.
    Clear {
        /// Dataset folder whose default store to remove (default: all).
        dir: Option<PathBuf>,
    },
}

/// Run a cache action.
pub fn run(action: &Action) -> Result<u8, Failure> {
    let Some(root) = cache::root() else {
        say!("no cache root: set TUOPIN_CACHE, XDG_CACHE_HOME or HOME");
        return Ok(0);
    };
    match action {
        Action::List => {
            let stores = cache::list()?;
            say!("cache root: {} ({} stores)", root.display(), stores.len());
            for s in &stores {
                say!(
                    "{:<10} {:>9.1} MB  {}  ← {}",
                    s.status,
                    s.bytes as f64 / 1e6,
                    s.path.display(),
                    if s.dataset.is_empty() {
                        "?"
                    } else {
                        &s.dataset
                    }
                );
            }
        }
        Action::Clear { dir } => {
            let removed = cache::clear(dir.as_deref())?;
            say!("removed {} stores from {}", removed.len(), root.display());
        }
    }
    Ok(0)
}
