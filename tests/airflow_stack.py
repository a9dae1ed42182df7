"""A real Airflow 3 stack for tests: api-server, scheduler and dag-processor on LocalExecutor and
SQLite, on free ports, each in its own process group so teardown kills exactly what it started."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
COMPONENTS = ("api-server", "scheduler", "dag-processor")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, timeout: float, what: str, interval: float = 2.0):
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = pred()
            if value:
                return value
        except (httpx.HTTPError, KeyError, ValueError) as e:
            last_error = e
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what} (last error: {last_error})")


class AirflowStack:
    components: tuple[str, ...] = COMPONENTS

    def __init__(self, home: Path, extra_env: dict[str, str]):
        self.home = home
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **self.stack_env(), **extra_env}
        self.procs: list[subprocess.Popen] = []
        self.client = httpx.Client(base_url=self.base, timeout=20)

    def stack_env(self) -> dict[str, str]:
        """Airflow's settings for this stack (LocalExecutor on SQLite; subclasses change it)."""
        home, port = self.home, self.port
        return {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",  # LocalExecutor pre-forks this many workers
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__BASE_URL": self.base,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base}/execution/",
            "AIRFLOW__API_AUTH__JWT_SECRET": "mmw-stack-test-" + "x" * 50,
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",  # parse once: the files do not change
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
            # mmw_tasks from this checkout, and config/airflow_local_settings.py (preloads it in the scheduler)
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(ROOT / "config"), str(ROOT), os.environ.get("PYTHONPATH")])
            ),
        }

    def launch(self, name: str, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        """`airflow <args>` in its own process group, its output in <home>/<name>.log."""
        with open(self.home / f"{name}.log", "w") as log:
            p = subprocess.Popen(
                [AIRFLOW, *args],
                env=env or self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs.append(p)
        return p

    def start(self, dag_ids: list[str]) -> AirflowStack:
        (self.home / "passwords.json").write_text(json.dumps({"admin": "admin"}))
        r = subprocess.run([AIRFLOW, "db", "migrate"], env=self.env, capture_output=True, text=True)
        if r.returncode:
            raise RuntimeError(f"airflow db migrate: rc {r.returncode}\n{(r.stdout + r.stderr)[-4000:]}")
        for comp in self.components:
            self.launch(comp, [comp])
        wait_until(lambda: self.client.get("/api/v2/monitor/health").status_code == 200, 150, "api-server")
        token = self.client.post("/auth/token", json={"username": "admin", "password": "admin"}).json()
        self.client.headers["Authorization"] = f"Bearer {token['access_token']}"
        for dag_id in dag_ids:
            wait_until(
                lambda d=dag_id: self.client.get(f"/api/v2/dags/{d}").status_code == 200,
                150,
                f"{dag_id} parsed (see {self.home}/dag-processor.log)",
            )
        return self

    def stop(self) -> None:
        self.client.close()
        for p in self.procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in self.procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=10)

    # --- REST helpers -------------------------------------------------------------------------
    def get(self, path: str, **params) -> dict:
        r = self.client.get(f"/api/v2{path}", params=params)
        r.raise_for_status()
        return r.json()

    def post(self, path: str, body: dict) -> dict:
        for _ in range(20):  # SQLite: "Database is locked" (503) while the scheduler writes; try again
            r = self.client.post(f"/api/v2{path}", json=body)
            if r.status_code != 503:
                break
            time.sleep(1)
        if r.status_code >= 400:
            raise AssertionError(f"POST {path} -> {r.status_code}: {r.text}")
        return r.json()

    def runs(self, dag_id: str, **params) -> list[dict]:
        return self.get(f"/dags/{dag_id}/dagRuns", limit=100, **params)["dag_runs"]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        return self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", limit=100)["task_instances"]

    def wait_for_runs(self, dag_id: str, n: int, timeout: float, **params) -> list[dict]:
        def finished():
            runs = self.runs(dag_id, **params)
            done = [r for r in runs if r["state"] in ("success", "failed")]
            return runs if len(runs) >= n and len(done) == len(runs) else None

        return wait_until(finished, timeout, f"{n} finished run(s) of {dag_id} {params}")

    def task_log(self, dag_id: str, run_id: str, task_id: str, attempt: int, map_index: int = -1) -> str:
        folder = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        if map_index >= 0:
            folder = folder / f"map_index={map_index}"
        return (folder / f"attempt={attempt}.log").read_text()

    def timeline(self, dag_id: str, run_id: str) -> str:
        """When each task was queued, started and ended (seconds after the first was queued)."""
        import pendulum

        tis = [t for t in self.task_instances(dag_id, run_id) if t["queued_when"]]
        t0 = min(pendulum.parse(t["queued_when"]) for t in tis)

        def sec(v):
            return f"{(pendulum.parse(v) - t0).total_seconds():6.1f}" if v else "     -"

        return "\n".join(
            f"{t['task_id']:>10}[{t['map_index']:>2}] {t['state']:>15} queued {sec(t['queued_when'])} "
            f"start {sec(t['start_date'])} end {sec(t['end_date'])}"
            for t in sorted(tis, key=lambda t: t["queued_when"])
        )

    def explain(self, dag_id: str, run_id: str) -> str:
        """Task states and the tail of the failed tasks' logs, for assertion messages."""
        lines = []
        for ti in self.task_instances(dag_id, run_id):
            lines.append(f"{ti['task_id']}[{ti['map_index']}]: {ti['state']} (try {ti['try_number']})")
            if ti["state"] == "failed":
                try:
                    lines.append(
                        self.task_log(dag_id, run_id, ti["task_id"], ti["try_number"], ti["map_index"])[-3000:]
                    )
                except OSError as e:
                    lines.append(str(e))
        return "\n".join(lines)
