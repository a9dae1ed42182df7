"""A day is committed whole or not at all (docs/reliability.md, "A day is whole or absent").

Every output of a day (each dataset's partition, the report's files, the trend row) is written
under a new generation of the day and switched in with one rename (mmw_tasks/generations.py). The
crash test kills a real `mmw run` (SIGKILL) at instants spread over the run, inside the Parquet
writes and inside the commit, and checks each time that the lake holds exactly the old day or the
new one, that backfill knows which, and that the next plain run completes the day and leaves no
temp file or stale generation behind.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pyarrow.dataset as pds
import pytest
from conftest import ROOT
from test_sql_minisite import DAY, copy_minisite

from mmw_tasks import cli, failures, generations, lake, pipeline
from mmw_tasks.config import load_site
from mmw_tasks.fetch.sources import SourceError


def quiet(_msg: str) -> None:
    pass


def day_files(lake_dir: Path, day: str) -> dict[str, bytes]:
    """What readers see of the day: every file under its public paths, by path, with its bytes."""
    return {str(p.relative_to(lake_dir)): p.read_bytes() for p in sorted(lake_dir.glob(f"*/day={day}/*")) if p.exists()}


def leftovers(lake_dir: Path, day: str) -> list[str]:
    """What a finished run must not leave: temp files anywhere, links to nothing, generations of
    the day other than the current one."""
    out = [str(p) for p in lake_dir.rglob("*") if generations.is_temp(p)]
    out += [str(p) for p in lake_dir.glob("*/day=*/*") if p.is_symlink() and not p.exists()]
    cur = generations.current(lake_dir, day)
    days = lake_dir / generations.DAYS / day
    out += [str(p) for p in days.iterdir() if p.name not in (generations.CURRENT, cur)]
    return out


def totals_agree(lake_dir: Path, day: str) -> list[str]:
    """The day's n_from as intervals, the report and daily_trends each have it: one number."""
    con = lake.connect(lake_dir)
    from_intervals = con.sql("select sum(n_from) from intervals where day = $d", params={"d": day}).fetchone()
    from_trends = con.sql("select n_from from daily_trends where day = $d", params={"d": day}).fetchone()
    report = json.loads((lake_dir / "reports" / f"day={day}" / "report.json").read_text())["totals"]["n_from"]
    seen = {"intervals": from_intervals and from_intervals[0], "daily_trends": from_trends and from_trends[0]}
    seen["report.json"] = report
    return [] if len(set(seen.values())) == 1 else [f"n_from disagrees: {seen}"]


# ---------------------------------------------------------------- the layout, and what reads it


def test_public_paths_are_links_that_every_reader_follows(tmp_path, monkeypatch, capsys):
    toml = copy_minisite(tmp_path / "s")
    pipeline.run_day(toml, DAY, log=quiet, mail=False)
    lake_dir = tmp_path / "s/data_lake"
    part = lake_dir / "intervals" / f"day={DAY}" / "part-0.parquet"
    assert part.is_symlink() and not part.parent.is_symlink()
    gen = generations.current(lake_dir, DAY)
    assert part.resolve() == (lake_dir / ".days" / DAY / gen / "intervals" / f"day={DAY}" / "part-0.parquet")
    # the contract's report path, a notebook's rglob, and DuckDB's Hive-partitioned glob all see the day
    assert (lake_dir / "reports" / f"day={DAY}" / "report.json").is_file()
    assert part in set((lake_dir / "intervals").rglob("*.parquet"))
    con = lake.connect(lake_dir)
    assert con.sql("select count(*), min(day) from intervals").fetchone() == (144, date(2002, 2, 16))
    assert con.sql("select count(*) from intervals").fetchone()[0] == pl.read_parquet(part.resolve()).height
    # `mmw sql`, the catalog file (absolute paths: from any directory), polars' and pyarrow's scans
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert cli.main(["sql", "--config", str(toml), "--format", "csv", "select count(*) as n from intervals"]) == 0
    assert capsys.readouterr().out.split() == ["n", "144"]
    cat = duckdb.connect(str(lake_dir / lake.CATALOG), read_only=True)
    assert cat.sql("select count(*), min(day) from intervals").fetchone() == (144, date(2002, 2, 16))
    assert cat.sql("select count(*) from daily_trends").fetchone() == (1,)
    cat.close()
    scan = pl.scan_parquet(lake_dir / "intervals" / "*" / "*.parquet", hive_partitioning=True)
    assert scan.select(pl.len(), pl.col("day").min().cast(pl.String)).collect().row(0) == (144, DAY)
    assert pds.dataset(lake_dir / "intervals", partitioning="hive").count_rows() == 144


