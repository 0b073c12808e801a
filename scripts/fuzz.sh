#!/usr/bin/env bash
# Runs every fuzz target (cargo-fuzz / libFuzzer) for SECONDS each
# (default 60) over the corpus in fuzz/corpus, which grows as new inputs
# are found. Installs cargo-fuzz when it is missing. A crash fails the run
# and leaves its input under fuzz/artifacts/<target>/.
#
#   bash scripts/fuzz.sh          # about a minute per target (CI)
#   bash scripts/fuzz.sh 3600     # an hour per target
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET="${1:-60}"
CARGO_FUZZ_VERSION=0.13.2

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz ${CARGO_FUZZ_VERSION}"
    cargo install cargo-fuzz --version "${CARGO_FUZZ_VERSION}" --locked
fi

# The stable toolchain: no sanitizer (libFuzzer's coverage instrumentation
# uses stable -C flags only); debug assertions and overflow checks are on.
# One build for every target.
export RUSTC_BOOTSTRAP=1
echo "== building fuzz targets"
cargo fuzz build --sanitizer none --dev

for target in codes rules_toml load_csv load_parquet; do
    echo "== fuzzing ${target} for ${SECONDS_PER_TARGET} s"
    mkdir -p "fuzz/corpus/${target}"
    cargo fuzz run --sanitizer none --dev "${target}" "fuzz/corpus/${target}" -- \
        -max_total_time="${SECONDS_PER_TARGET}" -seed="${TUOPIN_FUZZ_SEED:-1}" -rss_limit_mb=4096 -timeout=30 \
        -print_final_stats=1 2>&1 | grep -E "^(#|==|stat::|INFO: (Loaded|seed))|Done|ERROR|panicked" | tail -n 12
done
