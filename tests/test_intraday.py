"""The day so far (mmw_tasks/intraday.py): `mmw run --partial [--until]`, its area, alert once.

One simulated site: a clean day, committed by the daily run (the baseline), then a klez day whose
worm starts at 14:30 (truth.json). The day is replayed as it stood at several times; afterwards the
daily run must give the same lake as on a copy of the site that never saw a partial run.
"""

from __future__ import annotations

import json
import shutil
from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from mmw_tasks import intraday, pipeline
from mmw_tasks.cli import main
from mmw_tasks.config import ConfigError, load_site

DAY = date(2002, 2, 16)
WORM = "10.1.3.238"


@pytest.fixture(scope="module")
def worm_day(tmp_path_factory) -> tuple[Path, Path]:
    """(site.toml with 2002-02-15 done, a copy of it made before any partial run)."""
    from mmw_tasks.simulate import simulate_site

    base = tmp_path_factory.mktemp("intraday")
    toml = simulate_site(base / "site", DAY - timedelta(days=1), 2, scenario="clean,klez", seed=7)
    pipeline.run_day(toml, DAY - timedelta(days=1), log=lambda m: None, mail=False)
    shutil.copytree(base / "site", base / "daily_only", symlinks=True)
    return toml, base / "daily_only" / "site.toml"


def _onset(toml: Path) -> datetime:
    truth = json.loads((toml.parent / "truth.json").read_text())
    worm = [i for i in truth["days"][str(DAY)]["incidents"] if i["kind"] == "mmw_suspect"]
    return datetime.fromisoformat(worm[0]["start"])


def _suspects(run: intraday.PartialRun) -> list[dict]:
    rep = json.loads(Path(run["report"]).read_text())
    return [i for i in rep["incidents"] if i["kind"] == "mmw_suspect"]


def _day_partitions(lake: Path) -> list[Path]:
    return sorted(p for p in lake.glob(f"*/day={DAY}") if p.parent.name != "partial")


def test_before_the_onset_no_suspect(worm_day):
    toml, _ = worm_day
    onset = _onset(toml)
    until = (onset - timedelta(minutes=10)).strftime("%H:%M")
    run = intraday.run_partial(toml, DAY, until)
    assert _suspects(run) == []
    rep = json.loads(Path(run["report"]).read_text())
    assert rep["partial"] is True and rep["as_of"] == f"{DAY}T{until}:00+09:00"
    # intervals only up to as_of: none at or after it
    assert max(datetime.fromisoformat(i["interval_start"]) for i in rep["intervals"]) < datetime.fromisoformat(
        rep["as_of"]
    )


def test_thirty_minutes_after_the_onset_the_worm_is_a_suspect(worm_day):
    toml, _ = worm_day
    onset = _onset(toml)
    until = (onset + timedelta(minutes=30)).strftime("%H:%M")
    run = intraday.run_partial(toml, DAY, until)
    found = _suspects(run)
    assert [i["client_ip"] for i in found] == [WORM]
    flagged = datetime.fromisoformat(found[0]["evidence"]["first_flagged"])
    assert flagged - onset <= timedelta(minutes=20)
    # nothing after as_of was read: the incident ends before it
    assert datetime.fromisoformat(found[0]["end"]) < datetime.fromisoformat(run["as_of"])
    report_dir = Path(run["report"]).parent
    assert (
        (report_dir / "report.md")
        .read_text()
        .splitlines()[0]
        .startswith(f"**Intraday report (partial, as of {until} Asia/Tokyo)")
    )
    html = (report_dir / "report.html").read_text()
    assert html.index(f"partial, as of {until}") < html.index("<h1>")


def test_the_earliest_replay_that_flags_the_worm(worm_day):
    """Replays every 10 minutes from the onset: the first with the suspect (the alert latency)."""
    toml, _ = worm_day
    onset = _onset(toml)
    first = None
    for minutes in range(10, 40, 10):
        run = intraday.run_partial(toml, DAY, (onset + timedelta(minutes=minutes)).strftime("%H:%M"))
        if _suspects(run):
            first = minutes
            break
    assert first is not None and first <= 30


