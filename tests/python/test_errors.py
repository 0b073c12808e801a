"""Typed exceptions with the core's detail."""

from __future__ import annotations

import pyarrow as pa
import pytest

import tuopin


def test_hierarchy() -> None:
    for cls in (tuopin.DataError, tuopin.RuleError, tuopin.QueryError):
        assert issubclass(cls, tuopin.TuopinError)
    assert issubclass(tuopin.TuopinError, Exception)


def test_data_error_names_file_and_column(tmp_path) -> None:
    (tmp_path / "regions.csv").write_text("code,name\n130000000000,P\n")
    (tmp_path / "households.csv").write_text("household_id,year\nh1,2016\n")
    with pytest.raises(tuopin.DataError) as e:
        tuopin.open(str(tmp_path))
    assert "households" in str(e.value) and "households.csv" in str(e.value) and "column `village_code`" in str(e.value)
    with pytest.raises(tuopin.DataError, match="not found"):
        tuopin.open(str(tmp_path / "missing"))
    with pytest.raises(tuopin.DataError, match="required table `households`"):
        tuopin.Engine(regions=pa.table({"code": ["130000000000"], "name": ["P"]}))


def test_rule_errors(eng: tuopin.Engine) -> None:
    with pytest.raises(tuopin.RuleError, match="did you mean `safe_water`"):
        bad = tuopin.RuleSet.from_toml('name = "b"\nunit = "household"\n[[indicator]]\nkey = "w"\nwhen = "safe_watr"\n')
        eng.evaluate(bad, year=2016)
    with pytest.raises(tuopin.RuleError, match="invalid TOML"):
        tuopin.RuleSet.from_toml("not toml at all")
    with pytest.raises(tuopin.RuleError, match="duplicate indicator key"):
        tuopin.RuleSet.from_toml('name = "d"\nunit = "household"\n[[indicator]]\nkey = "a"\nwhen = "true"\n[[indicator]]\nkey = "a"\nwhen = "true"\n')
    with pytest.raises(tuopin.RuleError, match="unknown built-in rule set"):
        tuopin.RuleSet.builtin("nope")


def test_query_errors(eng: tuopin.Engine) -> None:
    with pytest.raises(tuopin.QueryError, match="no_such_table"):
        eng.sql("SELECT * FROM no_such_table")
    with pytest.raises(tuopin.QueryError):
        eng.sql("SELEC 1")
    with pytest.raises(tuopin.QueryError, match="unknown level"):
        eng.metrics(year=2016, level="district")
    with pytest.raises(TypeError):
        eng.evaluate(42, year=2016)  # type: ignore[arg-type]


def test_memory_limit_option(data_dir, eng: tuopin.Engine) -> None:
    # A limit the query fits in gives the same result as no limit ...
    limited = tuopin.open(str(data_dir), memory_limit=64 << 20)
    assert limited.metrics(2016, "all").equals(eng.metrics(2016, "all"))
    # ... one it cannot fit in raises QueryError naming the exhausted pool
    # (the limit bounds validation too, so here already while validating;
    # cache=False, since the default store would be reopened, not validated).
    with pytest.raises(tuopin.QueryError, match="Resources exhausted"):
        tuopin.open(str(data_dir), memory_limit=16 << 10, cache=False)


def test_store_option_keeps_tables_on_disk(data_dir, tmp_path) -> None:
    # A disk-backed engine answers exactly as the in-memory one ...
    eng = tuopin.open(data_dir, cache=False)
    stored = tuopin.open(data_dir, store=tmp_path / "store", memory_limit=64 << 20)
    for query in [
        "SELECT * FROM households ORDER BY household_id, year",
        "SELECT * FROM rejects ORDER BY \"table\", \"row\", \"column\"",
    ]:
        assert stored.sql(query).equals(eng.sql(query))
    key = ["level", "code"]
    assert stored.metrics(2016, "all").sort_by([(k, "ascending") for k in key]).equals(
        eng.metrics(2016, "all").sort_by([(k, "ascending") for k in key])
    )
    # ... with the validated tables written to the store folder.
    assert (tmp_path / "store" / "households.parquet").is_file()
    assert stored.summary.equals(eng.summary)


def test_open_validates_once_into_the_default_store(data_dir, tmp_path, monkeypatch) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("TUOPIN_CACHE", str(cache))
    first = tuopin.open(data_dir)
    stores = [p for p in cache.iterdir() if not p.name.startswith(".")]
    assert len(stores) == 1, stores
    manifest = stores[0] / "tuopin-store.toml"
    assert str(data_dir.resolve()) in manifest.read_text(encoding="utf-8")
    written = manifest.stat().st_mtime_ns
    # The next open reopens the store (nothing is written again) ...
    second = tuopin.open(data_dir)
    assert manifest.stat().st_mtime_ns == written
    # ... and all three answer the same; cache=False keeps nothing.
    in_memory = tuopin.open(data_dir, cache=False)
    query = "SELECT * FROM households ORDER BY household_id, year"
    assert first.sql(query).equals(in_memory.sql(query))
    assert second.sql(query).equals(in_memory.sql(query))
    assert second.summary.equals(in_memory.summary)
    assert len([p for p in cache.iterdir() if not p.name.startswith(".")]) == 1
