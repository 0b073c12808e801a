"""Side-by-side comparison of tuopin with DuckDB and Polars (W2 and W3).

Each engine does the same work on the same Parquet files with the same
thread count, from tables already in memory (loading is W1, timed
separately): W2 evaluates the hebei-2016 household rules for one year
(pass columns, score, failed / vetoed_by / unknown lists, outcome); W3
computes the metrics of DESIGN §4 at every level with exact medians. The
DuckDB SQL and the Polars expressions below are written independently of
tuopin's plans; their results are checked equal to tuopin's before timing.

    python benches/compare.py --households 1200000 --threads 2 --repeat 5
    python benches/compare.py --end-to-end --repeat 5   # CLI processes vs DuckDB
"""

from __future__ import annotations

import argparse
import math
import os
import pathlib
import statistics
import time

import duckdb
import polars as pl
import pyarrow as pa

import tuopin

YEAR = 2016
ROOT = pathlib.Path(__file__).resolve().parents[1]
LEVELS = [("province", 2), ("city", 4), ("county", 6), ("township", 9), ("village", 12)]
HEBEI = [  # key, points, veto, predicate (same as crates/core/rules/hebei-2016.toml)
    ("income", 30, True, "per_capita_net_income > poverty_line"),
    ("safe_housing", 15, True, "safe_housing"),
    ("education", 15, True, "dropouts = 0"),
    ("medical", 10, True, "medical_enrolled = size"),
    ("pension", 10, False, "pension_enrolled = pension_eligible"),
    ("safe_water", 10, False, "safe_water"),
    ("electricity", 10, False, "electricity"),
]
PASS = 80


def data_dir(households: int) -> pathlib.Path:
    d = ROOT / "bench-data" / f"h{households}-y{YEAR}"
    if not (d / "households.parquet").exists():
        tuopin.generate(households=households, seed=2016, path=str(d), year=YEAR)
    return d


# --------------------------------------------------------------------------- DuckDB


def duck_setup(d: pathlib.Path, threads: int) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    for t in ["regions", "households", "members", "poverty_lines", "assistance", "funds"]:
        con.execute(f"CREATE TABLE {t} AS SELECT * FROM read_parquet('{d / (t + '.parquet')}')")
    return con


def duck_w2(con) -> pa.Table:
    passes = ",\n".join(f"({p}) AS pass_{k}" for k, _, _, p in HEBEI)
    score = " + ".join(f"CASE WHEN pass_{k} THEN {pts} ELSE 0 END" for k, pts, _, _ in HEBEI)
    unknown_pts = " + ".join(f"CASE WHEN pass_{k} IS NULL THEN {pts} ELSE 0 END" for k, pts, _, _ in HEBEI)
    veto_failed = " OR ".join(f"coalesce(NOT pass_{k}, false)" for k, _, v, _ in HEBEI if v)
    veto_unknown = " OR ".join(f"pass_{k} IS NULL" for k, _, v, _ in HEBEI if v)

    def lst(cond, only_veto=False):
        items = ", ".join(f"CASE WHEN {cond.format(k=k)} THEN '{k}' END" for k, _, v, _ in HEBEI if v or not only_veto)
        return f"list_filter([{items}], lambda x: x IS NOT NULL)"

    sql = f"""
    WITH f AS (
      SELECT h.*, (wage_income + business_income + property_income + transfer_income - business_expense) / size
               AS per_capita_net_income, l.poverty_line
      FROM households h LEFT JOIN poverty_lines l USING (year) WHERE h.year = {YEAR}),
    p AS (SELECT household_id, year, village_code, {passes} FROM f),
    s AS (SELECT *, CAST({score} AS DOUBLE) AS score, {unknown_pts} AS unknown_points,
                 ({veto_failed}) AS veto_failed, ({veto_unknown}) AS veto_unknown FROM p)
    SELECT household_id, score, {lst('pass_{k} = false')} AS failed,
           {lst('pass_{k} = false', True)} AS vetoed_by, {lst('pass_{k} IS NULL')} AS unknown,
           CASE WHEN veto_failed OR score + unknown_points < {PASS} THEN 'stay'
                WHEN NOT veto_unknown AND score >= {PASS} THEN 'exit' ELSE 'undetermined' END AS outcome
    FROM s"""
    return con.sql(sql).to_arrow_table()


