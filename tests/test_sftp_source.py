"""sftp:// sources against a real SSH/SFTP server on 127.0.0.1: the same days as from a local path,
nothing pulled twice, the growing live file and rotations handled, a cut connection retried with
no partial file left, host keys never accepted blindly, no password in the config."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from logsite import bsd_line, count_truth, day_totals, make_site, site_toml, write_scheme
from sftp_server import PASSWORD, USER, LoopbackSFTPServer

from mmw_tasks import pipeline
from mmw_tasks.config import ConfigError, load_site
from mmw_tasks.fetch.sources import SourceError

START = date(2002, 2, 15)
DAYS = [START + timedelta(days=i) for i in range(3)]
KEYS = ("dq", "n_from", "n_to", "n_sent")


@pytest.fixture()
def remote(tmp_path):
    root = tmp_path / "remote"
    root.mkdir()
    with LoopbackSFTPServer(root, tmp_path / "ssh") as srv:
        yield srv


def _sftp_site(srv: LoopbackSFTPServer, site, root: Path, scheme="numbered", extra_keys: str | None = None) -> Path:
    globs = write_scheme(site, srv.root / "logs", scheme)
    sources = {n: srv.url(f"/logs/{g}") for n, g in globs.items()}
    keys = (
        extra_keys
        if extra_keys is not None
        else (f'known_hosts = "{srv.known_hosts}"\nidentity_file = "{srv.client_key_file}"\n')
    )
    root.mkdir(parents=True, exist_ok=True)
    return site_toml(root, globs, site.tz, sources=sources, extra={n: keys for n in globs})


def _totals(toml, day) -> dict:
    out = pipeline.run_day(toml, day, log=lambda m: None)
    rep = json.loads(Path(out["report"]["report"]).read_text())
    return {k: rep["totals"][k] for k in KEYS}


def _raw_files(toml: Path) -> list[Path]:
    raw = load_site(toml).lake / "raw"
    return sorted(p for p in raw.rglob("*") if p.is_file() and p.name not in ("manifest.json", ".lock"))


@pytest.mark.integration  # a simulated site, twice through every stage: make test only
def test_simulated_site_pulled_over_sftp_equals_local(remote, tmp_path):
    """The simulator's files, served over SFTP, give the same days as read from disk, and both
    are what the simulator wrote; the raw area holds the remote bytes unchanged."""
    from mmw_tasks.simulate import simulate_site

    local = simulate_site(tmp_path / "sim", START, 2, scenario="klez", seed=5, scale=0.1)
    truth = json.loads((local.parent / "truth.json").read_text())
    shutil.copytree(local.parent / "logs", remote.root / "logs", copy_function=shutil.copy2)
    cfg = local.read_text()
    for glob in ("logs/1dns/messages*", "logs/1mx/syslog*"):
        cfg = cfg.replace(
            f'source = "{glob}"',
            f'source = "{remote.url("/" + glob)}"\n'
            f'known_hosts = "{remote.known_hosts}"\n'
            f'identity_file = "{remote.client_key_file}"',
        )
    (tmp_path / "pulled").mkdir()
    toml = tmp_path / "pulled" / "site.toml"
    toml.write_text(cfg)
    for d in (START, START + timedelta(days=1)):
        full = {k: v for k, v in _full_totals(toml, d).items()}
        assert full == _full_totals(local, d) == truth["days"][str(d)]["totals"], d
    for server in ("1dns", "1mx"):
        man = json.loads((load_site(toml).lake / "raw" / server / "manifest.json").read_text())
        assert len(man) == len(list((remote.root / "logs" / server).iterdir()))
        for e in man:
            remote_path = remote.root / e["remote"].split(f":{remote.port}/", 1)[1]
            assert Path(e["path"]).read_bytes() == remote_path.read_bytes()
            assert hashlib.sha256(remote_path.read_bytes()).hexdigest() == e["sha256"]
            assert e["server"] == server and e["size"] == e["remote_size"] == remote_path.stat().st_size
            assert e["first"] and e["last"] and e["remote_mtime"] == int(remote_path.stat().st_mtime)


def _full_totals(toml, day) -> dict:
    """The day's report totals, less `partial` (checked false: every day of these sites is whole)."""
    out = pipeline.run_day(toml, day, log=lambda m: None)
    totals = json.loads(Path(out["report"]["report"]).read_text())["totals"]
    assert totals.pop("partial") is False, day
    return totals


