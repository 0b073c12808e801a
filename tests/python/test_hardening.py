"""Hardening seen from Python: read-only SQL, arguments, years outside the
data, blank text from every input library (RELIABILITY.md)."""

from __future__ import annotations

import warnings

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import tuopin


def test_sql_is_read_only_unless_allowed(eng: tuopin.Engine, tmp_path) -> None:
    target = tmp_path / "x.csv"
    copy = f"COPY (SELECT household_id FROM households) TO '{target}' STORED AS CSV"
    with pytest.raises(tuopin.QueryError, match="read-only"):
        eng.sql(copy)
    assert not target.exists()
    with pytest.raises(tuopin.QueryError, match="read-only"):
        eng.sql("DROP VIEW household_facts")
    eng.sql(copy, allow_write=True)
    assert target.exists()
    with pytest.raises(tuopin.QueryError, match="registered by tuopin"):
        eng.sql("CREATE OR REPLACE VIEW household_facts AS SELECT 1 AS x", allow_write=True)


def test_a_bad_level_is_a_value_error(eng: tuopin.Engine) -> None:
    with pytest.raises(ValueError, match="unknown level 'district'"):
        eng.metrics(year=2016, level="district")
    with pytest.raises(tuopin.QueryError):
        eng.causes(year=2016, level="nation")
    assert issubclass(tuopin.ArgumentError, tuopin.TuopinError)


def test_year_and_level_have_no_silent_defaults(eng: tuopin.Engine) -> None:
    with pytest.raises(TypeError):
        eng.metrics()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        eng.evaluate("hebei-2016")  # type: ignore[call-arg]


def test_a_year_outside_the_registry_is_a_data_error(eng: tuopin.Engine) -> None:
    assert eng.years() == list(range(2014, 2021))
    with pytest.raises(tuopin.DataError, match="no household snapshot for 2030.*2014–2020"):
        eng.metrics(year=2030, level="city")
    with pytest.raises(tuopin.DataError, match="2030"):
        eng.evaluate("hebei-2016", year=2030)


def test_a_year_without_a_poverty_line_warns() -> None:
    tables = tuopin.generate(households=300, seed=2)
    assert tables is not None
    lines = pa.table({"year": pa.array([2016], pa.int32()), "poverty_line": [2952.0]})
    eng = tuopin.Engine(**{**tables, "poverty_lines": lines})
    with pytest.warns(tuopin.TuopinWarning, match="no poverty line for 2015"):
        eng.metrics(year=2015, level="city")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        eng.metrics(year=2016, level="city")


REGIONS = pa.table(
    {
        "code": ["130000000000", "130100000000", "130102000000", "130102001000", "130102001001"],
        "name": ["P", "C", "D", "T", "V"],
        "rural_population": pa.array([None, None, None, None, 100], pa.int64()),
    }
)


def _households(ids: list[str]) -> pa.Table:
    n = len(ids)
    return pa.table(
        {
            "household_id": ids,
            "year": pa.array([2016] * n, pa.int32()),
            "village_code": ["130102001001"] * n,
            "size": pa.array([2] * n, pa.int32()),
            "category": ["general"] * n,
            "status": ["poor"] * n,
            "note": ["", "  ", "kept"][:n],
        }
    )


@pytest.mark.parametrize("library", ["pyarrow", "polars", "pandas"])
def test_blank_text_is_null_whatever_library(library: str) -> None:
    hh = _households(["", "   ", "H3"])
    given = {"pyarrow": hh, "polars": pl.from_arrow(hh), "pandas": hh.to_pandas()}[library]
    eng = tuopin.Engine(regions=REGIONS, households=given)
    rejects = eng.rejects.to_pylist()
    assert [(r["row"], r["column"], r["problem"]) for r in rejects] == [
        (1, "household_id", "missing value"),
        (2, "household_id", "missing value"),
    ]
    assert eng.sql("SELECT note FROM households").column("note").to_pylist() == ["kept"]


def test_clashing_input_columns_are_renamed_with_a_note() -> None:
    hh = _households(["H1", "H2"]).append_column("net_income", pa.array([1.0, 2.0]))
    eng = tuopin.Engine(regions=REGIONS, households=pd.DataFrame(hh.to_pandas()))
    notes = {r["table"]: r["notes"] for r in eng.summary.to_pylist()}
    assert any("source_net_income" in n for n in notes["households"])
    facts = eng.sql("SELECT source_net_income FROM household_facts ORDER BY household_id")
    assert facts.column(0).to_pylist() == [1.0, 2.0]