def duck_w3(con) -> pa.Table:
    def roll(col, n):
        return col if n == 12 else f"concat(substr({col}, 1, {n}), '{'0' * (12 - n)}')"

    codes = ", ".join(f"{roll('village_code', n)} AS {lv}_code" for lv, n in LEVELS)
    sets = ", ".join(f"({lv}_code)" for lv, _ in LEVELS)
    coalesce = "coalesce(" + ", ".join(f"{lv}_code" for lv, _ in reversed(LEVELS)) + ")"
    level_of = ("CASE WHEN substr(code,10,3) <> '000' THEN 'village' WHEN substr(code,7,3) <> '000' THEN 'township' "
                "WHEN substr(code,5,2) <> '00' THEN 'county' WHEN substr(code,3,2) <> '00' THEN 'city' ELSE 'province' END")
    rcodes = ", ".join(
        f"CASE WHEN lvl >= {i + 1} THEN {roll('code', n)} END AS {lv}_code" for i, (lv, n) in enumerate(LEVELS)
    )
    rank = "CASE level WHEN 'province' THEN 1 WHEN 'city' THEN 2 WHEN 'county' THEN 3 WHEN 'township' THEN 4 ELSE 5 END"
    sql = f"""
    WITH r AS (SELECT *, {rcodes} FROM (SELECT *, {level_of} AS level, {rank.replace('level', level_of)} AS lvl FROM regions)),
    hh AS (
      SELECT h.size, h.status, h.exit_year,
             h.wage_income + h.business_income + h.property_income + h.transfer_income - h.business_expense AS net,
             l.poverty_line AS z, {codes},
             EXISTS (SELECT 1 FROM assistance a WHERE a.household_id = h.household_id AND a.year = h.year) AS assisted,
             coalesce(m.migrants, 0) AS migrants
      FROM households h LEFT JOIN poverty_lines l USING (year)
      LEFT JOIN (SELECT household_id, year, count(*) AS migrants FROM members WHERE migrant_months >= 6 GROUP BY ALL) m
        USING (household_id, year)
      WHERE h.year = {YEAR}),
    hs AS (
      SELECT {coalesce} AS code, count(*) AS registered_households, sum(size) AS registered_population,
        count(*) FILTER (status IN ('poor','returned')) AS poor_households,
        coalesce(sum(size) FILTER (status IN ('poor','returned')), 0) AS poor_population,
        count(*) FILTER (exit_year = {YEAR}) AS exited_households,
        coalesce(sum(size) FILTER (exit_year = {YEAR}), 0) AS exited_population,
        count(*) FILTER (status = 'returned') AS returned_households,
        sum(net) / sum(size) FILTER (net IS NOT NULL) AS mean_income,
        sum(size) FILTER (net IS NOT NULL AND z IS NOT NULL) AS fp,
        sum(size) FILTER (net / size < z) AS f0,
        sum(size * (z - net / size) / z) FILTER (net / size < z) AS f1,
        sum(size * pow((z - net / size) / z, 2)) FILTER (net / size < z) AS f2,
        sum(migrants) AS migrant_workers,
        count(*) FILTER (status IN ('poor','returned') AND assisted) AS assisted_poor
      FROM hh GROUP BY GROUPING SETS ({sets})),
    med AS (
      SELECT {coalesce} AS code, median(pcy) AS median_income
      FROM (SELECT hh.*, net / size AS pcy FROM hh, range(size) WHERE net IS NOT NULL)
      GROUP BY GROUPING SETS ({sets})),
    vs AS (
      SELECT {coalesce} AS code, sum(rural_population) AS rural_population,
        count(*) FILTER (poor_village) AS poor_villages,
        count(*) FILTER (poor_village AND (exit_year IS NULL OR exit_year > {YEAR})) AS poor_villages_remaining
      FROM r WHERE level = 'village' GROUP BY GROUPING SETS ({sets})),
    cs AS (
      SELECT {coalesce} AS code, count(*) FILTER (poor_county IS NOT NULL) AS poor_counties,
        count(*) FILTER (poor_county IS NOT NULL AND (exit_year IS NULL OR exit_year > {YEAR})) AS poor_counties_remaining
      FROM r WHERE level = 'county' GROUP BY GROUPING SETS ({sets})),
    fs AS (
      SELECT {coalesce} AS code, sum(allocated) AS allocated, sum(disbursed) AS disbursed
      FROM funds f JOIN r ON f.region_code = r.code WHERE f.year = {YEAR} GROUP BY GROUPING SETS ({sets}))
    SELECT r.level, r.code, r.name, vs.rural_population,
      coalesce(registered_households, 0) AS registered_households, coalesce(registered_population, 0) AS registered_population,
      coalesce(poor_households, 0) AS poor_households, coalesce(poor_population, 0) AS poor_population,
      coalesce(exited_households, 0) AS exited_households, coalesce(exited_population, 0) AS exited_population,
      coalesce(returned_households, 0) AS returned_households,
      CASE WHEN vs.rural_population > 0 THEN coalesce(poor_population, 0) / vs.rural_population END AS poverty_incidence,
      mean_income, median_income,
      CASE WHEN fp > 0 THEN coalesce(f0, 0) / fp END AS fgt0, CASE WHEN fp > 0 THEN coalesce(f1, 0) / fp END AS fgt1,
      CASE WHEN fp > 0 THEN coalesce(f2, 0) / fp END AS fgt2,
      coalesce(poor_villages, 0) AS poor_villages, coalesce(poor_villages_remaining, 0) AS poor_villages_remaining,
      coalesce(poor_counties, 0) AS poor_counties, coalesce(poor_counties_remaining, 0) AS poor_counties_remaining,
      coalesce(migrant_workers, 0) AS migrant_workers,
      CASE WHEN poor_households > 0 THEN assisted_poor / poor_households END AS assisted_share,
      coalesce(allocated, 0) AS funds_allocated, coalesce(disbursed, 0) AS funds_disbursed,
      CASE WHEN allocated > 0 THEN disbursed / allocated END AS disbursement_rate
    FROM r LEFT JOIN hs USING (code) LEFT JOIN med USING (code) LEFT JOIN vs USING (code)
      LEFT JOIN cs USING (code) LEFT JOIN fs USING (code)
    """
    return con.sql(sql).to_arrow_table()