def test_a_commit_killed_making_links_leaves_none_to_nothing_past_the_next_begin(tmp_path):
    """A part only the new generation has is linked before the switch, to nothing until then;
    killed there, the next run's begin removes such links (polars' scan fails on them)."""
    toml = copy_minisite(tmp_path / "s")
    pipeline.run_day(toml, DAY, log=quiet, mail=False)
    lake_dir = tmp_path / "s/data_lake"
    dangling = lake_dir / "dns_queries" / f"day={DAY}" / "9dns.parquet"
    dangling.symlink_to(os.path.join("..", "..", ".days", DAY, "current", "dns_queries", f"day={DAY}", "9dns.parquet"))
    assert lake.connect(lake_dir).sql("select count(*) > 0 from dns_queries").fetchone() == (True,)  # skipped
    generations.begin(lake_dir, DAY)
    assert not dangling.is_symlink()
    assert pl.scan_parquet(lake_dir / "dns_queries" / "*" / "*.parquet").select(pl.len()).collect().item() > 0


def test_a_failed_rerun_leaves_the_day_as_it_was_and_not_done(tmp_path):
    toml = copy_minisite(tmp_path / "s")
    lake_dir = tmp_path / "s/data_lake"
    pipeline.run_day(toml, DAY, log=quiet, mail=False)
    before = day_files(lake_dir, DAY)
    assert pipeline.is_done(toml, DAY)
    good = toml.read_text()
    toml.write_text(good.replace("logs/1mx/syslog*", "logs/gone/syslog*"))
    with pytest.raises(failures.StageError, match="fetch 1mx") as failed:
        pipeline.run_day(toml, DAY, log=quiet, mail=False)  # after 1dns was parsed into the new generation
    assert isinstance(failed.value.__cause__, SourceError)  # one line for the user, the cause chained
    assert day_files(lake_dir, DAY) == before
    assert generations.pending(lake_dir, DAY) and not pipeline.is_done(toml, DAY)  # backfill redoes it
    toml.write_text(good)
    pipeline.run_day(toml, DAY, log=quiet, mail=False)
    assert day_files(lake_dir, DAY) == before and pipeline.is_done(toml, DAY)
    assert leftovers(lake_dir, DAY) == []


def test_a_day_written_before_generations_is_adopted_then_replaced_whole(tmp_path):
    """A lake from before generations has real files in the public directories: the first commit
    of the day takes them in (what readers see never changes) and then replaces the day whole."""
    toml = copy_minisite(tmp_path / "s")
    lake_dir = tmp_path / "s/data_lake"
    pipeline.run_day(toml, DAY, log=quiet, mail=False)
    want = day_files(lake_dir, DAY)
    shutil.rmtree(lake_dir / ".days")
    for rel, data in want.items():  # the old layout: plain files, and a part the new run does not write
        (lake_dir / rel).unlink()
        (lake_dir / rel).write_bytes(data)
    stale = lake_dir / "dns_queries" / f"day={DAY}" / "9dns.parquet"
    shutil.copy(lake_dir / "dns_queries" / f"day={DAY}" / "1dns.parquet", stale)
    (lake_dir / "intervals" / f"day={DAY}" / ".part-0.parquet.0123abcd.tmp").write_bytes(b"left by a kill")
    assert pipeline.is_done(toml, DAY) and generations.current(lake_dir, DAY) is None
    pipeline.run_day(toml, DAY, log=quiet, mail=False)
    assert day_files(lake_dir, DAY) == want  # the stale server's part is gone with the old day
    assert all(p.is_symlink() for p in lake_dir.glob(f"*/day={DAY}/*"))
    assert [p for p in lake_dir.rglob("*.tmp")] == [] and leftovers(lake_dir, DAY) == []


