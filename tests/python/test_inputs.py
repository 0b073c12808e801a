"""Inputs from pyarrow, polars and pandas give identical results."""

from __future__ import annotations

import pandas as pd
import polars as pl
import pyarrow as pa

import tuopin


def _results(eng: tuopin.Engine) -> list:
    ev = eng.evaluate("hebei-2016", year=2016).sort_by("household_id")
    m = eng.metrics(year=2016, level="county")
    return [ev.to_pylist(), m.to_pylist()]


def test_pyarrow_polars_pandas_identical() -> None:
    tables = tuopin.generate(households=800, seed=5)
    base = _results(tuopin.Engine(**tables))
    from_polars = tuopin.Engine(**{k: pl.from_arrow(v) for k, v in tables.items()})
    assert _results(from_polars) == base
    from_pandas = tuopin.Engine(**{k: v.to_pandas() for k, v in tables.items()})
    assert _results(from_pandas) == base
    # A reader (stream) works too.
    from_reader = tuopin.Engine(**{k: pa.RecordBatchReader.from_batches(v.schema, v.to_batches()) for k, v in tables.items()})
    assert _results(from_reader) == base


def test_pandas_with_text_columns_is_typed() -> None:
    regions = pd.DataFrame(
        {
            "code": ["130000000000", "130100000000", "130102000000", "130102001000", "130102001001"],
            "name": ["P", "C", "D", "T", "V"],
            "rural_population": [None, None, None, None, 100],
        }
    )
    households = pd.DataFrame(
        {
            "household_id": ["h1", "h2"],
            "year": [2016, 2016],
            "village_code": ["130102001001", "130102001001"],
            "size": ["2", "x"],  # text: one readable, one not
            "category": ["general", "general"],
            "status": ["poor", "poor"],
        }
    )
    eng = tuopin.Engine(regions=regions, households=households)
    rej = eng.rejects.to_pylist()
    assert len(rej) == 1
    assert rej[0]["key"] == "h2/2016" and rej[0]["column"] == "size" and "cannot read 'x'" in rej[0]["problem"]
    m = eng.metrics(year=2016, level="village").to_pylist()
    assert m[0]["registered_population"] == 2
    assert abs(m[0]["poverty_incidence"] - 0.02) < 1e-12


def test_duckdb_relation_input() -> None:
    import duckdb

    tables = tuopin.generate(households=300, seed=6)
    con = duckdb.connect()
    regions = tables["regions"]
    households = tables["households"]
    con.register("r", regions)
    con.register("h", households)
    eng = tuopin.Engine(regions=con.sql("SELECT * FROM r"), households=con.sql("SELECT * FROM h"))
    base = tuopin.Engine(regions=regions, households=households)
    a = eng.metrics(year=2016, level="city").to_pylist()
    b = base.metrics(year=2016, level="city").to_pylist()
    assert a == b
