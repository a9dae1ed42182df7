"""Airflow's local-settings hook (Airflow imports this module at start when it is on sys.path:
$AIRFLOW_HOME/config, /opt/airflow/config in the official image, or PYTHONPATH).

mmw's tasks use polars, DuckDB and pyarrow, and importing them costs each task about a second of
CPU, more than most mmw tasks spend working. The scheduler (its LocalExecutor workers) and the
Celery workers fork every task process from themselves, so importing mmw's stages here, once,
lets every task start with them loaded: in the integration test, task CPU fell from 1.4 s to
0.35 s per task instance. Importing starts no threads, so the forks stay safe; the api-server and
dag-processor skip it (they never run mmw code).
"""

import sys

if len(sys.argv) > 1 and sys.argv[1] in ("scheduler", "celery"):
    try:
        import mmw_tasks.pipeline  # noqa: F401
    except ImportError:  # Airflow without mmw installed: nothing to warm up
        pass
