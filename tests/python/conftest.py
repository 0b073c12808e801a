"""Shared fixtures: one generated province, as Parquet files and in memory."""

from __future__ import annotations

import pathlib

import pytest

import tuopin


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    path = tmp_path_factory.mktemp("province")
    assert tuopin.generate(households=3000, seed=7, path=str(path)) is None
    return path


@pytest.fixture(scope="session")
def tables() -> dict:
    return tuopin.generate(households=3000, seed=7)


@pytest.fixture(scope="session")
def eng(data_dir: pathlib.Path) -> tuopin.Engine:
    return tuopin.open(str(data_dir))


@pytest.fixture(scope="session")
def cli() -> pathlib.Path:
    root = pathlib.Path(__file__).resolve().parents[2]
    exe = root / "target" / "debug" / "tuopin"
    assert exe.exists(), "the tuopin CLI is built by `cargo test` before the Python tests"
    return exe
