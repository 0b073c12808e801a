"""tuopin — analytics for targeted poverty-alleviation registries (精准扶贫).

A thin, typed layer over the Rust extension ``tuopin._tuopin``. Every
computation runs in the Rust core as Apache DataFusion plans; results come
back as ``pyarrow.Table`` through the Arrow C stream interface.

>>> import tuopin
>>> tables = tuopin.generate(households=2_000, seed=1)
>>> eng = tuopin.Engine(**tables)
>>> eng.evaluate("hebei-2016", year=2016).num_rows > 0
True
"""

from __future__ import annotations

import os
import warnings
from typing import Any, Sequence, Union

import pyarrow as pa

from . import _tuopin
from ._tuopin import DataError, QueryError, RuleError, TuopinError
from ._tuopin import RuleSet

__all__ = [
    "Engine",
    "RuleSet",
    "open",
    "generate",
    "export",
    "TuopinError",
    "DataError",
    "RuleError",
    "QueryError",
    "ArgumentError",
    "TuopinWarning",
    "TABLES",
    "LEVELS",
]

__version__: str = _tuopin.__version__

#: Tables of a dataset (DESIGN §2.2); ``regions`` and ``households`` are required.
TABLES = ("regions", "households", "members", "poverty_lines", "assistance", "funds", "assessments")
#: Levels accepted by ``metrics``, ``causes`` and ``transitions``.
LEVELS = ("province", "city", "county", "township", "village", "all")

RulesArg = Union[str, RuleSet, Sequence[Union[str, RuleSet]]]


class ArgumentError(QueryError, ValueError):
    """A bad argument, such as an unknown ``level``: a :class:`QueryError`
    and a :class:`ValueError`."""


class TuopinWarning(UserWarning):
    """Something to know about a result that is not an error, e.g. a year
    without a poverty line (its income indicators are unknown)."""


def _level(level: str) -> str:
    if level not in LEVELS:
        raise ArgumentError(f"unknown level {level!r} (expected one of {', '.join(LEVELS)})")
    return level


def _rule_set(rules: str | RuleSet) -> RuleSet:
    if isinstance(rules, RuleSet):
        return rules
    if isinstance(rules, str):
        return RuleSet.builtin(rules)
    raise TypeError(f"rules must be a built-in name or a RuleSet, not {type(rules).__name__}")


def _rule_sets(rules: RulesArg) -> list[RuleSet]:
    if isinstance(rules, (str, RuleSet)):
        return [_rule_set(rules)]
    return [_rule_set(r) for r in rules]


def _arrow_stream(name: str, obj: Any) -> Any:
    """Return an object exposing ``__arrow_c_stream__`` for table ``name``.

    Anything with ``__arrow_c_stream__`` (pyarrow, polars, DuckDB, pandas ≥
    2.2) is passed as is, without copying; an older pandas DataFrame goes
    through ``pyarrow.Table.from_pandas``.
    """
    if hasattr(obj, "__arrow_c_stream__"):
        return obj
    if hasattr(obj, "to_arrow"):  # e.g. older DuckDB relations
        return obj.to_arrow()
    try:
        import pandas as pd

        if isinstance(obj, pd.DataFrame):
            return pa.Table.from_pandas(obj, preserve_index=False)
    except ImportError:  # pragma: no cover - pandas is optional
        pass
    raise TypeError(
        f"table {name!r}: expected an Arrow-compatible object (with __arrow_c_stream__), "
        f"got {type(obj).__name__}"
    )