def test_unchanged_files_are_not_pulled_again_and_the_live_file_is(remote, tmp_path):
    site = make_site(START, 2, seed=12)
    mx = next(s for s in site.servers if s.name == "1mx")
    cut = datetime(2002, 2, 16, 12)
    late = [x for x in mx.lines if x[0] >= cut]
    mx.lines = [x for x in mx.lines if x[0] < cut]
    toml = _sftp_site(remote, site, tmp_path / "site")
    day = date(2002, 2, 16)
    first = pipeline.fetch(toml, "1mx", day)
    n_remote = len(list((remote.root / "logs" / "1mx").iterdir()))
    assert first["pulled"]["pulled"] == n_remote
    again = pipeline.fetch(toml, "1mx", day)
    assert again["pulled"].get("unchanged") == n_remote and "pulled" not in again["pulled"]
    assert again["files"] == first["files"]
    # the live file grows: only it is pulled again, and only its new bytes
    live = remote.root / "logs" / "1mx" / "maillog"
    with open(live, "a") as fh:
        fh.writelines(bsd_line(t, x) + "\n" for t, x in late)
    os.utime(live, (datetime(2002, 2, 17, 6).timestamp(),) * 2)
    served = remote.bytes_served
    grown = pipeline.fetch(toml, "1mx", day)
    assert grown["pulled"].get("appended") == 1 and grown["pulled"].get("unchanged") == n_remote - 1
    assert remote.bytes_served - served < live.stat().st_size  # not the whole file again
    mx.lines += late
    parsed = pipeline.parse(toml, "1mx", day, grown["files"])
    assert parsed["rows"] == sum(count_truth([mx])["1mx"][str(day)][k] for k in ("n_from", "n_to"))


def test_rotation_on_the_server_reads_no_line_twice(remote, tmp_path):
    """Day 1 pulls the live file; then logrotate runs (numbered, delaycompress): maillog becomes
    maillog.1 (grown), maillog.1 becomes maillog.2.gz. Every day still counts each line once."""
    site = make_site(START, 3, seed=13)
    full = {s.name: list(s.lines) for s in site.servers}
    rot = datetime(2002, 2, 17, 4, 2)
    pulled_at = datetime(2002, 2, 16, 6, 30)
    for s in site.servers:
        s.lines = [x for x in full[s.name] if x[0] < pulled_at]
    toml = _sftp_site(remote, site, tmp_path / "site")
    for s in site.servers:
        pipeline.fetch(toml, s.name, date(2002, 2, 15))
    # time passes: write the server's state after the rotation of 2002-02-17 04:02
    for s in site.servers:
        s.lines = [x for x in full[s.name] if x[0] < rot + timedelta(hours=3)]
    shutil.rmtree(remote.root / "logs")
    write_scheme(site, remote.root / "logs", "numbered")
    for d in DAYS[:2]:
        assert _totals(toml, d) == day_totals(site, d), d
    # the old snapshots of the live files were superseded, so nothing is counted twice in any view
    man = json.loads((load_site(toml).lake / "raw" / "1mx" / "manifest.json").read_text())
    assert any(e["superseded_by"] for e in man)


# paramiko's read-ahead thread dies with the connection we cut: that is the cut, not a bug
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_cut_connection_is_retried_and_leaves_no_partial_file(remote, tmp_path):
    site = make_site(START, 2, seed=14, per_day=600)
    toml = _sftp_site(remote, site, tmp_path / "site")
    biggest = max((remote.root / "logs" / "1dns").iterdir(), key=lambda p: p.stat().st_size)
    remote.cut_after = biggest.stat().st_size // 2
    got = pipeline.fetch(toml, "1dns", date(2002, 2, 16))
    assert remote.cuts == 1 and got["pulled"]["reconnects"] >= 1
    for p in _raw_files(toml):
        if p.name == biggest.name:
            assert p.read_bytes() == biggest.read_bytes()
    assert not list((load_site(toml).lake / "raw" / "1dns").glob(".tmp/*"))
    assert _totals(toml, date(2002, 2, 16)) == day_totals(site, date(2002, 2, 16))


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_transfer_that_keeps_failing_leaves_nothing_half_pulled(remote, tmp_path, monkeypatch):
    from mmw_tasks.fetch import sftp

    site = make_site(START, 1, seed=15, per_day=400)
    toml = _sftp_site(remote, site, tmp_path / "site")
    real_retry = sftp.Session._retry

    def cut_every_attempt(self, what, fn):
        def attempt(client):
            remote.cut_after = remote.bytes_served + 10  # the link drops again on each try
            return fn(client)

        self.backoff = 0.01
        return real_retry(self, what, attempt if what.startswith("pulling") else fn)

    monkeypatch.setattr(sftp.Session, "_retry", cut_every_attempt)
    with pytest.raises(SourceError) as e:
        pipeline.fetch(toml, "1mx", START)
    assert "1mx" in str(e.value) and "failed after 4 attempts" in str(e.value) and "maillog" in str(e.value)
    assert _raw_files(toml) == []  # no partial or temp file anywhere in the raw area
    monkeypatch.undo()
    remote.cut_after = None
    assert pipeline.fetch(toml, "1mx", START)["files"]


