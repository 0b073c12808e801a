//! Host package of the tuopin workspace's cross-crate integration tests
//! (`tests/`) and criterion benchmarks (`benches/`). The library itself is
//! the `tuopin` crate in `crates/core`.