# --------------------------------------------------------------------------- Polars


def polars_setup(d: pathlib.Path) -> dict[str, pl.DataFrame]:
    return {t: pl.read_parquet(d / f"{t}.parquet") for t in ["regions", "households", "members", "poverty_lines", "assistance", "funds"]}


def polars_w2(t: dict[str, pl.DataFrame]) -> pl.DataFrame:
    h = t["households"].filter(pl.col("year") == YEAR).join(t["poverty_lines"].select("year", "poverty_line"), on="year", how="left")
    pc = (pl.col("wage_income") + pl.col("business_income") + pl.col("property_income") + pl.col("transfer_income") - pl.col("business_expense")) / pl.col("size")
    preds = {
        "income": pc > pl.col("poverty_line"),
        "safe_housing": pl.col("safe_housing"),
        "education": pl.col("dropouts") == 0,
        "medical": pl.col("medical_enrolled") == pl.col("size"),
        "pension": pl.col("pension_enrolled") == pl.col("pension_eligible"),
        "safe_water": pl.col("safe_water"),
        "electricity": pl.col("electricity"),
    }
    p = h.select("household_id", *[e.alias(f"pass_{k}") for k, e in preds.items()])
    score = sum(pl.when(pl.col(f"pass_{k}")).then(pts).otherwise(0) for k, pts, _, _ in HEBEI).cast(pl.Float64)
    unknown = sum(pl.when(pl.col(f"pass_{k}").is_null()).then(pts).otherwise(0) for k, pts, _, _ in HEBEI)
    veto_failed = pl.any_horizontal([(~pl.col(f"pass_{k}")).fill_null(False) for k, _, v, _ in HEBEI if v])
    veto_unknown = pl.any_horizontal([pl.col(f"pass_{k}").is_null() for k, _, v, _ in HEBEI if v])

    def lst(cond, only_veto=False):
        return pl.concat_list([pl.when(cond(k)).then(pl.lit(k)) for k, _, v, _ in HEBEI if v or not only_veto]).list.drop_nulls()

    failed = lambda k: (~pl.col(f"pass_{k}")).fill_null(False)
    return p.with_columns(score=score, unknown_points=unknown, vf=veto_failed, vu=veto_unknown).select(
        "household_id",
        "score",
        lst(failed).alias("failed"),
        lst(failed, True).alias("vetoed_by"),
        lst(lambda k: pl.col(f"pass_{k}").is_null()).alias("unknown"),
        pl.when(pl.col("vf") | (pl.col("score") + pl.col("unknown_points") < PASS)).then(pl.lit("stay"))
        .when(~pl.col("vu") & (pl.col("score") >= PASS)).then(pl.lit("exit"))
        .otherwise(pl.lit("undetermined")).alias("outcome"),
    )