class Engine:
    """The analytics engine over one validated registry.

    Build it from in-memory tables (any object with ``__arrow_c_stream__``:
    pyarrow Table, polars DataFrame, pandas DataFrame, DuckDB relation)::

        eng = tuopin.Engine(regions=regions_df, households=households_df)

    or from a folder with :func:`open`. Rows that fail validation are left
    out of every computation and listed in :attr:`rejects`.
    """

    def __init__(
        self,
        households: Any = None,
        regions: Any = None,
        members: Any = None,
        poverty_lines: Any = None,
        assistance: Any = None,
        funds: Any = None,
        assessments: Any = None,
        *,
        memory_limit: int | None = None,
        partitions: int | None = None,
    ) -> None:
        given = {
            "households": households,
            "regions": regions,
            "members": members,
            "poverty_lines": poverty_lines,
            "assistance": assistance,
            "funds": funds,
            "assessments": assessments,
        }
        tables = {k: _arrow_stream(k, v) for k, v in given.items() if v is not None}
        self._inner = _tuopin.from_tables(tables, memory_limit, partitions)

    @classmethod
    def _wrap(cls, inner: _tuopin.Engine) -> "Engine":
        eng = cls.__new__(cls)
        eng._inner = inner
        return eng

    def _warn(self, year: int) -> None:
        for note in self._inner.notes(year):
            warnings.warn(note, TuopinWarning, stacklevel=3)

    def evaluate(self, rules: RulesArg, year: int) -> pa.Table:
        """Evaluate one rule set (a table with ``pass_<key>``, ``score``,
        ``failed``, ``vetoed_by``, ``unknown``, ``outcome``) or several in
        one pass (``score_<name>`` and ``outcome_<name>`` per rule set).

        A year without a household snapshot raises :class:`DataError`
        naming the registry's years."""
        out = self._inner.evaluate(_rule_sets(rules), year)
        self._warn(year)
        return out

    def audit(self, rules: str | RuleSet, year: int) -> pa.Table:
        """Procedure audit: one row per flag (``household_id``, ``year``,
        ``village_code``, ``flag``, ``detail``)."""
        out = self._inner.audit(_rule_set(rules), year)
        self._warn(year)
        return out

    def metrics(self, year: int, level: str) -> pa.Table:
        """Metrics per region at ``level`` (or ``"all"``), DESIGN §4."""
        out = self._inner.metrics(year, _level(level))
        self._warn(year)
        return out

    def causes(self, year: int, level: str) -> pa.Table:
        """Households, population and share by primary cause."""
        return self._inner.causes(year, _level(level))

    def transitions(self, year: int, level: str) -> pa.Table:
        """Newly identified, exited, returned and still-poor households
        against the previous year's snapshot."""
        return self._inner.transitions(year, _level(level))

    def mpi(
        self, rules: str | RuleSet, year: int, level: str, k: float | Sequence[float] = (1 / 3,)
    ) -> pa.Table:
        """The Alkire–Foster multidimensional poverty index (DESIGN §9) of a
        household rule set's indicators: one row per region and cut-off
        ``k`` with ``population``, ``excluded_households``, ``H``, ``A``,
        ``M0`` and ``uncensored_<key>``, ``censored_<key>``,
        ``contribution_<key>`` per indicator."""
        ks = [float(k)] if isinstance(k, (int, float)) else [float(x) for x in k]
        out = self._inner.mpi(_rule_set(rules), year, _level(level), ks)
        self._warn(year)
        return out

    def mpi_change(
        self, rules: str | RuleSet, from_year: int, to_year: int, level: str, k: float = 1 / 3
    ) -> pa.Table:
        """How ``H``, ``A`` and ``M0`` changed from ``from_year`` to
        ``to_year``: ``<m>_from``, ``<m>_to``, ``<m>_abs``, ``<m>_rel`` and
        ``<m>_ann`` (annualised) per region."""
        return self._inner.mpi_change(_rule_set(rules), from_year, to_year, _level(level), float(k))

    def quality(self, year: int) -> pa.Table:
        """The national system's consistency checks of ``year`` (DESIGN §8),
        as warnings — the rows stay in the dataset: ``table``, ``key`` (as
        in rejects), ``check`` (``exited_below_line``,
        ``illness_all_healthy``, ``duplicate_id_number`` …), ``detail``."""
        return self._inner.quality(year)

    def years(self) -> list[int]:
        """The registry's snapshot years."""
        return self._inner.years()

    def sql(self, query: str, allow_write: bool = False) -> pa.Table:
        """Run SQL over the tables, ``rejects`` and the facts views.

        Read-only unless ``allow_write=True`` (DDL, DML, ``COPY``, ``SET``);
        the names tuopin registers can never be replaced. A refused
        statement raises :class:`QueryError`.
        """
        return self._inner.sql(query, allow_write)

    @property
    def rejects(self) -> pa.Table:
        """The rejects ledger: ``table``, ``row``, ``key``, ``column``,
        ``problem``, ``file`` (the part of a table read from a folder of
        parts, else null)."""
        return self._inner.rejects()

    @property
    def summary(self) -> pa.Table:
        """Rows read, accepted and rejected per table, with the load's
        ``notes`` (e.g. an input column renamed because its name clashes
        with a derived one)."""
        rows = self._inner.summary()
        return pa.table(
            {
                "table": pa.array([r[0] for r in rows], pa.string()),
                "source": pa.array([r[1] for r in rows], pa.string()),
                "rows": pa.array([r[2] for r in rows], pa.int64()),
                "accepted": pa.array([r[3] for r in rows], pa.int64()),
                "rejected": pa.array([r[4] for r in rows], pa.int64()),
                "notes": pa.array([r[5] for r in rows], pa.list_(pa.string())),
            }
        )

    def __repr__(self) -> str:
        tables = ", ".join(f"{t}={a}" for t, _, _, a, _, _ in self._inner.summary())
        return f"tuopin.Engine({tables})"


