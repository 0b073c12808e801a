"""The Python API of DESIGN §5 on generated data, checked against the CLI
and against hand-made inputs."""

from __future__ import annotations

import subprocess

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

import tuopin


def test_generate_returns_every_table(tables: dict) -> None:
    assert set(tuopin.TABLES) <= set(tables)
    for name, t in tables.items():
        assert isinstance(t, pa.Table), name
        assert t.num_rows > 0, name
    years = sorted(set(tables["households"].column("year").to_pylist()))
    assert years == list(range(2014, 2021))


def test_generate_is_deterministic() -> None:
    a = tuopin.generate(households=300, seed=1)
    b = tuopin.generate(households=300, seed=1)
    c = tuopin.generate(households=300, seed=2)
    assert a["households"].equals(b["households"])
    assert not a["households"].equals(c["households"])


def test_evaluate_one_rule_set(eng: tuopin.Engine) -> None:
    out = eng.evaluate("hebei-2016", year=2016)
    assert {"household_id", "score", "failed", "vetoed_by", "unknown", "outcome", "pass_income"} <= set(out.column_names)
    assert set(out.column("outcome").to_pylist()) <= {"exit", "stay", "undetermined"}
    assert out.schema.field("failed").type == pa.list_(pa.string())
    # Same as the RuleSet object path.
    again = eng.evaluate(tuopin.RuleSet.builtin("hebei-2016"), year=2016)
    assert out.sort_by("household_id").equals(again.sort_by("household_id"))


def test_evaluate_many_matches_single(eng: tuopin.Engine) -> None:
    hebei = tuopin.RuleSet.builtin("hebei-2016")
    sets = [hebei.with_pass_score(f"p{p}", p) for p in (70, 80, 90)]
    many = eng.evaluate(sets, year=2016).sort_by("household_id")
    exits = []
    for r in sets:
        one = eng.evaluate(r, year=2016).sort_by("household_id")
        assert many.column(f"outcome_{r.name}").equals(one.column("outcome"))
        exits.append(pc.sum(pc.equal(one.column("outcome"), "exit")).as_py())
    assert exits[0] >= exits[1] >= exits[2]


def test_ruleset_api() -> None:
    assert tuopin.RuleSet.list() == ["national-2016", "hebei-2016", "village-2016", "county-2016"]
    h = tuopin.RuleSet.builtin("hebei-2016")
    assert h.name == "hebei-2016" and h.unit == "household" and h.pass_score == 80
    assert [i["key"] for i in h.indicators][:4] == ["income", "safe_housing", "education", "medical"]
    assert sum(i["points"] for i in h.indicators) == 100
    again = tuopin.RuleSet.from_toml(h.to_toml())
    assert again.indicators == h.indicators


def test_metrics_levels(eng: tuopin.Engine) -> None:
    all_levels = eng.metrics(year=2016, level="all")
    assert set(all_levels.column("level").to_pylist()) == {"province", "city", "county", "township", "village"}
    cities = eng.metrics(year=2016, level="city")
    assert cities.num_rows == 11
    prov = eng.metrics(year=2016, level="province")
    assert pc.sum(cities.column("poor_population")).as_py() == prov.column("poor_population")[0].as_py()
    assert eng.causes(year=2016, level="city").num_rows > 11
    tr = eng.transitions(year=2016, level="county")
    assert pc.sum(tr.column("exited")).as_py() > 0


def test_sql_rejects_and_audit(eng: tuopin.Engine) -> None:
    n = eng.sql("SELECT count(*) AS n FROM household_facts WHERE year = 2016").column("n")[0].as_py()
    assert n == eng.evaluate("hebei-2016", year=2016).num_rows
    assert eng.rejects.num_rows == 0
    assert eng.rejects.column_names == ["table", "row", "key", "column", "problem", "file"]
    audit = eng.audit("hebei-2016", year=2016)
    assert audit.column_names == ["household_id", "year", "village_code", "flag", "detail"]
    assert audit.num_rows > 0
    s = eng.summary
    assert "households" in s.column("table").to_pylist()