def polars_w3(t: dict[str, pl.DataFrame]) -> pl.DataFrame:
    def roll(col, n):
        return pl.col(col) if n == 12 else pl.col(col).str.slice(0, n) + "0" * (12 - n)

    assisted = t["assistance"].filter(pl.col("year") == YEAR).select("household_id").unique().with_columns(assisted=pl.lit(True))
    migrants = t["members"].filter((pl.col("year") == YEAR) & (pl.col("migrant_months") >= 6)).group_by("household_id").agg(migrants=pl.len())
    net = pl.col("wage_income") + pl.col("business_income") + pl.col("property_income") + pl.col("transfer_income") - pl.col("business_expense")
    hh = (
        t["households"].filter(pl.col("year") == YEAR)
        .join(t["poverty_lines"].select("year", pl.col("poverty_line").alias("z")), on="year", how="left")
        .join(assisted, on="household_id", how="left").join(migrants, on="household_id", how="left")
        .with_columns(net=net, poor=pl.col("status").is_in(["poor", "returned"]), assisted=pl.col("assisted").fill_null(False),
                      migrants=pl.col("migrants").fill_null(0), **{f"{lv}_code": roll("village_code", n) for lv, n in LEVELS})
        .with_columns(pcy=pl.col("net") / pl.col("size"))
    )
    size = pl.col("size")
    known = pl.col("pcy").is_not_null() & pl.col("z").is_not_null()
    below = pl.col("pcy") < pl.col("z")
    gap = (pl.col("z") - pl.col("pcy")) / pl.col("z")
    # Exact median over persons: sort by income, cumulative weights.
    w = pl.when(pl.col("pcy").is_not_null()).then(size).otherwise(0)
    aggs = [
        pl.len().alias("registered_households"), size.sum().alias("registered_population"),
        pl.col("poor").sum().alias("poor_households"), size.filter(pl.col("poor")).sum().alias("poor_population"),
        (pl.col("exit_year") == YEAR).sum().alias("exited_households"), size.filter(pl.col("exit_year") == YEAR).sum().alias("exited_population"),
        (pl.col("status") == "returned").sum().alias("returned_households"),
        (pl.col("net").sum() / size.filter(pl.col("net").is_not_null()).sum()).alias("mean_income"),
        size.filter(known).sum().alias("fp"), size.filter(below).sum().alias("f0"),
        (size * gap).filter(below).sum().alias("f1"), (size * gap * gap).filter(below).sum().alias("f2"),
        pl.col("migrants").sum().alias("migrant_workers"), (pl.col("poor") & pl.col("assisted")).sum().alias("assisted_poor"),
        pl.col("pcy").sort_by("pcy").alias("sv"), w.sort_by("pcy").cum_sum().alias("cw"),
    ]
    frames = []
    for lv, _ in LEVELS:
        g = hh.group_by(f"{lv}_code").agg(aggs).rename({f"{lv}_code": "code"})
        frames.append(g)
    hs = pl.concat(frames)
    total = pl.col("cw").list.last()
    lo = (total + 1) // 2
    hi = total // 2 + 1
    hs = hs.with_columns(n=total, lo=lo, hi=hi)
    med = (
        hs.select("code", "sv", "cw", "n", "lo", "hi").explode("sv", "cw")
        .filter(pl.col("n") > 0)
        .group_by("code").agg(
            pl.col("sv").filter(pl.col("cw") >= pl.col("lo")).first().alias("m_lo"),
            pl.col("sv").filter(pl.col("cw") >= pl.col("hi")).first().alias("m_hi"),
            pl.col("n").first(),
        )
        .with_columns(median_income=pl.when(pl.col("n") % 2 == 1).then(pl.col("m_lo")).otherwise((pl.col("m_lo") + pl.col("m_hi")) / 2))
        .select("code", "median_income")
    )
    hs = hs.drop("sv", "cw", "n", "lo", "hi").join(med, on="code", how="left")
    r = t["regions"].with_columns(
        level=pl.when(pl.col("code").str.slice(9, 3) != "000").then(pl.lit("village"))
        .when(pl.col("code").str.slice(6, 3) != "000").then(pl.lit("township"))
        .when(pl.col("code").str.slice(4, 2) != "00").then(pl.lit("county"))
        .when(pl.col("code").str.slice(2, 2) != "00").then(pl.lit("city")).otherwise(pl.lit("province"))
    )
    villages = r.filter(pl.col("level") == "village").with_columns(**{f"{lv}_code": roll("code", n) for lv, n in LEVELS})
    counties = r.filter(pl.col("level") == "county").with_columns(**{f"{lv}_code": roll("code", n) for lv, n in LEVELS[:3]})
    vs = pl.concat([villages.group_by(f"{lv}_code").agg(
        pl.col("rural_population").sum().alias("rural_population"), pl.col("poor_village").fill_null(False).sum().alias("poor_villages"),
        (pl.col("poor_village").fill_null(False) & (pl.col("exit_year").is_null() | (pl.col("exit_year") > YEAR))).sum().alias("poor_villages_remaining"),
    ).rename({f"{lv}_code": "code"}) for lv, _ in LEVELS])
    cs = pl.concat([counties.group_by(f"{lv}_code").agg(
        pl.col("poor_county").is_not_null().sum().alias("poor_counties"),
        (pl.col("poor_county").is_not_null() & (pl.col("exit_year").is_null() | (pl.col("exit_year") > YEAR))).sum().alias("poor_counties_remaining"),
    ).rename({f"{lv}_code": "code"}) for lv, _ in LEVELS[:3]])
    f = t["funds"].filter(pl.col("year") == YEAR).join(r.select("code", "level"), left_on="region_code", right_on="code")
    rank = {lv: i for i, (lv, _) in enumerate(LEVELS)}
    fs_parts = []
    for i, (lv, n) in enumerate(LEVELS):
        part = f.filter(pl.col("level").replace_strict(rank, return_dtype=pl.Int32) >= i).with_columns(code=roll("region_code", n))
        fs_parts.append(part.group_by("code").agg(pl.col("allocated").sum(), pl.col("disbursed").sum()))
    fs = pl.concat(fs_parts)
    out = (
        r.select("level", "code", "name").join(vs, on="code", how="left").join(hs, on="code", how="left")
        .join(cs, on="code", how="left").join(fs, on="code", how="left")
    )
    ratio = lambda a, b: pl.when(b > 0).then(a / b)
    return out.select(
        "level", "code", "name", "rural_population",
        *[pl.col(c).fill_null(0).alias(c) for c in ["registered_households", "registered_population", "poor_households", "poor_population",
                                                      "exited_households", "exited_population", "returned_households"]],
        ratio(pl.col("poor_population").fill_null(0), pl.col("rural_population")).alias("poverty_incidence"),
        "mean_income", "median_income",
        ratio(pl.col("f0").fill_null(0), pl.col("fp")).alias("fgt0"), ratio(pl.col("f1").fill_null(0), pl.col("fp")).alias("fgt1"),
        ratio(pl.col("f2").fill_null(0), pl.col("fp")).alias("fgt2"),
        *[pl.col(c).fill_null(0).alias(c) for c in ["poor_villages", "poor_villages_remaining", "poor_counties", "poor_counties_remaining", "migrant_workers"]],
        ratio(pl.col("assisted_poor"), pl.col("poor_households")).alias("assisted_share"),
        pl.col("allocated").fill_null(0).alias("funds_allocated"), pl.col("disbursed").fill_null(0).alias("funds_disbursed"),
        ratio(pl.col("disbursed"), pl.col("allocated")).alias("disbursement_rate"),
    )