def open(
    path: str,
    *,
    memory_limit: int | None = None,
    partitions: int | None = None,
    store: str | os.PathLike[str] | None = None,
    cache: bool = True,
    encoding: str | None = None,
    columns: str | os.PathLike[str] | None = None,
) -> Engine:
    """Load and validate the dataset folder ``path`` (one ``<table>.parquet``,
    ``.csv`` or ``.arrow`` file per table) — once: the validated tables and
    rejects are kept in the folder's default store (under ``$TUOPIN_CACHE``,
    else ``${XDG_CACHE_HOME:-~/.cache}/tuopin``) and reopened by the next
    ``open`` and every ``tuopin`` command while the source files are
    unchanged.

    ``store`` picks the store folder instead (never in or around the dataset
    folder); ``cache=False`` validates in memory and keeps nothing.
    ``memory_limit`` (bytes) bounds validation and every query; operators
    that can spill do so past it.

    Exports of the national system read as they are: CSV in UTF-8 (with or
    without BOM) or GB18030/GBK — detected, or forced with
    ``encoding="utf-8"`` / ``"gb18030"`` — with Chinese headers and labels
    (the built-in map ``crates/core/columns/zh.toml``; ``columns`` names a
    TOML file of the same form that adds to or overrides it)."""
    store_path = None if store is None else os.fspath(store)
    columns_path = None if columns is None else os.fspath(columns)
    return Engine._wrap(
        _tuopin.open(
            os.fspath(path), memory_limit, partitions, store_path, cache, encoding, columns_path
        )
    )


def generate(
    households: int = 10_000,
    seed: int = 2016,
    path: str | None = None,
    faults: float = 0.0,
    year: int | None = None,
) -> dict[str, pa.Table] | None:
    """Generate a deterministic Hebei-shaped registry (snapshots 2014–2020,
    or only ``year``). With ``path``, write Parquet files there and return
    None; otherwise return the tables, ready for ``tuopin.Engine(**tables)``.
    ``faults`` adds that share of deliberately faulty rows."""
    return _tuopin.generate(households, seed, None if path is None else os.fspath(path), faults, year)


def export(
    src: str | os.PathLike[str],
    out: str | os.PathLike[str],
    format: str = "csv",
    headers: str = "zh",
    encoding: str = "gb18030",
    part_rows: int = 1_000_000,
) -> list[str]:
    """Write the Parquet dataset ``src`` (as ``generate(path=…)`` writes it)
    the way the national system exports registries (DESIGN §8), into
    ``out``: ``format`` ``"csv"`` or ``"xlsx"`` (a table longer than
    ``part_rows`` becomes a folder of parts), ``headers`` ``"zh"`` (Chinese
    headers and labels, 是/否, 2016年12月31日) or ``"en"``, ``encoding``
    ``"gb18030"`` or ``"utf-8"`` for CSV. Returns the files written; open
    them with ``tuopin.open(out)``."""
    return _tuopin.export(os.fspath(src), os.fspath(out), format, headers, encoding, part_rows)
