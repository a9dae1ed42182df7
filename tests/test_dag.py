"""The DAG files: they import cleanly, wire the stages in order, and run for real."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT
from test_sql_minisite import copy_minisite

from mmw_tasks.cli import airflow_env

STAGES = ["resolve", "fetch", "parse", "settle", "aggregate", "fit", "detect", "report", "trends", "commit"]


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


def test_dags_import_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert "mmw_daily" in dagbag.dag_ids


def test_daily_dag_wires_stages_in_order(dagbag):
    dag = dagbag.dags["mmw_daily"]
    assert set(STAGES) <= set(dag.task_ids)
    for up, down in zip(STAGES, STAGES[1:], strict=False):
        assert up in dag.get_task(down).upstream_task_ids, (up, down)
    assert dag.get_task("fetch").retries >= 2
    # a day's detection reads the days before as committed: its run waits for the previous commit
    detect = dag.get_task("detect")
    assert detect.depends_on_past and detect.wait_for_downstream and "commit" in detect.downstream_task_ids


def test_mmw_tasks_never_imports_airflow():
    code = (
        "import sys, mmw_tasks.cli, mmw_tasks.pipeline, mmw_tasks.simulate; "
        "print([m for m in sys.modules if m == 'airflow' or m.startswith('airflow.')])"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.airflow
def test_airflow_dags_test_runs_a_day(tmp_path):
    """A real `airflow dags test` (SQLite metadata) writes the day's report into the lake."""
    toml = copy_minisite(tmp_path / "site")
    home = tmp_path / "airflow"
    home.mkdir()
    env = airflow_env(home)
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
            json.dumps({"config": str(toml), "day": "2002-02-16"}),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    report = json.loads((tmp_path / "site/data_lake/reports/day=2002-02-16/report.json").read_text())
    assert report["totals"] == {
        "dq": 8,
        "n_from": 2,
        "n_to": 3,
        "n_sent": 2,
        "n_deferred": 1,
        "n_pop": 2,
        "n_user_unknown": 1,
        "partial": False,
    }