def test_a_partial_run_leaves_the_lake_alone(worm_day):
    toml, _ = worm_day
    site = load_site(toml)
    intraday.run_partial(toml, DAY, "15:00")
    assert _day_partitions(site.lake) == []  # no dataset, report or trend row of the day
    assert not (site.lake / "reports" / f"day={DAY}").exists()
    assert not pipeline.is_done(toml, DAY)
    assert (site.lake / "partial" / str(DAY) / "reports" / f"day={DAY}" / "report.json").is_file()
    # earlier days are linked, not copied; nothing of the day itself is a link
    area = intraday.area_dir(site.lake, DAY)
    assert (area / "intervals" / f"day={DAY - timedelta(days=1)}").is_symlink()
    assert not (area / "intervals" / f"day={DAY}").is_symlink()


def test_a_replay_sees_no_later_day(worm_day):
    """Days after the replayed one (and the day itself, once done) are not in the area."""
    toml, _ = worm_day
    site = load_site(toml)
    earlier = DAY - timedelta(days=1)
    run = intraday.run_partial(toml, earlier, "15:00")  # a replay of the committed day
    area = Path(run["area"])
    assert not list(area.glob(f"*/day={DAY}")) and not any(p.is_symlink() for p in area.glob(f"*/day={earlier}"))
    assert pipeline.is_done(toml, earlier)
    intraday.discard(site.lake, earlier)


def test_alert_once(worm_day):
    toml, _ = worm_day
    run = intraday.run_partial(toml, DAY, "15:00")
    sent: list[dict] = []
    first = intraday.notify_new(run, sent.append)
    assert [i["client_ip"] for i in first[0]["incidents"]] == [WORM] and sent == first
    assert "mmw_suspect" in first[0]["subject"] and first[0]["report"].endswith("report.html")
    later = intraday.run_partial(toml, DAY, "16:00")  # the same worm, a later as_of
    assert intraday.notify_new(later, sent.append) == [] and len(sent) == 1
    state = intraday.load_state(Path(run["area"]) / intraday.STATE)
    assert list(state["notified"]) == [f"mmw_suspect|{WORM}||"]


def test_a_failed_send_is_tried_again(worm_day, tmp_path):
    toml, _ = worm_day
    run = intraday.run_partial(toml, DAY, "15:00")
    (Path(run["area"]) / intraday.STATE).unlink(missing_ok=True)

    def broken(msg: dict) -> None:
        raise OSError("mail server down")

    with pytest.raises(OSError):
        intraday.notify_new(run, broken)
    assert len(intraday.notify_new(run, None)) == 1


def test_new_alerts_by_kind_and_who():
    rep = {
        "incidents": [
            {"kind": "mmw_suspect", "client_ip": "10.0.0.1", "sender": None},
            {"kind": "bulk_sender", "client_ip": "10.0.0.2", "sender": "a@x"},
            {"kind": "deferred_surge", "domain": "slow.example"},
            {"kind": "mmw_suspect", "client_ip": "127.0.0.1", "sender": "w@x"},
        ]
    }
    state: dict = {"notified": {}}
    first = intraday.new_alerts(rep, state)
    assert [i["kind"] for i in first] == ["mmw_suspect", "deferred_surge", "mmw_suspect"]  # benign: never
    state = intraday.remember(state, first, "2002-02-16T15:00:00+09:00")
    assert intraday.new_alerts(rep, state) == []
    rep["incidents"].append({"kind": "mmw_suspect", "client_ip": "127.0.0.1", "sender": "other@x"})
    assert [i["sender"] for i in intraday.new_alerts(rep, state)] == ["other@x"]