def test_unknown_or_changed_host_key_is_refused(remote, tmp_path):
    site = make_site(START, 1, seed=16, per_day=20)
    other = tmp_path / "other_known_hosts"
    other.write_text(
        f"[127.0.0.1]:{remote.port} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIm6bSFYrkG2rQnO3A9R2bKmtwxhtqJlWIpf3q8kF0Le\n"
    )
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    for kh, words in ((empty, "never accepted automatically"), (other, "does not match")):
        toml = _sftp_site(
            remote,
            site,
            tmp_path / f"site-{kh.name}",
            extra_keys=f'known_hosts = "{kh}"\nidentity_file = "{remote.client_key_file}"\n',
        )
        with pytest.raises(SourceError) as e:
            pipeline.fetch(toml, "1mx", START)
        assert words in str(e.value) and "1mx" in str(e.value)
        assert _raw_files(toml) == []
    assert remote.logins == 0


def test_password_in_the_config_is_refused(tmp_path):
    toml = site_toml(
        tmp_path,
        {n: "x*" for n in ("1mx", "2mx", "1dns", "2dns")},
        "UTC",
        sources={"1mx": "sftp://logs:hunter2@mx.example:22/var/log/maillog*"},
    )
    with pytest.raises(ConfigError, match=r"'1mx'.*key 'source'.*password"):
        load_site(toml)


def test_airflow_connection_supplies_the_login(remote, tmp_path, monkeypatch):
    """The DAG's fetch reads the server's connection_id (plugins/mmw_connections.py) and passes
    plain credentials to the fetch."""
    import sys

    from conftest import ROOT

    site = make_site(START, 1, seed=17, per_day=30)
    toml = _sftp_site(
        remote,
        site,
        tmp_path / "site",
        extra_keys=f'known_hosts = "{remote.known_hosts}"\nconnection_id = "mmw_logs"\n',
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_MMW_LOGS",
        json.dumps(
            {
                "conn_type": "sftp",
                "login": USER,
                "password": PASSWORD,
                "host": "127.0.0.1",
                "port": remote.port,
            }
        ),
    )
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no agent or ~/.ssh keys to fall back on
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    monkeypatch.setattr(sys, "path", [str(ROOT / "plugins"), *sys.path])
    from mmw_connections import sftp_credentials

    creds = sftp_credentials(str(toml), "1mx")
    assert creds["username"] == USER and creds["password"] == PASSWORD
    with pytest.raises(SourceError, match="authentication failed"):
        pipeline.fetch(toml, "1mx", START)  # the CLI path has no key for this server
    got = pipeline.fetch(toml, "1mx", START, credentials=creds)
    assert got["files"] and PASSWORD not in json.dumps(got)
    raw = load_site(toml).lake / "raw" / "1mx" / "manifest.json"
    assert PASSWORD not in raw.read_text()


@pytest.mark.airflow
def test_airflow_dag_pulls_with_the_connection(remote, tmp_path):
    """A real `airflow dags test`: the fetch task resolves the server's Airflow connection
    (password login, host key from the site's known_hosts) and the day comes out as from disk."""
    import subprocess
    import sys

    from test_sql_minisite import copy_minisite

    from mmw_tasks.cli import airflow_env

    local = copy_minisite(tmp_path / "local")
    shutil.copytree(local.parent / "logs", remote.root / "logs", copy_function=shutil.copy2)
    cfg = local.read_text()
    for glob in ("logs/1dns/messages*", "logs/1mx/syslog*"):
        cfg = cfg.replace(
            f'source = "{glob}"',
            f'source = "{remote.url("/" + glob)}"\nconnection_id = "mmw_logs"\nknown_hosts = "{remote.known_hosts}"',
        )
    site = tmp_path / "pulled"
    site.mkdir()
    (site / "site.toml").write_text(cfg)
    home = tmp_path / "airflow"
    home.mkdir()
    env = {
        **airflow_env(home),
        "HOME": str(tmp_path / "home"),
        "AIRFLOW_CONN_MMW_LOGS": json.dumps({"conn_type": "sftp", "login": USER, "password": PASSWORD}),
    }
    env.pop("SSH_AUTH_SOCK", None)
    airflow = str(Path(sys.executable).with_name("airflow"))
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True)
    r = subprocess.run(
        [
            airflow,
            "dags",
            "test",
            "mmw_daily",
            "2002-02-17T06:30:00+09:00",
            "-c",
            json.dumps({"config": str(site / "site.toml"), "day": "2002-02-16"}),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert PASSWORD not in r.stdout + r.stderr
    pulled = json.loads((site / "data_lake/reports/day=2002-02-16/report.json").read_text())
    assert remote.logins >= 2  # one per server's fetch
    pipeline.run_day(local, "2002-02-16", log=lambda m: None)
    from_disk = json.loads((local.parent / "data_lake/reports/day=2002-02-16/report.json").read_text())
    assert pulled["totals"] == from_disk["totals"] and pulled["totals"]["dq"] == 8


def test_missing_remote_directory_names_server_and_path(remote, tmp_path):
    site = make_site(START, 1, seed=19, per_day=10)
    toml = _sftp_site(remote, site, tmp_path / "site")
    cfg = toml.read_text().replace("/logs/1mx/", "/no/such/dir/")
    toml.write_text(cfg)
    with pytest.raises(SourceError) as e:
        pipeline.fetch(toml, "1mx", START)
    assert "1mx" in str(e.value) and "/no/such/dir" in str(e.value)
