"""Zero-copy results, the GIL released during queries, Ctrl-C."""

from __future__ import annotations

import threading
import time

import pyarrow as pa

import tuopin


def test_million_row_result_is_not_copied() -> None:
    eng = tuopin.Engine(
        regions=pa.table({"code": ["130000000000"], "name": ["P"]}),
        households=pa.table(
            {
                "household_id": pa.array([], pa.string()),
                "year": pa.array([], pa.int32()),
                "village_code": pa.array([], pa.string()),
                "size": pa.array([], pa.int32()),
                "category": pa.array([], pa.string()),
                "status": pa.array([], pa.string()),
            }
        ),
    )
    pool = pa.default_memory_pool()
    before = pool.bytes_allocated()
    t = eng.sql("SELECT CAST(value AS BIGINT) AS v, CAST(value AS DOUBLE) * 0.5 AS w FROM generate_series(1, 1000000) AS t(value)")
    assert t.num_rows == 1_000_000
    assert t.nbytes >= 16_000_000
    # The 16 MB of column data live in Rust-allocated buffers imported
    # through the C stream interface: a copy into pyarrow's pool (what
    # converting through Python objects or `concat_tables` would do) shows
    # up here.
    assert pool.bytes_allocated() - before < 1_000_000
    # And the batches cross as DataFusion produced them: a copy on the Rust
    # side that concatenates them into one array (8 MB per column) would
    # leave a single chunk.
    assert t.column("v").num_chunks > 1
    assert max(len(c) for c in t.column("v").chunks) <= 65_536


def test_gil_is_released_during_a_long_query() -> None:
    eng = tuopin.Engine(**tuopin.generate(households=300, seed=1))
    ticks = []
    stop = threading.Event()

    def ticker() -> None:
        while not stop.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.005)

    th = threading.Thread(target=ticker)
    th.start()
    start = time.perf_counter()
    eng.sql(
        "SELECT count(DISTINCT (a.value * 7919 + b.value) % 10000019) AS n "
        "FROM generate_series(1, 5000) a, generate_series(1, 4000) b"
    )
    end = time.perf_counter()
    stop.set()
    th.join()
    during = [t for t in ticks if start < t < end]
    # The other thread kept running while the query ran.
    assert end - start > 0.05
    assert len(during) >= 5, (end - start, len(during))


def test_ctrl_c_interrupts_a_query_quickly() -> None:
    import signal

    import pytest

    eng = tuopin.Engine(**tuopin.generate(households=300, seed=1))
    timer = threading.Timer(0.5, lambda: signal.raise_signal(signal.SIGINT))
    timer.start()
    start = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        eng.sql("SELECT sum(a.value * b.value + c.value) AS s FROM generate_series(1, 3000) a, generate_series(1, 3000) b, generate_series(1, 3000) c")
    elapsed = time.perf_counter() - start
    timer.join()
    assert elapsed < 2.5, elapsed
    # The engine is still usable afterwards.
    assert eng.sql("SELECT 1 AS one").column("one")[0].as_py() == 1


def test_use_after_fork_is_a_clear_error() -> None:
    import os

    eng = tuopin.Engine(**tuopin.generate(households=100, seed=1))
    assert eng.sql("SELECT 1 AS one").num_rows == 1  # runtime started here
    pid = os.fork()
    if pid == 0:  # child: must raise, not hang
        try:
            eng.sql("SELECT 1 AS one")
            os._exit(1)
        except tuopin.TuopinError as e:
            os._exit(0 if "fork" in str(e) else 2)
        except BaseException:
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
