"""The mmw_intraday DAG file: it loads, wires its stages in order, runs one at a time, and takes
its period from [schedule].intraday_every (none when it is off)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from conftest import ROOT
from test_sql_minisite import copy_minisite

STAGES = ["resolve", "intake", "analyse", "notify"]


def _bag(monkeypatch, toml=None):
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.delenv("MMW_SITE_CONFIGS", raising=False)
    if toml is None:
        monkeypatch.delenv("MMW_SITE_CONFIG", raising=False)
    else:
        monkeypatch.setenv("MMW_SITE_CONFIG", str(toml))
    return DagBag(dag_folder=str(ROOT / "dags"))


def test_intraday_dag_loads_and_wires_its_stages(monkeypatch):
    bag = _bag(monkeypatch)
    assert bag.import_errors == {}
    dag = bag.dags["mmw_intraday"]
    assert set(dag.task_ids) == set(STAGES)
    for up, down in zip(STAGES, STAGES[1:], strict=False):
        assert up in dag.get_task(down).upstream_task_ids, (up, down)
    assert dag.max_active_runs == 1 and not dag.catchup
    assert dag.schedule is None  # no site known: triggered runs only


@pytest.mark.parametrize(
    "text, every",
    [("", timedelta(minutes=10)), ('intraday_every = "5m"', timedelta(minutes=5)), ('intraday_every = "off"', None)],
)
def test_intraday_dag_period_follows_the_config(tmp_path, monkeypatch, text, every):
    toml = copy_minisite(tmp_path / "s")
    toml.write_text(toml.read_text() + f"\n[schedule]\n{text}\n")
    bag = _bag(monkeypatch, toml)
    assert bag.import_errors == {}
    dag = bag.dags["mmw_intraday"]
    assert dag.params["config"] == str(toml) and dag.max_active_runs == 1 and not dag.catchup
    if every is None:
        assert dag.schedule is None
    else:
        assert dag.schedule == every