# --------------------------------------------------------------------------- checks


def _norm(rows: list[dict], key: str) -> dict:
    return {r[key]: r for r in rows}


def check_w2(ref: pa.Table, other: pa.Table, name: str) -> None:
    a = _norm(ref.select(["household_id", "score", "failed", "vetoed_by", "unknown", "outcome"]).to_pylist(), "household_id")
    b = _norm(other.select(["household_id", "score", "failed", "vetoed_by", "unknown", "outcome"]).to_pylist(), "household_id")
    assert a.keys() == b.keys(), f"{name}: different households"
    for k, ra in a.items():
        rb = b[k]
        for c in ["score", "failed", "vetoed_by", "unknown", "outcome"]:
            assert (ra[c] or []) == (rb[c] or []) if c in ("failed", "vetoed_by", "unknown") else ra[c] == rb[c], (name, k, c, ra[c], rb[c])


def check_w3(ref: pa.Table, other: pa.Table, name: str) -> None:
    a = _norm(ref.to_pylist(), "code")
    b = _norm(other.to_pylist(), "code")
    assert a.keys() == b.keys(), f"{name}: different regions ({len(a)} vs {len(b)})"
    for code, ra in a.items():
        rb = b[code]
        for c, va in ra.items():
            if c == "year":
                continue
            vb = rb[c]
            if va is None or vb is None:
                assert va is None and (vb is None or (isinstance(vb, float) and math.isnan(vb))), (name, code, c, va, vb)
            elif isinstance(va, float):
                assert math.isclose(va, float(vb), rel_tol=1e-9, abs_tol=1e-9), (name, code, c, va, vb)
            else:
                assert va == vb, (name, code, c, va, vb)


