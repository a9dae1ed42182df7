"""The `mmw` command as a user types it: exit codes, one-line errors, sql output, backfill skips."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT
from test_sql_minisite import copy_minisite


def mmw(*args: str, cwd=ROOT, config_env: str | None = None) -> subprocess.CompletedProcess:
    """`mmw args` in `cwd`, with MMW_SITE_CONFIG set to `config_env` (unset when None)."""
    env = {k: v for k, v in os.environ.items() if k != "MMW_SITE_CONFIG"}
    if config_env is not None:
        env["MMW_SITE_CONFIG"] = config_env
    return subprocess.run([sys.executable, "-m", "mmw_tasks", *args], cwd=cwd, env=env, capture_output=True, text=True)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return copy_minisite(tmp_path_factory.mktemp("cli") / "site")


@pytest.fixture(scope="module")
def ran(site) -> subprocess.CompletedProcess:
    """`mmw run` of the mini site's day, once for the tests that need the day done (each command
    starts an interpreter whose imports alone take a CPU-second)."""
    return mmw("run", "--config", str(site), "--date", "2002-02-16")


def test_run_prints_the_headline_then_the_report_path(ran):
    assert ran.returncode == 0, ran.stderr
    *verdict, path = ran.stdout.strip().splitlines()
    assert path.endswith("reports/day=2002-02-16/report.json")
    rep = json.loads(open(path).read())
    assert rep["totals"]["dq"] == 8
    assert verdict == (rep["headline"] or ["no incident needs attention"])


def test_sql_formats(site, ran):
    r = mmw(
        "sql",
        "--config",
        str(site),
        "--format",
        "csv",
        "select server, sum(lines_read) as lines from line_accounting group by all order by server",
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["server,lines", "1dns,9", "1mx,13"]
    j = json.loads(mmw("sql", "--config", str(site), "--format", "json", "select sum(dq) as dq from intervals").stdout)
    assert j == [{"dq": 8}]
    bad = mmw("sql", "--config", str(site), "select * from no_such_table")
    assert bad.returncode == 2 and "no_such_table" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_config_error_names_the_key(tmp_path, site):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(site.read_text().replace('format = "iplog"', 'format = "djbdns"'))
    r = mmw("run", "--config", str(cfg), "--date", "2002-02-16")
    assert r.returncode == 2
    assert "key 'format'" in r.stderr and "bad.toml" in r.stderr and "'1dns'" in r.stderr


def test_bad_usage_exits_2(site):
    assert mmw("run", "--config", str(site), "--date", "16/02/2002").returncode == 2
    assert mmw("frobnicate").returncode == 2


def test_day_without_files_fails_naming_server_and_day(site):
    r = mmw("run", "--config", str(site), "--date", "2002-03-20")
    assert r.returncode == 1
    assert "1dns" in r.stderr and "2002-03-20" in r.stderr and "messages" in r.stderr


def test_backfill_skips_days_done_unless_forced(site, ran):
    r = mmw("backfill", "--config", str(site), "--from", "2002-02-16", "--to", "2002-02-16")
    assert r.returncode == 0 and "0 run, 1 skipped" in r.stdout
    assert "\r" not in r.stderr and r.stderr.startswith("2002-02-16 skipped (already done): "), r.stderr
    r = mmw("backfill", "--config", str(site), "--from", "2002-02-16", "--to", "2002-02-16", "--force")
    assert r.returncode == 0 and "1 run, 0 skipped" in r.stdout


def test_config_may_be_left_out(site, ran, tmp_path):
    """Without --config: the file MMW_SITE_CONFIG names, else ./site.toml (contract section 2);
    --config wins over both."""
    count = "select sum(dq) as dq from intervals"
    assert site.name == "site.toml"
    here = mmw("sql", "--format", "csv", count, cwd=site.parent)  # ./site.toml
    assert here.returncode == 0 and here.stdout.splitlines() == ["dq", "8"], here.stderr
    env = mmw("sql", "--format", "csv", count, cwd=tmp_path, config_env=str(site))
    assert env.returncode == 0 and env.stdout.splitlines() == ["dq", "8"], env.stderr
    other = tmp_path / "other.toml"
    other.write_text(site.read_text().replace('lake = "data_lake"', f'lake = "{site.parent / "data_lake"}"'))
    wins = mmw("sql", "--config", str(site), "--format", "csv", count, cwd=tmp_path, config_env=str(tmp_path / "no"))
    assert wins.returncode == 0 and wins.stdout.splitlines() == ["dq", "8"], wins.stderr
    b = mmw("backfill", "--from", "2002-02-16", "--to", "2002-02-16", cwd=tmp_path, config_env=str(other))
    assert b.returncode == 0 and "0 run, 1 skipped" in b.stdout, b.stdout + b.stderr
    r = mmw("run", "--date", "2002-02-16", cwd=site.parent)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == ran.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize(
    "args",
    [
        ("run", "--date", "2002-02-16"),
        ("backfill", "--from", "2002-02-16", "--to", "2002-02-16"),
        ("sql", "select 1"),
    ],
)
def test_no_config_anywhere_is_one_line_naming_the_three_places(tmp_path, args):
    r = mmw(*args, cwd=tmp_path)
    assert r.returncode == 2 and r.stdout == ""
    [line] = r.stderr.strip().splitlines()
    assert line.startswith("mmw: no site config: ") and "Traceback" not in r.stderr, line
    assert "--config" in line and "MMW_SITE_CONFIG" in line and "./site.toml" in line, line
    assert ("--lake" in line) == (args[0] == "sql"), line
    gone = mmw(*args, cwd=tmp_path, config_env=str(tmp_path / "gone.toml"))
    assert gone.returncode == 2 and gone.stderr.strip() == (
        f"mmw: MMW_SITE_CONFIG={tmp_path / 'gone.toml'}: no such config file "
        "(it names the site config when --config is not given)"
    )


def test_version_is_the_installed_packages_and_exits_0(tmp_path):
    """`mmw --version` (contract section 2): the version of the installed package, on stdout, exit
    0, from the console script and from `python -m mmw_tasks`, with no subcommand and no config."""
    from importlib.metadata import version

    want = f"mmw {version('mmw')}"
    assert want != "mmw unknown"
    script = Path(sys.executable).with_name("mmw")
    for r in (
        mmw("--version", cwd=tmp_path),
        subprocess.run([str(script), "--version"], capture_output=True, text=True),
    ):
        assert r.returncode == 0 and r.stdout.strip() == want and r.stderr == "", (r.stdout, r.stderr)


def _parsers():
    """(name, parser) of `mmw` and each of its subcommands."""
    import argparse

    from mmw_tasks.cli import build_parser

    top = build_parser()
    out = [("mmw", top)]
    for action in top._actions:
        if isinstance(action, argparse._SubParsersAction):
            out += [(f"mmw {name}", sub) for name, sub in action.choices.items()]
    return out


def test_every_option_has_help_with_its_format_and_an_example():
    """Help on every option; an option that takes a value shows its format (a metavar such as
    YYYY-MM-DD or a list of choices, never argparse's FROM_) and an example (issue 20, item 5)."""
    import argparse

    parsers = _parsers()
    assert {name for name, _ in parsers} >= {"mmw run", "mmw backfill", "mmw sql", "mmw simulate", "mmw demo"}
    for name, parser in parsers:
        text = parser.format_help()
        assert "contract" not in text.lower() and "FROM_" not in text, (name, text)
        for action in parser._actions:
            flag = "/".join(action.option_strings) or action.dest
            assert action.help and action.help != argparse.SUPPRESS, f"{name} {flag}: no help"
            if action.option_strings and action.nargs != 0 and not isinstance(action, argparse._VersionAction):
                assert action.metavar or action.choices, f"{name} {flag}: no format"
                assert "_" not in (action.metavar or ""), f"{name} {flag}: metavar {action.metavar}"
                assert "e.g. " in action.help, f"{name} {flag}: no example in {action.help!r}"


def test_help_as_typed():
    for args in (("--help",), ("run", "--help"), ("backfill", "--help")):
        r = mmw(*args)
        assert r.returncode == 0 and "contract" not in r.stdout.lower(), r.stdout
    assert "--from YYYY-MM-DD" in mmw("backfill", "--help").stdout


WORM = 'WORM SUSPECT 10.1.3.102 (pc102.example.ac.jp) 14:30-17:29: 1,195 "User unknown", first flagged 14:40'


@pytest.fixture
def fake_days(tmp_path, monkeypatch):
    """A site whose backfill of 2002-02-14..17 runs in-process in no time: the 14th is done (its
    report has the worm), the 15th runs quiet, the 16th runs with the worm, the 17th fails."""
    from mmw_tasks import pipeline
    from mmw_tasks.config import load_site
    from mmw_tasks.failures import StageError
    from mmw_tasks.report.model import report_dir

    toml = copy_minisite(tmp_path / "site")
    site = load_site(toml)

    def write(d, headline):
        path = report_dir(site, d) / "report.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        incidents = [{"kind": "mmw_suspect"}, {"kind": "mailing_list"}] if headline else [{"kind": "mailing_list"}]
        rep = {"day": str(d), "headline": headline, "incidents": incidents, "partial": False, "gaps": []}
        path.write_text(json.dumps(rep))
        return path

    def run_day(config, d, log=None, mail=True):
        if str(d) == "2002-02-17":
            raise StageError(str(d), "fetch", "no files for the day", server="1mx")
        return {"report": {"report": str(write(d, [WORM] if str(d) == "2002-02-16" else []))}}

    write("2002-02-14", [WORM])
    monkeypatch.setattr(pipeline, "is_done", lambda config, d: str(d) == "2002-02-14")
    monkeypatch.setattr(pipeline, "run_day", run_day)
    return toml


def _backfill(toml, *more):
    from mmw_tasks.cli import main

    return main(["backfill", "--config", str(toml), "--from", "2002-02-14", "--to", "2002-02-17", *more])


def test_backfill_off_a_terminal_says_one_plain_line_a_day(fake_days, capsys):
    """Under cron (stderr not a terminal): no progress bar, no \\r frames; one line a day on stderr,
    then on stdout the counts, the failed day, and each day with incidents needing attention: its
    headline and its report."""
    assert _backfill(fake_days) == 1
    out, err = capsys.readouterr()
    assert "\r" not in err and "[###" not in err and "\x1b" not in out + err
    assert err.splitlines() == [
        "2002-02-14 skipped (already done): 1 incident(s) need attention",
        "2002-02-15 done: no incident needs attention",
        "2002-02-16 done: 1 incident(s) need attention",
        "2002-02-17 failed: run 2002-02-17: fetch 1mx: no files for the day",
    ]
    lake = fake_days.parent / "data_lake" / "reports"
    assert out.splitlines() == [
        "backfill 2002-02-14..2002-02-17: 2 run, 1 skipped (already done), 1 failed",
        "  2002-02-17: run 2002-02-17: fetch 1mx: no files for the day",
        "2002-02-14: 1 incident(s) need attention",
        f"  {WORM}",
        f"  {lake / 'day=2002-02-14' / 'report.json'}",
        "2002-02-16: 1 incident(s) need attention",
        f"  {WORM}",
        f"  {lake / 'day=2002-02-16' / 'report.json'}",
    ]


def test_backfill_on_a_terminal_draws_the_bar(fake_days, capsys, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert _backfill(fake_days) == 1
    out, err = capsys.readouterr()
    frames = err.split("\r")
    assert len(frames) == 6 and "4/4 done" in frames[-1] and err.endswith("\n"), err
    assert "skipped (already done):" not in err and "\x1b" not in out + err
    assert out.splitlines()[0] == "backfill 2002-02-14..2002-02-17: 2 run, 1 skipped (already done), 1 failed"


def test_run_json_is_one_document_on_stdout(site, ran):
    """`mmw run --json`: stdout is one JSON document, the day as its report.json says it."""
    r = mmw("run", "--config", str(site), "--date", "2002-02-16", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    path = ran.stdout.strip().splitlines()[-1]
    rep = json.loads(open(path).read())
    assert doc["day"] == "2002-02-16" and doc["report"] == path
    assert doc["headline"] == rep["headline"] and doc["partial"] == rep["partial"]
    assert sum(doc["incidents"].values()) == len(rep["incidents"])
    assert doc["gaps"] == [g["text"] for g in rep["gaps"]]


def test_run_partial_json(fake_days, capsys, monkeypatch):
    from mmw_tasks import intraday
    from mmw_tasks.cli import main

    report = fake_days.parent / "data_lake" / "reports" / "day=2002-02-14" / "report.json"
    run = {"report": str(report), "as_of": "2002-02-14T15:00:00+09:00", "incidents": 2}
    monkeypatch.setattr(intraday, "run_partial", lambda config, day, until, log: run)
    assert main(["run", "--config", str(fake_days), "--date", "2002-02-14", "--partial", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["as_of"] == run["as_of"] and doc["headline"] == [WORM] and doc["report"] == str(report)


def test_backfill_json_is_one_document_on_stdout(fake_days, capsys):
    assert _backfill(fake_days, "--json") == 1
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert (doc["from"], doc["to"], doc["run"], doc["skipped"]) == ("2002-02-14", "2002-02-17", 2, 1)
    assert doc["failed"] == [{"day": "2002-02-17", "error": "run 2002-02-17: fetch 1mx: no files for the day"}]
    assert [(d["day"], d["status"], d["headline"], d["incidents"]) for d in doc["days"]] == [
        ("2002-02-14", "skipped", [WORM], {"mailing_list": 1, "mmw_suspect": 1}),
        ("2002-02-15", "done", [], {"mailing_list": 1}),
        ("2002-02-16", "done", [WORM], {"mailing_list": 1, "mmw_suspect": 1}),
    ]
    assert all(d["report"].endswith(f"day={d['day']}/report.json") for d in doc["days"])
    assert len(err.splitlines()) == 4  # the plain lines a day stay on stderr


@pytest.mark.parametrize("no_color", [None, "1"])
def test_no_colour_on_a_terminal_or_not_whatever_no_color_says(fake_days, capsys, monkeypatch, no_color):
    """mmw colours nothing (NO_COLOR holds trivially): no escape sequence in help, backfill (bar
    or plain lines) or --json, with stderr a terminal or not. Airflow's lines in `mmw demo` are
    stripped of theirs (tests/test_dagtest.py)."""
    from mmw_tasks.cli import build_parser

    if no_color is None:
        monkeypatch.delenv("NO_COLOR", raising=False)
    else:
        monkeypatch.setenv("NO_COLOR", no_color)
    for tty in (False, True):
        monkeypatch.setattr(sys.stderr, "isatty", lambda tty=tty: tty)
        _backfill(fake_days)
        _backfill(fake_days, "--json")
        out, err = capsys.readouterr()
        assert out and err and "\x1b" not in out + err, (tty, out, err)
    for _, parser in _parsers():
        assert "\x1b" not in parser.format_help()
    assert "\x1b" not in build_parser().format_usage()
