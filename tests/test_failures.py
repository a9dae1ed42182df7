"""Every failure is one line (issue #17, item 5; contract section 2): no traceback reaches a user
unless `--debug`; exit 2 for a bad config or unusable input, 1 for a failed stage, naming the
stage, the server and the file. Seen on main: a lake path that is a file, a read-only lake and a
full disk each gave rc 1 and 28 to 50 lines of traceback.

The read-only lake and the full disk are real: a read-only bind mount and a small tmpfs, each in
a mount namespace of the test's own (`unshare`), so they work as root (where permission bits
stop nothing) and as any user, and leave no mount behind whatever happens.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT
from test_sql_minisite import DAY, copy_minisite

from mmw_tasks import pipeline

MMW = [sys.executable, "-m", "mmw_tasks"]


def mmw(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*MMW, *args], cwd=ROOT, capture_output=True, text=True)


def in_own_mounts(mounts: str, *args: str) -> subprocess.CompletedProcess:
    """`mmw args` after the shell commands `mounts`, in a private mount namespace (mapped to root
    in a user namespace when the test does not run as root)."""
    unshare = shutil.which("unshare")
    assert unshare, "the read-only and full-disk tests need unshare (util-linux)"
    ns = [unshare, "--mount"] + ([] if os.geteuid() == 0 else ["--map-root-user"])
    script = f"{mounts} && exec {shlex.join([*MMW, *args])}"
    return subprocess.run([*ns, "sh", "-c", script], cwd=ROOT, capture_output=True, text=True)


def one_line(r: subprocess.CompletedProcess) -> str:
    """The failure's line: stderr holds it alone, after the progress lines of the servers read."""
    lines = [ln for ln in r.stderr.splitlines() if ln.strip() and not ln.startswith(f"{DAY} ")]
    assert len(lines) == 1 and lines[0].startswith("mmw: "), r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""
    return lines[0]


@pytest.fixture
def site(tmp_path) -> Path:
    return copy_minisite(tmp_path / "site")


def with_lake(toml: Path, lake: str) -> Path:
    toml.write_text(toml.read_text().replace('lake = "data_lake"', f'lake = "{lake}"'))
    return toml


def test_a_lake_that_is_a_file_is_a_config_error(site):
    (site.parent / "lakefile").write_text("not a directory\n")
    r = mmw("run", "--config", str(with_lake(site, "lakefile")), "--date", DAY)
    assert r.returncode == 2
    line = one_line(r)
    assert f"{site}:4: [site]: key 'lake'" in line and "lakefile, which is a file, not a directory" in line, line
    r = mmw("backfill", "--config", str(site), "--from", DAY, "--to", DAY)
    assert r.returncode == 2 and "which is a file" in one_line(r)


def test_a_read_only_lake_is_one_line_and_still_answers_queries(site):
    """A lake on a file system mounted read-only (after a day was done in it): mmw run stops
    before any stage with exit 2 naming the key; mmw sql reads it as before."""
    pipeline.run_day(site, DAY, log=lambda m: None)
    lake = shlex.quote(str(site.parent / "data_lake"))
    ro = f"mount --bind {lake} {lake} && mount -o remount,bind,ro {lake}"
    r = in_own_mounts(ro, "run", "--config", str(site), "--date", DAY)
    assert r.returncode == 2, r.stderr
    line = one_line(r)
    assert "[site]: key 'lake'" in line and "Read-only file system (EROFS)" in line, line
    q = in_own_mounts(ro, "sql", "--config", str(site), "--format", "csv", "select sum(n_from) as n from intervals")
    assert q.returncode == 0 and q.stdout.splitlines() == ["n", "2"], q.stderr


# tmpfs sizes that run out in different stages (the whole lake of the mini site is about 700 kB)
@pytest.mark.parametrize("size", ["8k", "128k", "400k"])
def test_a_full_disk_is_one_line_naming_the_stage(site, size):
    full = site.parent / "data_lake"
    full.mkdir()
    r = in_own_mounts(
        f"mount -t tmpfs -o size={size} tmpfs {shlex.quote(str(full))}", "run", "--config", str(site), "--date", DAY
    )
    assert r.returncode == 1, r.stderr
    line = one_line(r)
    assert line.startswith(f"mmw: run {DAY}: "), line
    assert line.split(": ")[2].split()[0] in pipeline.STAGES, line
    assert f"{full}: No space left on device (ENOSPC); free space on the lake's file system" in line, line


def test_debug_shows_the_traceback(site):
    (site.parent / "lakefile").write_text("x\n")
    with_lake(site, "lakefile")
    quiet = mmw("run", "--config", str(site), "--date", DAY)
    loud = mmw("--debug", "run", "--config", str(site), "--date", DAY)
    also = mmw("run", "--config", str(site), "--date", DAY, "--debug")
    assert "Traceback" not in quiet.stderr
    for r in (loud, also):
        assert r.returncode == 2 and "Traceback" in r.stderr and r.stderr.strip().splitlines()[-1] == one_line(quiet)


def test_a_failed_stage_names_the_server_and_exits_1(site):
    """A server's files that cannot be found: the fetch stage, the server, the glob."""
    site.write_text(site.read_text().replace("logs/1mx/syslog*", "logs/gone/syslog*"))
    r = mmw("run", "--config", str(site), "--date", DAY)
    assert r.returncode == 1
    line = one_line(r)
    assert line.startswith(f"mmw: run {DAY}: fetch 1mx: no file covers {DAY}") and "logs/gone/syslog*" in line, line


def test_a_failed_commit_is_one_line(site, monkeypatch, capsys):
    """The commit stage (the switch of the day's generation) fails like any other: one line naming
    it, exit 1, and the day stays as it was, not done."""
    import errno

    from mmw_tasks import cli, generations

    def full(*_a, **_k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(generations, "commit", full)
    assert cli.main(["run", "--config", str(site), "--date", DAY]) == 1
    err = [ln for ln in capsys.readouterr().err.splitlines() if not ln.startswith(f"{DAY} ")]
    lake = site.parent / "data_lake"
    assert err == [
        f"mmw: run {DAY}: commit: {lake}: No space left on device (ENOSPC); free space on the lake's "
        "file system, then run the day again"
    ], err
    assert not pipeline.is_done(site, DAY)


def test_a_failed_partial_run_is_one_line(site, monkeypatch, capsys):
    """`mmw run --partial` fails in one line too: a server that cannot be found names the fetch
    stage and the server (exit 1); a failure while the day so far is analysed names `analyse`."""
    from mmw_tasks import cli, intraday

    good = site.read_text()
    site.write_text(good.replace("logs/1mx/syslog*", "logs/gone/syslog*"))
    r = mmw("run", "--config", str(site), "--date", DAY, "--partial", "--until", "18:00")
    assert r.returncode == 1
    line = one_line(r)
    assert line.startswith(f"mmw: run {DAY}: fetch 1mx: no file covers {DAY}") and "logs/gone/syslog*" in line, line
    site.write_text(good)

    def broken(run):
        raise RuntimeError("disk on fire\nsecond line")

    monkeypatch.setattr(intraday, "analyse", broken)
    assert cli.main(["run", "--config", str(site), "--date", DAY, "--partial", "--until", "18:00"]) == 1
    err = [ln for ln in capsys.readouterr().err.splitlines() if not ln.startswith(f"{DAY} ")]
    assert err == [f"mmw: run {DAY}: analyse: RuntimeError: disk on fire"], err