def test_a_lake_copied_with_its_links_followed_keeps_working(tmp_path):
    """shutil.copytree (or `cp -rL`) gives plain files, and `current` as a directory of its own."""
    pipeline.run_day(copy_minisite(tmp_path / "s"), DAY, log=quiet, mail=False)
    shutil.copytree(tmp_path / "s", tmp_path / "copy")
    toml, lake_dir = tmp_path / "copy" / "site.toml", tmp_path / "copy" / "data_lake"
    assert not any(p.is_symlink() for p in lake_dir.glob(f"*/day={DAY}/*"))
    assert pipeline.is_done(toml, DAY) and totals_agree(lake_dir, DAY) == []
    pipeline.run_day(toml, DAY, log=quiet, mail=False)
    assert all(p.is_symlink() for p in lake_dir.glob(f"*/day={DAY}/*")) and pipeline.is_done(toml, DAY)
    assert totals_agree(lake_dir, DAY) == [] and leftovers(lake_dir, DAY) == []


def test_a_stage_run_alone_commits_a_copy_of_the_day(tmp_path):
    """Outside a run (tests, tools), a stage works on a copy of the day as committed and commits it."""
    toml = copy_minisite(tmp_path / "s")
    lake_dir = tmp_path / "s/data_lake"
    pipeline.run_day(toml, DAY, log=quiet, mail=False)
    first, before = generations.current(lake_dir, DAY), day_files(lake_dir, DAY)
    out = pipeline.make_report(toml, DAY)
    assert out["report"] == str(lake_dir / "reports" / f"day={DAY}" / "report.json")
    assert generations.current(lake_dir, DAY) != first and day_files(lake_dir, DAY) == before
    assert leftovers(lake_dir, DAY) == []


def test_a_generation_is_written_once(tmp_path):
    toml = copy_minisite(tmp_path / "s")
    site = load_site(toml)
    pipeline.run_day(toml, DAY, log=quiet, mail=False)
    done = generations.current(site.lake, DAY)
    with pytest.raises(generations.GenerationError, match="committed already"):
        pipeline.aggregate(toml, DAY, done)
    gen = generations.begin(site.lake, DAY)
    with generations.writing(site.lake, DAY, gen):
        shutil.rmtree(site.lake / ".days" / DAY / gen)  # another run of the day began and removed it
        with pytest.raises(generations.GenerationError, match="is gone"):
            lake.part_path(site.lake, "intervals", DAY)
    with pytest.raises(generations.GenerationError, match="to commit"):
        pipeline.commit(toml, DAY, gen)
    assert generations.current(site.lake, DAY) == done


def test_temp_files_of_gone_writers_are_swept(tmp_path, monkeypatch):
    mine = generations.temp_path(tmp_path / "a.parquet")
    mine.write_bytes(b"")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    gone = tmp_path / mine.name.replace(f"~{os.getpid()}~", f"~{int(dead.stdout)}~")
    gone.write_bytes(b"")
    old = tmp_path / ".b.parquet.0123abcd.tmp"  # named as before generations: by age
    old.write_bytes(b"")
    young = tmp_path / ".c.parquet.0123abcd.tmp"
    young.write_bytes(b"")
    os.utime(old, (time.time() - 2 * generations.STALE_AFTER,) * 2)
    assert sorted(generations.sweep_temps([tmp_path])) == sorted([gone, old])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([mine.name, young.name])
    # the read roots (generations.writing) in the system temp directory, by the same rule
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "sys"))
    (tmp_path / "sys").mkdir()
    live = Path(tempfile.mkdtemp(prefix=generations._read_root_prefix()))
    dead_root = Path(
        tempfile.mkdtemp(prefix=generations._read_root_prefix().replace(f"~{os.getpid()}~", f"~{int(dead.stdout)}~"))
    )
    (dead_root / "src=lake").symlink_to(tmp_path, target_is_directory=True)
    assert generations.sweep_read_roots() == [dead_root] and live.is_dir() and tmp_path.is_dir()


