"""The large-site simulator (simulate/large): its truth through the real pipeline, both stacks,
its files like the event simulator's, its site N times larger, and simulate_site's dispatch."""

from __future__ import annotations

import gzip
import json
from datetime import date
from pathlib import Path

import pytest

from mmw_tasks import lake, pipeline
from mmw_tasks.simulate import simulate_site
from mmw_tasks.simulate.large import LARGE_SCALE, simulate_large
from mmw_tasks.simulate.large.world import build_world

DAY = date(2002, 2, 15)  # a Friday
COUNTS = ("dq", "n_from", "n_to", "n_sent", "n_deferred", "n_pop", "n_user_unknown")


def truth_of(toml: Path) -> dict:
    return json.loads((toml.parent / "truth.json").read_text())


def report_of(toml: Path, day: str) -> dict:
    return json.loads(Path(pipeline.make_report(toml, day)["report"]).read_text())


@pytest.fixture(scope="module", params=["2002", "modern"])
def large_site(request, tmp_path_factory) -> Path:
    """Scenario full (klez + frethem + dns_anomaly) at scale 1 with the large simulator, run
    through the daily job."""
    out = tmp_path_factory.mktemp(f"large_{request.param}")
    toml = simulate_large(out, DAY, 1, scenario="full", seed=5, style=request.param, scale=1.0)
    calls = []
    RUNS[toml] = pipeline.run_day(toml, DAY.isoformat(), log=lambda m: None, on_stage=lambda *a: calls.append(a))
    RUNS[toml]["calls"] = calls
    return toml


RUNS: dict[Path, dict] = {}


def test_totals_and_every_interval_equal_truth(large_site):
    truth = truth_of(large_site)["days"][DAY.isoformat()]
    rep = report_of(large_site, DAY.isoformat())
    assert rep["totals"] == {**truth["totals"], "partial": False}
    assert len(rep["intervals"]) == len(truth["intervals"]) == 144
    for t, g in zip(truth["intervals"], rep["intervals"], strict=True):
        assert {k: g[k] for k in COUNTS} == {k: t[k] for k in COUNTS}, t["interval_start"]
    tot = truth["totals"]
    assert tot["n_to"] > tot["n_sent"] + tot["n_deferred"] > 0 and tot["n_user_unknown"] > 500


def test_run_day_times_each_stage(large_site):
    out = RUNS[large_site]
    names = ["fetch 1dns", "parse 1dns", "fetch 1mx", "parse 1mx", "settle", "aggregate", "fit", "detect"]
    names += ["report", "trends", "commit", "deliver"]
    assert list(out["stages"]) == names
    for rec in out["stages"].values():
        assert rec["wall"] >= 0 and rec["cpu"] >= 0 and rec["peak_mb"] > 10
    assert out["stages"]["parse 1dns"]["cpu"] > 0.1
    # on_stage: each stage's start (None), then its end (the record)
    assert out["calls"] == [c for n in names for c in ((n, None), (n, out["stages"][n]))]


def test_no_line_malformed(large_site):
    con = lake.connect(large_site.parent / "data_lake")
    (bad,) = con.sql("select sum(malformed) from line_accounting").fetchone()
    assert bad == 0
    files = [f for (f,) in con.sql("select distinct file from line_accounting").fetchall()]
    assert len(files) >= 4  # both servers' day spans a rotation


def test_planted_incidents_in_truth_and_found(large_site):
    truth = truth_of(large_site)["days"][DAY.isoformat()]["incidents"]
    kinds = {i["kind"] for i in truth}
    assert kinds == {"mmw_suspect", "deferred_surge", "dns_anomaly", "mailing_list", "bulk_sender"}
    worm = next(i for i in truth if i["kind"] == "mmw_suspect")
    # the event simulator's form: client_ip, sender, host, messages, user_unknown, start, end
    assert list(worm) == ["kind", "client_ip", "sender", "host", "messages", "user_unknown", "start", "end"]
    assert worm["start"].startswith(f"{DAY}T14:3") and worm["end"].startswith(f"{DAY}T17:")
    assert 2000 < worm["messages"] < 3500 and worm["user_unknown"] > 500
    rep = report_of(large_site, DAY.isoformat())
    suspects = {i["client_ip"] for i in rep["incidents"] if i["kind"] == "mmw_suspect"}
    assert worm["client_ip"] in suspects
    surges = [i["domain"] for i in rep["incidents"] if i["kind"] == "deferred_surge"]
    assert surges == ["bigisp.ne.jp"]


