#!/usr/bin/env bash
# Runs every test of the project: Rust (unit, integration, CLI, doc tests)
# and Python (pytest, including the notebook run). Installs what the Python
# tests need into .venv from the pinned requirements-dev.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

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