def test_results_equal_the_cli(eng: tuopin.Engine, data_dir, cli, tmp_path) -> None:
    out = tmp_path / "metrics.parquet"
    subprocess.run([str(cli), "metrics", str(data_dir), "--year", "2017", "--level", "county", "--out", str(out)], check=True)
    from_cli = pq.read_table(out)
    from_py = eng.metrics(year=2017, level="county")
    assert from_cli.to_pylist() == from_py.to_pylist()
    ev = tmp_path / "eval.parquet"
    subprocess.run([str(cli), "evaluate", str(data_dir), "--rules", "hebei-2016", "--year", "2017", "--out", str(ev)], check=True)
    a = pq.read_table(ev).sort_by("household_id")
    b = eng.evaluate("hebei-2016", year=2017).sort_by("household_id")
    assert a.column("outcome").equals(b.column("outcome"))
    assert a.column("score").equals(b.column("score"))


def test_faulty_data_goes_to_rejects(tmp_path) -> None:
    tuopin.generate(households=500, seed=3, path=str(tmp_path), faults=0.05)
    eng = tuopin.open(str(tmp_path))
    rejects = eng.rejects
    assert rejects.num_rows > 0
    assert set(rejects.column("table").to_pylist()) >= {"households"}
    summary = eng.summary.to_pylist()
    hh = next(r for r in summary if r["table"] == "households")
    assert hh["accepted"] + hh["rejected"] == hh["rows"]
    assert eng.sql("SELECT count(*) AS n FROM households").column("n")[0].as_py() == hh["accepted"]


def test_migrants_and_assisted_poor_equal_a_pyarrow_join(tables: dict, eng: tuopin.Engine) -> None:
    """The engine counts migrants and assisted poor households from links
    carried by validation; here the same counts come from plain joins."""
    hh = tables["households"].filter(pc.equal(tables["households"].column("year"), 2016))
    county = pc.utf8_replace_slice(hh.column("village_code"), 6, 12, "000000")
    poor = pc.is_in(hh.column("status"), pa.array(["poor", "returned"]))
    hh = pa.table({"household_id": hh.column("household_id"), "county": county, "poor": poor})

    m = tables["members"]
    m = m.filter(pc.and_(pc.equal(m.column("year"), 2016), pc.greater_equal(m.column("migrant_months"), 6)))
    migrants = m.select(["household_id"]).join(hh, "household_id").group_by("county").aggregate([([], "count_all")])
    want_migrants = dict(zip(migrants.column("county").to_pylist(), migrants.column("count_all").to_pylist()))

    a = tables["assistance"]
    assisted_ids = pc.unique(a.filter(pc.equal(a.column("year"), 2016)).column("household_id"))
    poor_hh = hh.filter(hh.column("poor"))
    assisted = poor_hh.filter(pc.is_in(poor_hh.column("household_id"), assisted_ids))
    per_county = assisted.group_by("county").aggregate([([], "count_all")])
    want_assisted = dict(zip(per_county.column("county").to_pylist(), per_county.column("count_all").to_pylist()))
    poor_per_county = poor_hh.group_by("county").aggregate([([], "count_all")])
    want_poor = dict(zip(poor_per_county.column("county").to_pylist(), poor_per_county.column("count_all").to_pylist()))

    got = eng.metrics(year=2016, level="county")
    assert sum(want_migrants.values()) > 0 and sum(want_assisted.values()) > 0
    for code, migrants_n, share in zip(
        got.column("code").to_pylist(),
        got.column("migrant_workers").to_pylist(),
        got.column("assisted_share").to_pylist(),
    ):
        assert migrants_n == want_migrants.get(code, 0), code
        if want_poor.get(code, 0) == 0:
            assert share is None, code
        else:
            assert share == pytest.approx(want_assisted.get(code, 0) / want_poor[code]), code


