"""Gaps are told (issue #17, item 6; contract section 5). On main a truncated log (half the day
missing) was reported with rc 0 and no word of the gap: the fetch stage computed gap warnings
between files and `run_day` dropped them, and a single truncated file was not seen at all. Now
coverage is measured on the parsed lines (mmw_tasks/report/gaps.py): a server with no line over
part of the day is named in report.json (`gaps`, `partial`, `totals.partial`), report.md,
report.html, `mmw run`'s output and the notification; a quiet night is not a gap."""

from __future__ import annotations

import json
import os
from datetime import date, timedelta
from pathlib import Path

import pytest
from test_sql_minisite import DAY, copy_minisite

from mmw_tasks import lake, pipeline
from mmw_tasks import sql as sqlfiles
from mmw_tasks.config import load_site
from mmw_tasks.parse.stamps import local_day_bounds
from mmw_tasks.report import notify
from mmw_tasks.report.headline import QUIET
from mmw_tasks.report.model import report_dir

GAP = "1mx: no lines 13:04-24:00 (the day is partial)"


def report_of(toml: Path, day: str = DAY) -> dict:
    return json.loads((report_dir(load_site(toml), day) / "report.json").read_text())


def test_a_truncated_log_is_told_in_every_output(truncated_site):
    toml, r = truncated_site
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().endswith("reports/day=2002-02-16/report.json")
    # mmw run's output: the gap in the lines, and the stretch between files no file covers
    assert f"{DAY} {GAP}" in r.stderr.splitlines(), r.stderr
    assert any(ln.startswith(f"{DAY} 1mx: no file covers {DAY} 13:04:") for ln in r.stderr.splitlines()), r.stderr
    rep = report_of(toml)
    [gap] = rep["gaps"]
    assert gap["server"] == "1mx" and gap["text"] == GAP
    assert gap["from"].startswith("2002-02-16T13:04:") and gap["from"].endswith("+09:00")
    assert gap["to"] == "2002-02-17T00:00:00+09:00"
    assert gap["expected"] > 300  # minutes with a line it would have had at its rate before 13:04
    assert rep["partial"] is True and rep["totals"]["partial"] is True and rep["missing_servers"] == []
    assert rep["notes"][0].startswith(f"GAP: {GAP}")
    folder = report_dir(load_site(toml), DAY)
    # report.md and mmw run's output: the verdict first, the gap right after it
    md = [ln for ln in (folder / "report.md").read_text().splitlines() if ln.strip()]
    verdict = rep["headline"] or [QUIET]
    assert md[1 : 1 + len(verdict)] == [f"**{v}**  " for v in verdict]
    assert md[1 + len(verdict)] == f"**Partial day:** {GAP}.  "
    assert r.stdout.splitlines() == [*verdict, f"GAP {GAP}", str(folder / "report.json")]
    # report.html (the templated page): the gap in the verdict section, after the headline
    page = (folder / "report.html").read_text()
    top = page.index('<section id="verdict">')
    section = page[top : page.index("</section>", top)]
    assert section.index('class="headline"') < section.index(f"<b>Partial day:</b> {GAP}.") < section.index("benign")
    assert not pipeline.is_done(toml, DAY)  # a partial day is redone by the next backfill


def test_the_notification_tells_the_gap(truncated_site):
    toml, _ = truncated_site
    msg = notify.incident_message("example-u", report_of(toml), "report.json", ("mmw_suspect",))
    assert msg is not None and msg["partial"] is True
    assert "PARTIAL report (gaps in 1mx)" in msg["subject"]
    assert f"- {GAP}" in msg["text"].splitlines()
    assert [g["text"] for g in msg["gaps"]] == [GAP]


def test_a_server_with_no_line_in_the_day_is_a_gap_of_the_whole_day(tmp_path):
    """Its files cover the day (syslogd's restart at 04:02), but no query of the day is in them."""
    toml = copy_minisite(tmp_path / "s")
    for name in ("messages", "messages.1"):
        f = toml.parent / "logs" / "1dns" / name
        mtime = f.stat().st_mtime
        f.write_text("".join(ln for ln in f.read_text().splitlines(True) if "iplog" not in ln or "Feb 16" not in ln))
        os.utime(f, (mtime, mtime))
    pipeline.run_day(toml, DAY, log=lambda m: None)
    rep = report_of(toml)
    assert [g["text"] for g in rep["gaps"]] == ["1dns: no lines 00:00-24:00 (the day is partial)"]
    assert rep["gaps"][0]["expected"] is None and rep["totals"]["dq"] == 0


def test_the_sparse_mini_site_has_holes_but_no_gap(tmp_path):
    """The mini site's servers log a few lines after midnight, at 03:09 and a burst at 14:30:
    hours without a line between them, and as quiet around them as in them."""
    toml = copy_minisite(tmp_path / "s")
    pipeline.run_day(toml, DAY, log=lambda m: None)
    for server in ("1dns", "1mx"):
        assert holes(toml, DAY)[server] == [("00:05", "03:09"), ("03:09", "14:30"), ("14:30", "24:00")]
    rep = report_of(toml)
    assert rep["gaps"] == [] and rep["partial"] is False and rep["totals"]["partial"] is False


def holes(toml: Path, day: str) -> dict[str, list[tuple[str, str]]]:
    site = load_site(toml)
    d = date.fromisoformat(day)
    start, end = local_day_bounds(d, site.timezone)
    rows = sqlfiles.query(
        lake.connect(site.lake),
        "gaps/server_holes",
        {
            "day": d,
            "day_start": start,
            "day_end": end,
            "servers": [s.name for s in site.servers],
            "min_gap": timedelta(hours=site.thresholds.gap_hours),
            "near": timedelta(hours=site.thresholds.gap_hours),
        },
    ).pl()
    out: dict[str, list[tuple[str, str]]] = {}
    for server, a, b in rows.select("server", "hole_start", "hole_end").iter_rows():
        clock = [x.astimezone(site.tz).strftime("%H:%M") if x < end else "24:00" for x in (a, b)]
        out.setdefault(server, []).append((clock[0], clock[1]))
    return out


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """A small site (a hundredth of the papers' traffic: some 300 mail lines a day), quiet nights."""
    from mmw_tasks.simulate import simulate_site

    toml = simulate_site(tmp_path_factory.mktemp("tiny"), date(2002, 2, 11), 2, scenario="clean", seed=5, scale=0.01)
    for day in ("2002-02-11", "2002-02-12"):
        pipeline.run_day(toml, day, log=lambda m: None, mail=False)
    return toml


def test_a_quiet_night_of_a_small_server_is_no_gap(tiny):
    nights = [holes(tiny, day).get("1mx", []) for day in ("2002-02-11", "2002-02-12")]
    assert any(nights), nights  # three hours and more without a mail line at night ...
    for day in ("2002-02-11", "2002-02-12"):
        assert report_of(tiny, day)["gaps"] == []  # ... and no gap
