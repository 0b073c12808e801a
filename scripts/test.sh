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

# Each step's header shows the free disk space: a full disk shows up in the
# log as a number, not as a linker's bus error.
free_disk() { df -Ph . | awk 'NR == 2 { print $4 " free" }'; }

echo "== cargo fmt --check [${SECONDS}s, $(free_disk)]"
cargo fmt --all -- --check

echo "== cargo clippy [${SECONDS}s, $(free_disk)]"
cargo clippy --workspace --all-targets -- -D warnings

echo "== Rust tests [${SECONDS}s, $(free_disk)]"
cargo test --workspace --exclude tuopin-py

echo "== Python environment (.venv) [${SECONDS}s, $(free_disk)]"
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
VIRTUAL_ENV="$PWD/.venv" PATH="$PWD/.venv/bin:$PATH" .venv/bin/maturin develop

echo "== Python types (mypy --strict, stubtest) [${SECONDS}s, $(free_disk)]"
.venv/bin/mypy --strict python/tuopin
.venv/bin/python -m mypy.stubtest tuopin._tuopin

echo "== Browser for the dashboard tests (Debian's chromium, a CJK font) [${SECONDS}s, $(free_disk)]"
if [ ! -x /usr/bin/chromium ] || ! fc-list 2>/dev/null | grep -qi "Noto Sans CJK"; then
    SUDO=""
    [ "$(id -u)" = "0" ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        chromium fonts-noto-cjk fontconfig >/dev/null
fi

echo "== Python tests [${SECONDS}s, $(free_disk)]"
.venv/bin/python -m pytest tests/python -q

# Each fuzz target for a minute (TUOPIN_FUZZ_SECONDS=0 skips; RELIABILITY.md).
if [ "${TUOPIN_FUZZ_SECONDS:-60}" != "0" ]; then
    # On a CI machine (.ci/run) the debug build is no longer needed: free its
    # disk before the instrumented fuzz build needs as much again.
    if [ "${TUOPIN_CI_FREE_DISK:-0}" = "1" ]; then
        rm -rf target/debug
    fi
    echo "== Fuzz targets [${SECONDS}s, $(free_disk)]"
    bash scripts/fuzz.sh "${TUOPIN_FUZZ_SECONDS:-60}"
fi
echo "== all tests passed [${SECONDS}s, $(free_disk)]"