def test_mpi_from_the_exit_rules(eng: tuopin.Engine) -> None:
    t = eng.mpi("hebei-2016", year=2016, level="city", k=[1 / 3, 0.5])
    assert t.num_rows == 2 * 11
    rows = t.to_pylist()
    for r in rows:
        if r["A"] is not None:
            assert abs(r["M0"] - r["H"] * r["A"]) < 1e-12
            total = sum(r[f"contribution_{k}"] for k in ("income", "safe_housing", "education", "medical", "pension", "safe_water", "electricity"))
            assert abs(total - 1.0) < 1e-9
    change = eng.mpi_change("hebei-2016", from_year=2015, to_year=2016, level="city", k=1 / 3)
    assert change.num_rows == 11
    for r in change.to_pylist():
        assert r["M0_abs"] == r["M0_to"] - r["M0_from"]


def test_a_gbk_export_with_chinese_headers_opens_as_it_is(tmp_path) -> None:
    """A households.csv saved by Excel on Chinese Windows (GBK) with the
    national system's headers and labels."""
    (tmp_path / "regions.csv").write_bytes(
        "区划代码,名称,农业户籍人口,贫困村,贫困县,西部,出列年度\n"
        "130000000000,河北省,,,,否,\n130100000000,石家庄市,,,,,\n"
        "130102000000,甲县,,,国家级,,\n130102001000,甲乡,,,,,\n"
        "130102001001,一村,1000,是,,,\n".encode("gbk")
    )
    header = (
        "户编号,年度,村代码,家庭人口数,贫困户属性,脱贫状态,识别年度,脱贫年度,主要致贫原因,"
        "工资性收入,生产经营性收入,财产性收入,转移性收入,生产经营性支出,住房安全,因贫辍学人数,"
        "参加新农合人数,应参加养老保险人数,参加养老保险人数,饮水安全,通生产生活用电,拟退出,"
        "村评议日期,乡审核日期,县审定日期"
    )
    rows = [
        'H1,2016,130102001001,3,一般贫困户,已脱贫,2014,2016,因病,"12,000",0,0,0,0,是,0,3,3,3,是,是,是,'
        "2016年12月1日,2016/12/10,20161220",
        "H2,2016,130102001001,2,低保贫困户,未脱贫,2014,,因学,100,0,0,0,0,否,1,2,2,2,是,是,否,,,",
    ]
    (tmp_path / "households.csv").write_bytes((header + "\n" + "\n".join(rows) + "\n").encode("gbk"))
    eng = tuopin.open(str(tmp_path), cache=False)
    assert eng.rejects.num_rows == 0
    hh = eng.sql("SELECT household_id, category, status, primary_cause, wage_income FROM households ORDER BY 1")
    assert hh.column("category").to_pylist() == ["general", "dibao"]
    assert hh.column("status").to_pylist() == ["exited", "poor"]
    assert hh.column("primary_cause").to_pylist() == ["illness", "schooling"]
    assert hh.column("wage_income").to_pylist() == [12000.0, 100.0]
    outcomes = eng.evaluate("hebei-2016", year=2016).sort_by("household_id")
    assert outcomes.column("household_id").to_pylist() == ["H1", "H2"]
    # Forced UTF-8 cannot read the GBK bytes: an error naming the file.
    with pytest.raises(tuopin.DataError, match="households.csv|regions.csv"):
        tuopin.open(str(tmp_path), cache=False, encoding="utf-8")
    with pytest.raises(tuopin.TuopinError, match="unknown encoding"):
        tuopin.open(str(tmp_path), cache=False, encoding="latin-1")


def test_quality_warnings_keep_the_rows(eng: tuopin.Engine) -> None:
    q = eng.quality(2016)
    assert q.column_names == ["table", "key", "check", "detail"]
    assert set(q.column("check").to_pylist()) <= {
        "exited_below_line", "exited_with_dropouts", "exited_unsafe_housing",
        "illness_all_healthy", "schooling_no_student", "disability_none_disabled",
        "wage_without_worker", "income_out_of_range", "duplicate_id_number",
    }
    flagged = {k.split("/")[0] for t, k in zip(q.column("table").to_pylist(), q.column("key").to_pylist()) if t == "households"}
    ids = set(eng.sql("SELECT household_id FROM households WHERE year = 2016").column("household_id").to_pylist())
    assert flagged <= ids, "warned households stay in the dataset"
