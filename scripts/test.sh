#!/usr/bin/env bash
# Runs every test of the project: formatting and clippy, Rust (unit,
# integration, CLI, doc tests, properties), Python (types, pytest including
# the notebook run) and each fuzz target for a minute. Installs what the Python
# tests need into .venv from the pinned requirements-dev.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

# Every dataset a test opens keeps a store (DESIGN §7): keep them in a
# temporary cache root, not the user's ~/.cache/tuopin.
TUOPIN_CACHE="$(mktemp -d -t tuopin-test-cache.XXXXXX)"
export TUOPIN_CACHE
trap 'rm -rf "$TUOPIN_CACHE"' EXIT

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

echo "== Rust tests"
cargo test --workspace --exclude tuopin-py

echo "== Python environment (.venv)"
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
VIRTUAL_ENV="$PWD/.venv" PATH="$PWD/.venv/bin:$PATH" .venv/bin/maturin develop

echo "== Python types (mypy --strict, stubtest)"
.venv/bin/mypy --strict python/tuopin
.venv/bin/python -m mypy.stubtest tuopin._tuopin

echo "== Python tests"
.venv/bin/python -m pytest tests/python -q

# Each fuzz target for a minute (TUOPIN_FUZZ_SECONDS=0 skips; RELIABILITY.md).
if [ "${TUOPIN_FUZZ_SECONDS:-60}" != "0" ]; then
    echo "== Fuzz targets"
    bash scripts/fuzz.sh "${TUOPIN_FUZZ_SECONDS:-60}"
fi