# --------------------------------------------------------------------------- end to end


def duck_end_to_end(d: pathlib.Path, threads: int, out: pathlib.Path) -> None:
    """DuckDB's side of the end-to-end run, in its own process: read the
    Parquet files, W2 and W3, each written to Parquet (what the two tuopin
    commands do)."""
    import pyarrow.parquet as pq

    con = duck_setup(d, threads)
    pq.write_table(duck_w2(con), out / "outcomes.parquet")
    pq.write_table(duck_w3(con), out / "metrics.parquet")


def tuopin_commands(exe: pathlib.Path, d: pathlib.Path, threads: int, out: pathlib.Path) -> list[list[str]]:
    common = ["--partitions", str(threads)]
    return [
        [str(exe), *common, "evaluate", str(d), "--rules", "hebei-2016", "--year", str(YEAR), "--out", str(out / "outcomes.parquet")],
        [str(exe), *common, "metrics", str(d), "--year", str(YEAR), "--level", "all", "--out", str(out / "metrics.parquet")],
    ]


def end_to_end(d: pathlib.Path, threads: int, repeat: int, exe: pathlib.Path) -> None:
    """As a user runs it: the two tuopin commands as processes — first with
    an empty cache (validation included), then repeated (the store reused)
    — against one DuckDB process doing the same work from the same Parquet.
    Medians of `repeat` runs each, interleaved."""
    import shutil
    import subprocess
    import sys
    import tempfile

    import pyarrow.parquet as pq

    def run(cmds: list[list[str]], env: dict[str, str]) -> float:
        t = time.perf_counter()
        for c in cmds:
            subprocess.run(c, check=True, env=env, stdout=subprocess.DEVNULL)
        return time.perf_counter() - t

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = pathlib.Path(tmp)
        cache, out_tu, out_du = tmp_path / "cache", tmp_path / "tu", tmp_path / "du"
        out_tu.mkdir()
        out_du.mkdir()
        env = {**os.environ, "TUOPIN_CACHE": str(cache), "POLARS_MAX_THREADS": str(threads)}
        tu = tuopin_commands(exe, d, threads, out_tu)
        du = [[sys.executable, __file__, "--duck-end-to-end", str(d), "--threads", str(threads), "--out-dir", str(out_du)]]
        # Once untimed, and the outputs checked equal.
        run(tu, env)
        run(du, env)
        check_w2(pq.read_table(out_tu / "outcomes.parquet"), pq.read_table(out_du / "outcomes.parquet"), "duckdb e2e")
        metrics = pq.read_table(out_tu / "metrics.parquet")
        check_w3(metrics.select([c for c in metrics.column_names if c in pq.read_schema(out_du / "metrics.parquet").names]),
                 pq.read_table(out_du / "metrics.parquet"), "duckdb e2e")
        times: dict[str, list[float]] = {"first": [], "repeat": [], "duckdb": []}
        for _ in range(repeat):
            shutil.rmtree(cache, ignore_errors=True)
            times["first"].append(run(tu, env))
            times["repeat"].append(run(tu, env))
            times["duckdb"].append(run(du, env))
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"end to end (evaluate --out + metrics --level all --out), {repeat} runs, median [min–max]:")
    for k, label in [("first", "tuopin, empty cache"), ("repeat", "tuopin, store reused"), ("duckdb", "duckdb, one process")]:
        v = times[k]
        print(f"  {label:<22}{med[k]:>8.3f}s  [{min(v):.3f}–{max(v):.3f}]  {med[k] / med['duckdb']:.2f}× duckdb")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--households", type=int, default=1_200_000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--end-to-end", action="store_true", help="the CLI as processes vs DuckDB (see end_to_end)")
    ap.add_argument("--exe", type=pathlib.Path, default=ROOT / "target" / "release" / "tuopin")
    ap.add_argument("--duck-end-to-end", type=pathlib.Path, help=argparse.SUPPRESS)
    ap.add_argument("--out-dir", type=pathlib.Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    os.environ["POLARS_MAX_THREADS"] = str(args.threads)
    if args.duck_end_to_end is not None:
        duck_end_to_end(args.duck_end_to_end, args.threads, args.out_dir)
        return
    d = data_dir(args.households)
    if args.end_to_end:
        end_to_end(d, args.threads, args.repeat, args.exe)
        return
    print(f"data: {d}  threads: {args.threads}  repeat: {args.repeat} (medians)")

    t0 = time.perf_counter()
    eng = tuopin.open(str(d), partitions=args.threads)
    print(f"tuopin W1 load+validate: {time.perf_counter() - t0:.3f}s")
    con = duck_setup(d, args.threads)
    pt = polars_setup(d)

    rows = []
    for work, tu, du, po, check in [
        ("W2 evaluate hebei-2016", lambda: eng.evaluate("hebei-2016", year=YEAR), lambda: duck_w2(con), lambda: polars_w2(pt).to_arrow(), check_w2),
        ("W3 metrics all levels", lambda: eng.metrics(year=YEAR, level="all"), lambda: duck_w3(con), lambda: polars_w3(pt).to_arrow(), check_w3),
    ]:
        # One untimed run of each (warm-up, and the results to check), then
        # the timed runs interleaved so background work of one engine (e.g.
        # DuckDB compressing freshly created tables) does not land on
        # another engine's block of runs.
        r_tu, r_du, r_po = tu(), du(), po()
        check(r_tu, r_du, "duckdb")
        check(r_tu, r_po, "polars")
        times: dict[str, list[float]] = {"tu": [], "du": [], "po": []}
        for _ in range(args.repeat):
            for key, fn in (("tu", tu), ("du", du), ("po", po)):
                t = time.perf_counter()
                fn()
                times[key].append(time.perf_counter() - t)
        rows.append((work, *(statistics.median(times[k]) for k in ("tu", "du", "po"))))
    print(f"{'work':<26}{'tuopin s':>10}{'duckdb s':>10}{'polars s':>10}{'tu/duck':>9}{'tu/polars':>10}")
    for work, a, b, c in rows:
        print(f"{work:<26}{a:>10.3f}{b:>10.3f}{c:>10.3f}{a / b:>9.2f}{a / c:>10.2f}")
    tot = [sum(r[i] for r in rows) for i in (1, 2, 3)]
    print(f"{'W2 + W3':<26}{tot[0]:>10.3f}{tot[1]:>10.3f}{tot[2]:>10.3f}{tot[0] / tot[1]:>9.2f}{tot[0] / tot[2]:>10.2f}")
    print("results checked equal: tuopin = duckdb = polars")


if __name__ == "__main__":
    main()
