"""`mmw sql` is read-only (issue #17, item 3; contract section 2): analysts query the lake, they
cannot write, delete, attach, install or read outside it. Each attack below worked on main: `COPY
... TO` over a lake part emptied a day, `ATTACH` + `DROP VIEW` changed the catalog, it read
/etc/passwd, `INSTALL` tried the network. `--unsafe` lifts the guard."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT
from test_sql_minisite import DAY, copy_minisite

from mmw_tasks import lake, pipeline
from mmw_tasks.cli import main

TOTAL = "select sum(n_from) as n_from, sum(dq) as dq from intervals"


@pytest.fixture(scope="module")
def mini(tmp_path_factory) -> Path:
    toml = copy_minisite(tmp_path_factory.mktemp("ro") / "site")
    pipeline.run_day(toml, DAY, log=lambda m: None)
    root = toml.parent / "data_lake"
    assert (root / lake.CATALOG).is_file()
    (toml.parent / "outside.txt").write_text("not the lake's\n")
    return root


def snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()
    }


def sql(root: Path, query: str, *flags: str, capsys) -> tuple[int, str, str]:
    rc = main(["sql", "--lake", str(root), "--format", "json", *flags, query])
    out = capsys.readouterr()
    return rc, out.out, out.err


def part(root: Path) -> Path:
    return lake.part_path(root, "intervals", DAY)


ATTACKS = {
    # what broke the lake on main
    "copy over a lake part": "copy (select * from intervals where false) to '{part}' (format parquet)",
    "attach and drop a view": "attach '{root}/mmw.duckdb' as cat; drop view cat.intervals",
    "drop a view": "drop view intervals",
    "read /etc/passwd": "select * from read_csv('/etc/passwd')",
    "read /etc/passwd as text": "select content from read_text('/etc/passwd')",
    "install an extension": "install httpfs",
    # and their relatives
    "load an extension": "load httpfs",
    "copy out of the lake": "copy (select 1 as a) to '{root}/../stolen.csv'",
    "export the database": "export database '{root}/exported'",
    "create a table in the lake's catalog": "attach '{root}/mmw.duckdb' as cat; create table cat.t as select 1",
    "attach in memory": "attach ':memory:' as m",
    "a write hidden after a query": "select 1; copy (select 1 as a) to '{part}'",
    "explain analyze of a copy": "explain analyze copy (select 1 as a) to '{part}'",
    "lift the lock": "set enable_external_access = true",
    "reset the lock": "reset lock_configuration",
    "a file beside the lake": "select * from read_text('{root}/../outside.txt')",
    "list the file system": "select * from glob('/etc/*')",
    "read a remote file": "select * from read_parquet('https://example.com/x.parquet')",
    "delete through a view": "delete from intervals",
    "checkpoint": "checkpoint",
}


@pytest.mark.parametrize("catalog", [False, True], ids=["views", "catalog"])
@pytest.mark.parametrize("attack", ATTACKS)
def test_an_attack_is_refused_in_one_line_and_the_lake_is_unchanged(mini, attack, catalog, capsys):
    before = snapshot(mini)
    flags = ("--catalog",) if catalog else ()
    rc, out, err = sql(mini, ATTACKS[attack].format(root=mini, part=part(mini)), *flags, capsys=capsys)
    assert rc == 2, (out, err)
    assert err.startswith("mmw: ") and len(err.strip().splitlines()) == 1, err
    assert "--unsafe" in err or "SQL error" in err, err
    assert snapshot(mini) == before
    assert not (mini.parent / "stolen.csv").exists() and not (mini / "exported").exists()
    rc, out, _ = sql(mini, TOTAL, *flags, capsys=capsys)
    assert rc == 0 and json.loads(out) == [{"n_from": 2, "dq": 8}]


@pytest.mark.parametrize("catalog", [False, True], ids=["views", "catalog"])
def test_queries_still_run(mini, catalog, capsys):
    flags = ("--catalog",) if catalog else ()
    for q in (
        TOTAL,
        "from intervals select count(*) as n",
        "show tables",
        "describe mail_events",
        "summarize intervals",
        "explain select * from intervals",
        "with x as (select * from mail_events) select count(*) as n from x",
        "select count(*) as n from read_parquet('{root}/intervals/*/*.parquet')",
        "select * from mail_attributed(DATE '2002-02-16') limit 1",
    ):
        rc, out, err = sql(mini, q.format(root=mini), *flags, capsys=capsys)
        assert rc == 0, (q, err)


def test_unsafe_lifts_the_guard(mini, tmp_path, capsys):
    out_file = tmp_path / "out.csv"
    q = f"copy (select sum(n_from) as n from intervals) to '{out_file}'"
    assert sql(mini, q, capsys=capsys)[0] == 2
    assert sql(mini, q, "--unsafe", capsys=capsys)[0] == 0
    assert out_file.read_text().splitlines() == ["n", "2"]
    rc, out, _ = sql(
        mini, f"select count(*) as n from read_text('{mini.parent}/outside.txt')", "--unsafe", capsys=capsys
    )
    assert rc == 0 and json.loads(out) == [{"n": 1}]


def test_the_command_line_refuses_in_one_line(mini):
    """As a user types it (the subprocess: no traceback reaches the terminal)."""
    r = subprocess.run(
        [sys.executable, "-m", "mmw_tasks", "sql", "--lake", str(mini), "select * from read_csv('/etc/passwd')"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.startswith("mmw: sql refused: ") and "/etc/passwd" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
