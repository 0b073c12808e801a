"""Dashboard benchmark (issue #17, DESIGN §10): page and API latency after
the one-time load, and 20 concurrent clients for a minute.

Starts ``tuopin serve`` (release build) on a dataset, waits until it
listens (the one-time load: validation or store reopen, and every year's
metrics), then

1. times each page and API call of a drill-down (province, a city, a county,
   a township, a village, a household, compare, quality, the three API
   calls) ``--repeat`` times each after one warm-up request per URL, and
   prints the median and the maximum;
2. runs ``--clients`` threads requesting those URLs round-robin for
   ``--seconds`` and reports requests, errors, the latency median / p95 /
   max, and the server's resident memory (sampled from /proc) at the start
   and the end.

Latency is measured by the client on 127.0.0.1, so it is an upper bound of
the server time.

    .venv/bin/python benches/dashboard.py --data bench-data/h1200000 \\
        --bin /work/tb/release/tuopin --repeat 7 --clients 20 --seconds 60
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import socket
import statistics
import subprocess
import threading
import time
import urllib.error
import urllib.request


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fetch(url: str) -> tuple[int, bytes, float]:
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=120) as r:
            body = r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        body, status = e.read(), e.code
    return status, body, time.perf_counter() - started


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def first_code(base: str, year: int, level: str, parent: str | None) -> str:
    q = f"{base}/api/metrics?year={year}&level={level}&format=csv"
    if parent:
        q += f"&parent={parent}"
    status, body, _ = fetch(q)
    assert status == 200, body[:200]
    rows = list(csv.DictReader(io.StringIO(body.decode())))
    rows = [r for r in rows if r["registered_households"] not in ("", "0")]
    rows.sort(key=lambda r: -float(r["poverty_incidence"] or 0))
    return rows[0]["code"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--bin", default="target/release/tuopin")
    ap.add_argument("--year", type=int, default=2016)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=60)
    args = ap.parse_args()

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    proc = subprocess.Popen(
        [args.bin, "serve", args.data, "--bind", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        while True:
            try:
                if fetch(f"{base}/healthz")[0] == 200:
                    break
            except OSError:
                if proc.poll() is not None:
                    raise SystemExit(proc.stderr.read().decode() if proc.stderr else "serve exited")
                time.sleep(0.2)
        print(f"one-time load (serve start to listening): {time.perf_counter() - started:.1f} s, "
              f"RSS {rss_mb(proc.pid):.0f} MB")

        y = args.year
        status, body, _ = fetch(f"{base}/")
        province = first_code(base, y, "province", None)
        city = first_code(base, y, "city", province)
        county = first_code(base, y, "county", city)
        township = first_code(base, y, "township", county)
        village = first_code(base, y, "village", township)
        status, body, _ = fetch(f"{base}/api/evaluate?year={y}&rules=hebei-2016&village={village}")
        household = body.decode().split('"household_id":"', 1)[1].split('"', 1)[0]
        urls = {
            "province page": f"/region/{province}?year={y}",
            "city page": f"/region/{city}?year={y}",
            "county page": f"/region/{county}?year={y}",
            "township page": f"/region/{township}?year={y}",
            "village page": f"/region/{village}?year={y}",
            "household card": f"/household/{household}?year={y}",
            "compare (2 rule sets)": f"/compare/{province}?year={y}&rules=hebei-2016&rules=national-2016",
            "quality": f"/quality?year={y}",
            "api metrics county": f"/api/metrics?year={y}&level=county",
            "api evaluate village": f"/api/evaluate?year={y}&rules=hebei-2016&village={village}",
            "api mpi city k=1/3": f"/api/mpi?year={y}&level=city&rules=hebei-2016&k=0.3333",
        }
        print(f"\n{'page':<24} {'first':>9} {'median':>9} {'max':>9}   (ms, {args.repeat} after the first)")
        for name, path in urls.items():
            status, _, first = fetch(base + path)
            assert status == 200, (name, status)
            times = []
            for _ in range(args.repeat):
                status, _, t = fetch(base + path)
                assert status == 200, (name, status)
                times.append(t)
            print(f"{name:<24} {first * 1000:>9.0f} {statistics.median(times) * 1000:>9.1f} {max(times) * 1000:>9.1f}")

        # Concurrent clients.
        paths = list(urls.values())
        lat: list[float] = []
        errors: list[str] = []
        lock = threading.Lock()
        stop = time.perf_counter() + args.seconds
        rss_start = rss_mb(proc.pid)
        peak = [rss_start]

        def client(i: int) -> None:
            n = i
            while time.perf_counter() < stop:
                path = paths[n % len(paths)]
                n += 1
                try:
                    status, _, t = fetch(base + path)
                except OSError as e:
                    with lock:
                        errors.append(str(e))
                    continue
                with lock:
                    if status != 200:
                        errors.append(f"{status} {path}")
                    lat.append(t)

        def sampler() -> None:
            while time.perf_counter() < stop:
                peak[0] = max(peak[0], rss_mb(proc.pid))
                time.sleep(0.5)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
        threads.append(threading.Thread(target=sampler))
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        lat.sort()
        p95 = lat[int(len(lat) * 0.95)] if lat else float("nan")
        print(f"\n{args.clients} clients for {args.seconds:.0f} s: {len(lat)} requests, {len(errors)} errors; "
              f"latency median {statistics.median(lat) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
              f"max {lat[-1] * 1000:.0f} ms; server RSS {rss_start:.0f} MB at the start, "
              f"peak {peak[0]:.0f} MB, {rss_mb(proc.pid):.0f} MB at the end")
        if errors:
            print("errors:", errors[:5])
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    os.environ.setdefault("TUOPIN_CACHE", "/tmp/tuopin-bench-cache")
    main()
