"""A site of mail servers only runs (issue #17, item 5). On main it passed the config check and
then failed in the aggregate stage with a DuckDB traceback ("dns_queries does not exist"). Now the
report says there is no DNS server, Dq is 0 and the model null (but q, which mail alone gives),
the DNS-dependent detection is skipped, and host detection still names the infected host."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from mmw_tasks import lake, pipeline
from mmw_tasks.config import load_site

DAYS = ("2002-02-15", "2002-02-16")


@pytest.fixture(scope="module")
def mail_only(klez_site, tmp_path_factory) -> Path:
    """The klez site's mail server alone (its logs where they are), with a lake of its own."""
    mx = next(s for s in load_site(klez_site).servers if s.role == "mail")
    toml = tmp_path_factory.mktemp("mail-only") / "site.toml"
    toml.write_text(
        '[site]\nname = "mail-only"\ntimezone = "Asia/Tokyo"\nlocal_domains = ["example.ac.jp"]\n'
        f'[[servers]]\nname = "{mx.name}"\nrole = "mail"\nformat = "{mx.format}"\n'
        f'source = "{klez_site.parent / mx.source}"\n'
    )
    for day in DAYS:
        r = subprocess.run(
            [sys.executable, "-m", "mmw_tasks", "run", "--config", str(toml), "--date", day],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        assert r.returncode == 0, r.stderr
    return toml


def report(toml: Path, day: str) -> dict:
    return json.loads((load_site(toml).lake / "reports" / f"day={day}" / "report.json").read_text())


def test_the_report_says_there_is_no_dns_server(mail_only, klez_site):
    rep, full = report(mail_only, DAYS[1]), report(klez_site, DAYS[1])
    assert rep["dns_servers"] == [] and full["dns_servers"] == ["1dns"]
    assert rep["notes"][0].startswith("No DNS server")
    assert rep["totals"]["dq"] == 0
    assert {k: v for k, v in rep["totals"].items() if k != "dq"} == {
        k: v for k, v in full["totals"].items() if k != "dq"
    }
    # every coefficient null but q; the day counts as having no fit (not judged, not in any band)
    verdict = {"q", "reliable", "unreliable_because"}
    assert {k: v for k, v in rep["model"].items() if k not in verdict} == dict.fromkeys(rep["model"].keys() - verdict)
    assert rep["model"]["reliable"] is False and rep["model"]["unreliable_because"] == ["no fit this day"]
    assert rep["model"]["q"] == full["model"]["q"]
    assert "no DNS server" in (load_site(mail_only).lake / "reports" / f"day={DAYS[1]}" / "report.md").read_text()


def test_host_detection_still_names_the_infected_host(mail_only, klez_site):
    truth = json.loads((klez_site.parent / "truth.json").read_text())["days"][DAYS[1]]["incidents"]
    infected = {i["client_ip"] for i in truth if i["kind"] == "mmw_suspect"}
    rep = report(mail_only, DAYS[1])
    assert {i["client_ip"] for i in rep["incidents"] if i["kind"] == "mmw_suspect"} == infected
    assert not [i for i in rep["incidents"] if i["kind"] == "dns_anomaly"]


def test_dns_queries_is_an_empty_view(mail_only):
    root = load_site(mail_only).lake
    assert not lake.has_files(root, "dns_queries")
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "mmw_tasks",
            "sql",
            "--config",
            str(mail_only),
            "--format",
            "csv",
            "select count(*) as n from dns_queries",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0 and r.stdout.splitlines() == ["n", "0"], r.stderr
    con = lake.connect(root)
    assert con.sql("select count(*) from dns_queries").fetchone() == (0,)
    assert pipeline.is_done(mail_only, DAYS[1])