@pytest.mark.integration  # 6 runs of a day: about 10 s, 40 s on a busy machine
def test_forced_rerun_gives_the_same_bytes(tmp_path):
    """`mmw backfill --force` over a 3-day simulated site rewrites every file of every day with the
    same bytes (row order and Parquet settings are deterministic), under new generations."""
    from mmw_tasks.simulate import simulate_site

    toml = simulate_site(tmp_path / "site", date(2002, 2, 15), 3, scenario="klez", seed=5, scale=0.1)
    lake_dir = load_site(toml).lake
    days = ["2002-02-15", "2002-02-16", "2002-02-17"]
    args = ["backfill", "--config", str(toml), "--from", days[0], "--to", days[-1]]
    assert cli.main(args) == 0

    def everything() -> dict[str, bytes]:
        out = {k: v for d in days for k, v in day_files(lake_dir, d).items()}
        for p in sorted(lake_dir.glob("*_trends/*=*/*.parquet")) + [lake_dir / "reports" / "trends.html"]:
            out[str(p.relative_to(lake_dir))] = p.read_bytes()
        return out

    before, gens = everything(), {d: generations.current(lake_dir, d) for d in days}
    assert len(before) >= 3 * 20
    assert cli.main([*args, "--force"]) == 0
    after = everything()
    assert sorted(after) == sorted(before)
    assert [k for k in before if after[k] != before[k]] == []
    assert all(generations.current(lake_dir, d) != gens[d] for d in days)
    assert [x for d in days for x in leftovers(lake_dir, d)] == []


# ---------------------------------------------------------------- the crash test


@dataclass
class Site:
    toml: Path
    lake: Path
    pristine: Path  # a copy of the lake holding the old day
    old: dict[str, bytes]  # the day as the first input gave it
    new: dict[str, bytes]  # the day as the changed input gives it


CRASH_DAY = "2002-02-16"
CRASH_SCALE = 0.05  # a run of the day: ~3 s in a subprocess, of which ~1.7 s is importing


@pytest.fixture(scope="module")
def rerun_site(tmp_path_factory) -> Site:
    """A simulated day done once, then its input changed (another seed's logs), as in the issue."""
    from mmw_tasks.simulate import simulate_site

    root = tmp_path_factory.mktemp("crash")
    toml = simulate_site(root / "site", date.fromisoformat(CRASH_DAY), 1, scenario="klez", seed=1, scale=CRASH_SCALE)
    other = simulate_site(root / "other", date.fromisoformat(CRASH_DAY), 1, scenario="klez", seed=2, scale=CRASH_SCALE)
    shutil.copytree(other.parent / "logs", toml.parent / "logs2")  # copy2: the mtimes that date the lines
    lake_dir = load_site(toml).lake
    pipeline.run_day(toml, CRASH_DAY, log=quiet, mail=False)
    old = day_files(lake_dir, CRASH_DAY)
    toml.write_text(toml.read_text().replace('"logs/', '"logs2/'))
    pristine = root / "old_lake"
    shutil.copytree(lake_dir, pristine, symlinks=True)
    pipeline.run_day(toml, CRASH_DAY, log=quiet, mail=False)
    new = day_files(lake_dir, CRASH_DAY)
    changed = [k for k in old if old[k] != new.get(k)]
    assert old.keys() == new.keys() and f"intervals/day={CRASH_DAY}/part-0.parquet" in changed
    assert totals_agree(lake_dir, CRASH_DAY) == []
    return Site(toml, lake_dir, pristine, old, new)


def _restore(site: Site) -> None:
    shutil.rmtree(site.lake)
    shutil.copytree(site.pristine, site.lake, symlinks=True)


