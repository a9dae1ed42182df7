"""`mmw demo` shows each task of `airflow dags test` as it ends (mmw_tasks/dagtest.py), from the
log lines Airflow 3.3 prints; the whole demo is run by `make demo` and tests/test_dag.py."""

from __future__ import annotations

import itertools
import sys

from mmw_tasks import dagtest

LINES = """\
2026-12-08T03:21:07.291508Z [info     ] DAG bundles loaded: dags-folder [airflow...] loc=manager.py:304
2026-12-08T03:21:08.558844Z [info     ] [DAG TEST] starting task_id=resolve map_index=-1 [airflow.sdk] loc=dag.py:1501
2026-12-08T03:21:18.685884Z [info     ] Task instance state updated new_state=success rows_affected=1
2026-12-08T03:21:18.728581Z [info     ] [DAG TEST] end task task_id=resolve map_index=-1 [airflow.sdk] loc=dag.py:1563
2026-12-08T03:21:18.904228Z [info     ] [DAG TEST] starting task_id=fetch map_index=1 [airflow.sdk] loc=dag.py:1501
2026-12-08T03:21:19.818474Z [info     ] Task instance state updated    [airflow.api] new_state=failed rows_affected=1
2026-12-08T03:21:19.834231Z [info     ] [DAG TEST] end task task_id=fetch map_index=1 [airflow.sdk] loc=dag.py:1563
2026-12-08T03:21:24.965333Z [info     ] DagRun Finished: dag_id=mmw_daily, state=failed, run_type=manual
"""


def test_one_line_per_task_as_it_ends_with_its_state():
    said: list[str] = []
    ticks = itertools.count(0, 5)
    p = dagtest.follow(LINES.splitlines(keepends=True), said.append, clock=lambda: next(ticks), quiet=60)
    assert p.tasks == [("resolve", "success"), ("fetch[1]", "failed")]
    assert p.state == "failed"
    assert [s.split() for s in said] == [["20s", "resolve", "success"], ["35s", "fetch[1]", "failed"]]
    # a line at least every `quiet` seconds, while Airflow starts and while a task runs
    said.clear()
    ticks = itertools.count(0, 5)
    dagtest.follow(LINES.splitlines(keepends=True), said.append, clock=lambda: next(ticks), quiet=5)
    lines = [" ".join(s.split()[1:]) for s in said]
    assert lines[0] == "Airflow starting ..." and "resolve success" in lines and "fetch[1] running" in lines


def test_run_streams_a_child_process():
    said: list[str] = []
    child = [sys.executable, "-c", f"print({LINES!r}, end='')"]  # stands in for airflow dags test
    rc, p = dagtest.run(child, env={"PATH": ""}, say=said.append)
    assert rc == 0 and p.state == "failed" and len(said) == 2


def test_colour_from_airflow_is_dropped():
    """Airflow's logger may colour its lines; mmw prints none of it (NO_COLOR or not) and still
    finds the tasks behind the escape sequences."""
    coloured = LINES.replace("task_id=", "\x1b[36mtask_id\x1b[0m=\x1b[35m").replace(
        "[info     ]", "[\x1b[32minfo\x1b[0m]"
    )
    said: list[str] = []
    p = dagtest.follow(coloured.splitlines(keepends=True), said.append, clock=itertools.count(0, 5).__next__, quiet=60)
    assert p.tasks == [("resolve", "success"), ("fetch[1]", "failed")] and p.state == "failed"
    assert not any("\x1b" in line for line in [*said, *p.tail])
