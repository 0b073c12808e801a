//! The default store of a dataset folder (DESIGN §7): validated once,
//! reopened by every later command, `tuopin.open` and [`Dataset::open`].
//!
//! Each dataset folder gets its own store under the cache root —
//! `$TUOPIN_CACHE`, else `$XDG_CACHE_HOME/tuopin`, else
//! `~/.cache/tuopin` — named `<folder name>-<hash of its canonical
//! path>`, so the same folder always finds its store and two folders
//! never share one. The store itself (`io::store`) records the
//! sources' paths, sizes and modification times and the tuopin version;
//! any change validates again.
//!
//! ```no_run
//! # fn run() -> tuopin::Result<()> {
//! use tuopin::io::cache;
//! for store in cache::list()? {
//!     println!("{} ← {} ({})", store.path.display(), store.dataset, store.status);
//! }
//! cache::clear(None)?; // every store under the cache root
//! # Ok(()) }
//! ```
//!
//! [`Dataset::open`]: crate::Dataset::open

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::io::store;

/// Environment variable naming the cache root.
pub const CACHE_ENV: &str = "TUOPIN_CACHE";

/// The folder that holds the default stores: `$TUOPIN_CACHE`, else
/// `$XDG_CACHE_HOME/tuopin`, else `$HOME/.cache/tuopin`; `None` when none
/// of them is set (then datasets are validated in memory).
pub fn root() -> Option<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(root) = var(CACHE_ENV) {
        return Some(PathBuf::from(root));
    }
    if let Some(xdg) = var("XDG_CACHE_HOME") {
        return Some(PathBuf::from(xdg).join("tuopin"));
    }
    var("HOME").map(|home| PathBuf::from(home).join(".cache").join("tuopin"))
}

/// The default store of dataset folder `dir` (which must exist), or
/// `None` without a cache root.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let a = tuopin::io::cache::default_store(dir.path()).unwrap();
/// let b = tuopin::io::cache::default_store(&dir.path().join(".")).unwrap();
/// assert_eq!(a, b); // the canonical path decides
/// ```
pub fn default_store(dir: &Path) -> Result<Option<PathBuf>> {
    let Some(root) = root() else {
        return Ok(None);
    };
    Ok(Some(root.join(key(dir)?)))
}

/// `<folder name>-<16 hex digits>`: FNV-1a (64 bit) of the canonical
/// path — stable across builds and platforms, unlike std's hasher.
fn key(dir: &Path) -> Result<String> {
    let canonical = std::fs::canonicalize(dir).map_err(|e| Error::io(dir, e))?;
    let hash = fnv1a(canonical.to_string_lossy().as_bytes());
    let name: String = canonical
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "root".into())
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    Ok(format!("{name}-{hash:016x}"))
}

/// FNV-1a, 64 bit.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// One store found under the cache root.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedStore {
    /// The store folder.
    pub path: PathBuf,
    /// The dataset folder it was validated from (empty when unknown).
    pub dataset: String,
    /// tuopin version that wrote it.
    pub version: String,
    /// Bytes on disk.
    pub bytes: u64,
    /// `current` (reused by the next open), `stale` (a source changed or
    /// another tuopin version wrote it: validated again on the next open),
    /// `orphaned` (its sources are gone) or `incomplete` (no manifest).
    pub status: &'static str,
}

/// Every store under the cache root, by path (empty without a root).
pub fn list() -> Result<Vec<CachedStore>> {
    let Some(root) = root() else {
        return Ok(Vec::new());
    };
    let Ok(entries) = std::fs::read_dir(&root) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| Error::io(&root, e))?.path();
        if !path.is_dir() || !store::is_store(&path) {
            continue;
        }
        let bytes = folder_bytes(&path);
        let (dataset, version, status) = match store::describe(&path) {
            Some(d) => (d.dataset, d.version, d.status),
            None => (String::new(), String::new(), "incomplete"),
        };
        out.push(CachedStore {
            path,
            dataset,
            version,
            bytes,
            status,
        });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// Remove the default store of dataset folder `dataset`, or with `None`
/// every store under the cache root (and builds left by interrupted runs).
/// Only tuopin stores are removed. Returns the folders removed.
pub fn clear(dataset: Option<&Path>) -> Result<Vec<PathBuf>> {
    let Some(root) = root() else {
        return Ok(Vec::new());
    };
    let targets: Vec<PathBuf> = match dataset {
        Some(dir) => vec![root.join(key(dir)?)],
        None => match std::fs::read_dir(&root) {
            Ok(entries) => entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_dir())
                .collect(),
            Err(_) => Vec::new(),
        },
    };
    let mut removed = Vec::new();
    for path in targets {
        if path.is_dir() && (store::is_store(&path) || is_left_build(&path)) {
            match std::fs::remove_dir_all(&path) {
                Ok(()) => removed.push(path),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(&path, e)),
            }
        }
    }
    Ok(removed)
}

/// A temporary build folder (`.<name>.tmp-<pid>-<stamp>`) older than an
/// hour: left by an interrupted run (a younger one may still be written).
fn is_left_build(path: &Path) -> bool {
    let hidden_tmp = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .is_some_and(|n| n.starts_with('.') && n.contains(".tmp-"));
    let old = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age.as_secs() > 3600);
    hidden_tmp && old
}

/// Total size of the files in `path` (one level: stores are flat).
fn folder_bytes(path: &Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_names_the_folder_and_hashes_its_canonical_path() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("河北 2016");
        std::fs::create_dir(&sub).unwrap();
        let k = key(&sub).unwrap();
        assert!(k.starts_with("河北_2016-"), "{k}");
        assert_eq!(k.len(), "河北_2016-".len() + 16);
        assert_eq!(key(&sub.join("..").join("河北 2016")).unwrap(), k);
        let other = dir.path().join("other");
        std::fs::create_dir(&other).unwrap();
        assert_ne!(key(&other).unwrap(), k);
        assert!(key(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn fnv1a_matches_its_reference_value() {
        // FNV-1a 64 of "a" is 0xaf63dc4c8601ec8c (the published test vector).
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
    }
}