def _snapshot(lake: Path, roots: tuple[Path, ...]) -> dict[str, object]:
    """Every file of the lake, Parquet as rows, text as text, with the sites' own paths made alike;
    not raw/ (the intake's cache of what it scanned, with wall-clock times: no result of a day's)."""

    def alike(text: str) -> str:
        for r in roots:
            text = text.replace(str(r), "<site>")
        return text

    out: dict[str, object] = {}
    for p in sorted(lake.rglob("*")):
        rel = str(p.relative_to(lake))
        # the lake as readers see it: the public links, not the generations behind them (their
        # names hold the time of the run) nor DuckDB's spill folder
        if p.is_dir() or rel.startswith(("raw/", ".days/", ".spill/")):
            continue
        if p.name == "mmw.duckdb":  # a database file: its bytes hold the lake's path
            out[rel] = "catalog"
        elif p.suffix == ".parquet":
            df = pl.read_parquet(p)
            for r in roots:
                df = df.with_columns(
                    pl.col(c).str.replace_all(str(r), "<site>", literal=True)
                    for c, t in df.schema.items()
                    if t == pl.String
                )
            out[rel] = df
        else:
            out[rel] = alike(p.read_text(errors="replace"))
    return out


def test_the_daily_run_after_partial_runs_gives_the_daily_only_lake(worm_day):
    toml, daily_only = worm_day
    intraday.run_partial(toml, DAY, "15:00")
    for t in (toml, daily_only):
        pipeline.run_day(t, DAY, log=lambda m: None, mail=False)
    lake, ref = load_site(toml).lake, load_site(daily_only).lake
    assert not (lake / "partial").exists()
    roots = (toml.parent, daily_only.parent)
    got, want = _snapshot(lake, roots), _snapshot(ref, roots)
    assert sorted(got) == sorted(want)
    differ = [
        k
        for k in want
        if not (got[k].equals(want[k]) if isinstance(want[k], pl.DataFrame) else got[k] == want[k])  # type: ignore[union-attr]
    ]
    assert differ == []
    assert pipeline.is_done(toml, DAY)


# ---------------------------------------------------------------- the command and the config


def test_until_needs_partial_and_a_time(worm_day, capsys):
    toml, _ = worm_day
    assert main(["run", "--config", str(toml), "--date", str(DAY), "--until", "15:00"]) == 2
    assert main(["run", "--config", str(toml), "--date", str(DAY), "--partial", "--until", "3pm"]) == 2
    assert main(["run", "--config", str(toml), "--date", str(DAY), "--partial", "--until", "00:00"]) == 2
    assert "--until" in capsys.readouterr().err


def test_as_of_is_now_capped_at_the_day_end(worm_day):
    site = load_site(worm_day[0])
    later = datetime(2002, 2, 18, 9, 0, tzinfo=site.tz)
    assert intraday.as_of_for(site, DAY, None, later).isoformat() == "2002-02-17T00:00:00+09:00"
    assert intraday.as_of_for(site, DAY, "24:00").isoformat() == "2002-02-17T00:00:00+09:00"
    noon = datetime(2002, 2, 16, 12, 34, tzinfo=site.tz)
    assert intraday.plan(worm_day[0], None, None, noon)["as_of"] == "2002-02-16T12:34:00+09:00"


def _with_schedule(tmp_path: Path, worm_day, text: str) -> Path:
    toml = tmp_path / "site.toml"
    toml.write_text(worm_day[0].read_text() + f"\n[schedule]\n{text}\n")
    return toml


@pytest.mark.parametrize(
    "text, every",
    [
        ("", timedelta(minutes=10)),
        ('intraday_every = "5m"', timedelta(minutes=5)),
        ('intraday_every = "off"', None),
        ("intraday_every = 0", None),
    ],
)
def test_intraday_every(tmp_path, worm_day, text, every):
    assert load_site(_with_schedule(tmp_path, worm_day, text)).schedule.intraday_every == every


@pytest.mark.parametrize("value", ['"soon"', "10", '"30s"', '"1d"', "true", '"24h"'])
def test_intraday_every_is_checked(tmp_path, worm_day, value):
    with pytest.raises(ConfigError, match="intraday_every"):
        load_site(_with_schedule(tmp_path, worm_day, f"intraday_every = {value}"))