def test_files_like_the_event_simulators(large_site):
    site = large_site.parent
    style = truth_of(large_site)["style"]
    names = {p.relative_to(site / "logs").as_posix() for p in (site / "logs").rglob("*") if p.is_file()}
    if style == "2002":
        assert names == {
            "1dns/messages",
            "1dns/messages.1",
            "1dns/messages.2.gz",
            "1mx/syslog",
            "1mx/syslog.0",
            "1mx/syslog.1",
        }
    else:
        assert names == {
            "1dns/syslog", "1dns/syslog-20020216", "1dns/syslog-20020215.gz",
            "1mx/mail.log", "1mx/mail.log-20020216", "1mx/mail.log-20020215.gz",
        }  # fmt: skip
    for f in truth_of(large_site)["files"]:
        p = site / f["file"]
        data = p.read_bytes()
        assert (data[:2] == b"\x1f\x8b") == p.name.endswith(".gz"), p
        if p.name.endswith(".gz"):
            data = gzip.decompress(data)
        assert data.count(b"\n") == f["lines"], p


def test_same_arguments_same_bytes(tmp_path):
    a = simulate_large(tmp_path / "a", DAY, 1, scenario="klez", seed=3, style="modern", scale=0.3).parent
    b = simulate_large(tmp_path / "b", DAY, 1, scenario="klez", seed=3, style="modern", scale=0.3).parent
    c = simulate_large(tmp_path / "c", DAY, 1, scenario="klez", seed=4, style="modern", scale=0.3).parent
    names = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for rel in names:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
        if rel.parts[0] == "logs":
            assert (a / rel).stat().st_mtime == (b / rel).stat().st_mtime, rel
    assert (a / "truth.json").read_bytes() != (c / "truth.json").read_bytes()


def test_the_site_grows_with_the_scale():
    small, big = build_world(1), build_world(20)
    assert big.n_users == 20 * small.n_users == 8000
    assert len(big.pc_ip) == 20 * len(small.pc_ip) and big.pc_ip.n_unique() == len(big.pc_ip)
    assert big.pc_name.n_unique() == len(big.pc_name)
    assert len(big.dom_name) > 15 * len(small.dom_name) and big.dom_name.n_unique() == len(big.dom_name)
    assert big.host_ip.n_unique() == len(big.host_ip)
    assert big.users.n_unique() == big.n_users
    assert len(big.labs["names"]) == len(big.digests["names"]) == 20 and len(big.bulks) == 2
    assert small.pc_ip[:3].to_list() == ["10.1.2.10", "10.1.2.11", "10.1.2.12"]  # the small site's addresses
    assert small.pc_name[241 + 67] == "pc77.example.ac.jp"


def test_simulate_site_dispatches_large_scales(tmp_path, monkeypatch):
    import mmw_tasks.simulate.large as large

    calls = []
    monkeypatch.setattr(large, "simulate_large", lambda *a, **k: calls.append(a) or Path("x"))
    simulate_site(tmp_path, DAY, 1, scenario="klez", seed=1, scale=LARGE_SCALE, style="modern")
    assert calls == [(tmp_path, DAY, 1, "klez", 1, "modern", LARGE_SCALE)]


def test_scenarios_the_large_simulator_lacks_are_refused(tmp_path):
    with pytest.raises(ValueError, match="clean, klez, frethem, dns_anomaly, full"):
        simulate_large(tmp_path, DAY, 2, scenario="klez,quiet", scale=1)
    with pytest.raises(ValueError, match="quiet"):
        simulate_large(tmp_path, DAY, 1, scenario="klez+quiet", scale=1)


def test_a_day_may_join_scenarios(tmp_path):
    toml = simulate_large(tmp_path, DAY, 1, scenario="frethem+dns_anomaly", seed=2, scale=0.3)
    kinds = {i["kind"] for i in truth_of(toml)["days"][DAY.isoformat()]["incidents"]}
    assert {"deferred_surge", "dns_anomaly"} <= kinds and "mmw_suspect" not in kinds
