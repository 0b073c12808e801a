"""W2–W4 through the Python package, to compare with the Rust figures of
`cargo bench --bench engine` (same data, same calls, same thread count).

Each call returns a pyarrow Table, so the figure includes handing the
result over through the Arrow C stream — everything a notebook user waits
for.

    python benches/python_overhead.py --households 1200000 --repeat 15
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import time

import tuopin

YEAR = 2016
ROOT = pathlib.Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--households", type=int, default=1_200_000)
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    d = ROOT / "bench-data" / f"h{args.households}-y{YEAR}"
    if not (d / "households.parquet").exists():
        tuopin.generate(households=args.households, seed=2016, path=str(d), year=YEAR)

    t0 = time.perf_counter()
    eng = tuopin.open(str(d))
    print(f"W1 load+validate (once): {time.perf_counter() - t0:.3f}s")
    hebei = tuopin.RuleSet.builtin("hebei-2016")
    variants = [hebei.with_pass_score(f"pass{p}", float(p)) for p in (60, 70, 80, 90)]
    variants.append(tuopin.RuleSet.builtin("national-2016"))
    work = [
        ("W2_evaluate_hebei", lambda: eng.evaluate(hebei, year=YEAR)),
        ("W3_metrics_all", lambda: eng.metrics(year=YEAR, level="all")),
        ("W4_evaluate_many_5", lambda: eng.evaluate(variants, year=YEAR)),
    ]
    for name, fn in work:
        fn()  # warm-up, like criterion's
        times = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            result = fn()
            times.append(time.perf_counter() - t)
        assert result.num_rows > 0, name
        print(f"h{args.households}/{name:<22} median {statistics.median(times) * 1000:8.1f} ms  "
              f"(min {min(times) * 1000:.1f}, max {max(times) * 1000:.1f}, n={args.repeat})")


if __name__ == "__main__":
    main()