def _mmw_run(site: Site, tmp: Path, **env: str) -> subprocess.Popen:
    tmp.mkdir(exist_ok=True)
    args = [sys.executable, "-m", "mmw_tasks", "run", "--config", str(site.toml), "--date", CRASH_DAY]
    full = {**os.environ, "TMPDIR": str(tmp), **env}
    return subprocess.Popen(args, cwd=ROOT, env=full, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _which_day(site: Site) -> str:
    now = day_files(site.lake, CRASH_DAY)
    return "old" if now == site.old else "new" if now == site.new else "neither"


def _backfill(site: Site) -> int:
    """`mmw backfill` of the day, without --force: it redoes the day only if it is not done."""
    return cli.main(["backfill", "--config", str(site.toml), "--from", CRASH_DAY, "--to", CRASH_DAY])


@pytest.mark.integration  # 13 kills and 13 runs of a day: ~45 s alone, 90 s on a busy machine
def test_a_kill_at_any_instant_leaves_the_old_day_or_the_new(rerun_site, tmp_path, monkeypatch):
    site = rerun_site
    _restore(site)
    tmp = tmp_path / "tmp"  # the killed runs' system temp directory (their read roots)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))  # in-process runs sweep the same one
    trace = tmp_path / "trace.txt"
    t0 = time.monotonic()
    p = _mmw_run(site, tmp, MMW_CRASH_TRACE=str(trace))
    assert p.wait(300) == 0, p.stderr.read() if p.stderr else ""
    seconds = time.monotonic() - t0
    assert _which_day(site) == "new"  # the subprocess writes what the reference run wrote
    labels = [line.split("\t", 1)[1] for line in trace.read_text().splitlines()]
    switched = next(i for i, x in enumerate(labels, 1) if x.endswith(": switched"))

    def first(word: str) -> int:
        return next(i for i, x in enumerate(labels, 1) if word in x)

    links = [i for i, x in enumerate(labels, 1) if ": link " in x]
    instants = {
        first("begin"),  # the new generation made, nothing in it
        first("batch"),  # inside the first Parquet part: its temp file half written
        first("batch mail_events"),  # the second server's, the first one's parts in the generation
        first("write mail_events"),  # a part written, not yet renamed
        first("write intervals"),
        first("write incidents"),
        first("report.json"),
        first("write daily_trends"),  # the last of the day's files
        first("weekly_trends"),  # a roll-up (rewritten in place, outside the generation)
        links[len(links) // 2],  # half the public links made
        switched,  # the new day in, the old generation and leftovers still there
    }
    days_before = site.pristine / ".days" / CRASH_DAY
    rng = random.Random(17)
    timed = [rng.uniform(0.6, 0.98) * seconds for _ in range(2)]  # past the ~1.7 s of imports
    problems: list[str] = []
    seen: dict[str, int] = {}
    for instant in sorted(instants) + [None] * len(timed):
        _restore(site)
        label = f"checkpoint {instant} ({labels[instant - 1]})" if instant else "timed"
        if instant:
            p = _mmw_run(site, tmp, MMW_CRASH_AT=str(instant))
            rc = p.wait(300)
            if rc != -9:
                problems.append(f"{label}: not killed (rc {rc})")
            want = {"old"} if instant < switched else {"new"}
        else:
            p = _mmw_run(site, tmp)
            time.sleep(timed.pop())
            p.kill()
            p.wait(60)
            want = {"old", "new"}
        got = _which_day(site)
        seen[got] = seen.get(got, 0) + 1
        if got not in want:
            problems.append(f"{label}: the lake holds {got} day, not {' or '.join(sorted(want))}")
            continue
        problems += [f"{label}: {x}" for x in totals_agree(site.lake, CRASH_DAY)]
        # an old day whose re-run began is not done, and backfill redoes it; one killed before
        # the run began (importing) is the old day, done, and only a plain run replaces it
        began = sorted(os.listdir(site.lake / ".days" / CRASH_DAY)) != sorted(os.listdir(days_before))
        done = pipeline.is_done(site.toml, CRASH_DAY)
        if done != (got == "new" or not began):
            problems.append(f"{label}: is_done says {done} of the {got} day (run began: {began})")
        gen = generations.current(site.lake, CRASH_DAY)
        if _backfill(site) != 0:
            problems.append(f"{label}: backfill failed")
        after = _which_day(site)
        if after != ("new" if began and got == "old" else got):
            problems.append(f"{label}: after backfill the lake holds the {after} day")
        if generations.current(site.lake, CRASH_DAY) == gen:  # backfill skipped it: the next plain run
            pipeline.run_day(site.toml, CRASH_DAY, log=quiet, mail=False)
        if _which_day(site) != "new":  # the same bytes as the reference run's
            problems.append(f"{label}: the next run did not complete the day")
        problems += [f"{label}: left {x}" for x in leftovers(site.lake, CRASH_DAY)]
        problems += [f"{label}: left read root {x.name}" for x in tmp.iterdir()]
        problems += [f"{label}: {x}" for x in totals_agree(site.lake, CRASH_DAY)]
    tried = len(instants) + 2
    print(
        f"\ncrash test: {tried} kills of `mmw run` ({len(instants)} checkpoints of {len(labels)}, 2 timed; "
        f"a run takes {seconds:.1f}s; killed holding {seen}): {len(problems)} problems",
        file=sys.stderr,
    )
    assert len(instants) >= 10 and problems == []
