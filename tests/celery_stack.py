"""The CeleryExecutor deployment of docker-compose.yml, for real and without Docker: PostgreSQL and
Redis from Debian's packages in a temporary directory, then Airflow's api-server, scheduler and
dag-processor, and two `airflow celery worker`s, each worker with its own home and temp directory
and host name, as two machines would be, sharing the lake path as they would share an NFS mount.

Airflow's environment is docker-compose.yml's `x-airflow-common` environment, parsed, with the
`${...}` variables filled from `DOTENV` (what `.env` holds in a deployment) and only the settings in
`compose_overrides` replaced (host names and paths that differ outside the containers). What the
containers get from their image and mounts (AIRFLOW_HOME, the dags and plugins folders) and what a
test needs to be quick (ports, heartbeats, timeouts) is added in `CeleryStack.stack_env`."""

from __future__ import annotations

import glob
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import yaml
from airflow_stack import ROOT, AirflowStack, free_port, wait_until

PG_SUPERUSER = "airflow"  # docker-compose.yml's POSTGRES_USER and POSTGRES_DB
PG_DB = "airflow"
PG_PORT = 5432  # names the socket file in the temp directory; no TCP port is opened


def _dotenv() -> dict[str, str]:
    """The values a deployment's .env gives docker-compose.yml's `${...}` variables."""
    from cryptography.fernet import Fernet

    return {
        "POSTGRES_PASSWORD": "mmw-celery-test",
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        "AIRFLOW__API_AUTH__JWT_SECRET": "mmw-celery-test-" + "x" * 48,
        "MMW_WORKER_CONCURRENCY": "2",  # two cores on the test machine, shared by both workers
    }


def _substitute(value: str, variables: dict[str, str]) -> str:
    """Compose's interpolation: ${VAR}, ${VAR:-default}, ${VAR:?error}."""

    def one(m: re.Match) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3)
        if variables.get(name):
            return variables[name]
        if op == ":-":
            return arg
        raise KeyError(f"docker-compose.yml needs ${{{name}}} ({arg or 'unset'})")

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:[-?])([^}]*))?\}", one, str(value))


def compose_env(variables: dict[str, str]) -> dict[str, str]:
    """docker-compose.yml's `x-airflow-common` environment, its variables filled in."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    env = compose["x-airflow-common"]["environment"]
    return {k: _substitute(v, variables) for k, v in env.items()}


def compose_overrides(
    compose: dict[str, str], *, pg_socket_dir: Path, redis_socket: Path, api_base: str, home: Path, sites_glob: str
) -> dict[str, str]:
    """Every setting of docker-compose.yml's common environment the test must change, and only
    those: where postgres, redis and the api-server are (service names in compose; here the
    database's host becomes its socket directory, the rest of its URLs stays compose's), the
    container paths of the config file and the site configs, and the auth manager (the official
    image ships the FAB provider; requirements.lock has no FAB, and the simple auth manager's token
    is all the test needs)."""

    def pg(url: str) -> str:
        assert "@postgres/airflow" in url, url
        return url.replace("@postgres/airflow", f"@/{PG_DB}?host={pg_socket_dir}&port={PG_PORT}")

    return {
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": pg(compose["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]),
        "AIRFLOW__CELERY__RESULT_BACKEND": pg(compose["AIRFLOW__CELERY__RESULT_BACKEND"]),
        "AIRFLOW__CELERY__BROKER_URL": f"redis+socket://{redis_socket}?virtual_host=0",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api_base}/execution/",
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW_CONFIG": str(home / "airflow.cfg"),
        "MMW_SITE_CONFIGS": sites_glob,
    }


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    if found:
        return found[-1]
    if shutil.which(name):
        return str(shutil.which(name))
    raise FileNotFoundError(f"PostgreSQL's {name} not found: `make browser` installs postgresql")


def _as_postgres() -> dict:
    """PostgreSQL refuses to run as root: as root, run its programs as the `postgres` user."""
    return {"user": "postgres", "group": "postgres"} if os.geteuid() == 0 else {}


class Postgres:
    """A throwaway cluster in a temp directory, listening only on a unix socket there."""

    def __init__(self, password: str):
        self.password = password
        # not under pytest's tmp_path: that is root's, mode 0700, and postgres must enter this one
        self.dir = Path(tempfile.mkdtemp(prefix="mmw-pg-"))
        self.data = self.dir / "data"
        self.proc: subprocess.Popen | None = None

    def start(self) -> Postgres:
        pwfile = self.dir / "pw"
        pwfile.write_text(self.password + "\n")
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
            shutil.chown(pwfile, "postgres", "postgres")
        subprocess.run(
            [
                _pg_bin("initdb"),
                "-D",
                str(self.data),
                "-U",
                PG_SUPERUSER,
                f"--pwfile={pwfile}",
                "--auth=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ],
            check=True,
            capture_output=True,
            **_as_postgres(),
        )
        args = [
            _pg_bin("postgres"),
            "-D",
            str(self.data),
            "-p",
            str(PG_PORT),
            "-c",
            "listen_addresses=",
            "-c",
            f"unix_socket_directories={self.dir}",
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "max_connections=200",
        ]
        with open(self.dir / "postgres.log", "w") as log:
            self.proc = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **_as_postgres()
            )
        wait_until(self._ready, 60, f"postgres (see {self.dir}/postgres.log)", interval=0.3)
        return self

    def _ready(self) -> bool:
        import psycopg2

        try:
            psycopg2.connect(
                host=str(self.dir), port=PG_PORT, user=PG_SUPERUSER, password=self.password, dbname="postgres"
            ).close()
        except psycopg2.OperationalError as e:
            raise ValueError(str(e)) from e
        return True

    def create_db(self, name: str) -> None:
        import psycopg2

        c = psycopg2.connect(
            host=str(self.dir), port=PG_PORT, user=PG_SUPERUSER, password=self.password, dbname="postgres"
        )
        c.autocommit = True
        c.cursor().execute(f'CREATE DATABASE "{name}"')
        c.close()

    def query(self, sql: str, *args) -> list[tuple]:
        import psycopg2

        with (
            psycopg2.connect(
                host=str(self.dir), port=PG_PORT, user=PG_SUPERUSER, password=self.password, dbname=PG_DB
            ) as c,
            c.cursor() as cur,
        ):
            cur.execute(sql, args)
            return cur.fetchall()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # "fast" shutdown
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


class Redis:
    """redis-server on a unix socket in a temp directory (no TCP port), nothing saved to disk."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="mmw-redis-"))
        self.socket = self.dir / "redis.sock"
        self.proc: subprocess.Popen | None = None

    def start(self) -> Redis:
        server = shutil.which("redis-server")
        if not server:
            raise FileNotFoundError("redis-server not found: `make browser` installs it")
        args = [
            server,
            "--port",
            "0",
            "--unixsocket",
            str(self.socket),
            "--unixsocketperm",
            "700",
            "--dir",
            str(self.dir),
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
        ]
        with open(self.dir / "redis.log", "w") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_until(self.socket.exists, 30, f"redis (see {self.dir}/redis.log)", interval=0.2)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


def worker_hostname() -> str:
    """[core] hostname_callable of the test's workers: the name a machine of their own would have
    (both run on this one, whose host name would otherwise be the same for both)."""
    return os.environ["MMW_TEST_WORKER_HOSTNAME"]


class CeleryStack(AirflowStack):
    """docker-compose.yml's Airflow, from its environment: api-server, scheduler, dag-processor
    here, `airflow celery worker`s in homes of their own (`add_worker`)."""

    def __init__(self, home: Path, sites_glob: str, extra_env: dict[str, str] | None = None):
        self.dotenv = _dotenv()
        self.postgres = Postgres(self.dotenv["POSTGRES_PASSWORD"])
        self.redis = Redis()
        self.sites_glob = sites_glob
        self.workers: dict[str, subprocess.Popen] = {}
        self.worker_homes: dict[str, Path] = {}
        super().__init__(home, extra_env or {})

    def overrides(self, compose: dict[str, str]) -> dict[str, str]:
        return compose_overrides(
            compose,
            pg_socket_dir=self.postgres.dir,
            redis_socket=self.redis.socket,
            api_base=self.base,
            home=self.home,
            sites_glob=self.sites_glob,
        )

    def stack_env(self) -> dict[str, str]:
        compose = compose_env(self.dotenv)
        overrides = self.overrides(compose)
        missing = set(overrides) - set(compose)
        assert not missing, f"docker-compose.yml no longer sets {missing}: update compose_overrides"
        home = self.home
        return {
            **compose,
            **overrides,
            # what the image and the compose mounts give the containers
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(ROOT / "config"), str(ROOT), os.environ.get("PYTHONPATH")])
            ),
            # one machine: loopback, free ports for everything that listens
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": self.base,
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(free_port()),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
            # a quick test: parse once, notice a dead worker in seconds rather than minutes
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            "AIRFLOW__API__WORKERS": "1",
            # a worker that dies: its running tasks' heartbeats stop (timed out after 30 s, not 5
            # minutes); a task it had taken but not started is queued too long (2 minutes, not 10)
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_SEC": "5",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "120",
            "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "10",
        }

    def start(self, dag_ids: list[str]) -> CeleryStack:
        self.postgres.start()
        self.postgres.create_db(PG_DB)
        self.redis.start()
        super().start(dag_ids)
        return self

    def add_worker(self, name: str) -> subprocess.Popen:
        """`airflow celery worker` as a machine of its own: its own home (logs, pid file), temp
        directory, host name and log-server port; the same database, broker, dags and lake."""
        whome = self.home.parent / f"{self.home.name}-{name}"
        (whome / "tmp").mkdir(parents=True, exist_ok=True)
        env = {
            **self.env,
            "AIRFLOW_HOME": str(whome),
            "AIRFLOW_CONFIG": str(whome / "airflow.cfg"),
            "TMPDIR": str(whome / "tmp"),
            "PYTHONPATH": os.pathsep.join([self.env["PYTHONPATH"], str(Path(__file__).parent)]),
            "MMW_TEST_WORKER_HOSTNAME": name,
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "celery_stack.worker_hostname",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        }
        p = self.launch(f"worker-{name}", ["celery", "worker", "--celery-hostname", f"{name}@%h"], env)
        self.workers[name] = p
        self.worker_homes[name] = whome
        return p

    def wait_for_workers(self, names: list[str], timeout: float = 120) -> None:
        """Until every named worker has joined the broker (its startup line is in its log)."""

        def joined() -> bool:
            for n in names:
                if self.workers[n].poll() is not None:
                    log = (self.home / f"worker-{n}.log").read_text(errors="replace")
                    raise RuntimeError(f"celery worker {n} exited with {self.workers[n].returncode}:\n{log[-3000:]}")
            return all("ready." in (self.home / f"worker-{n}.log").read_text(errors="replace") for n in names)

        wait_until(joined, timeout, f"celery workers {names}", interval=1)

    def kill_worker(self, name: str) -> None:
        """The machine dies: SIGKILL to the worker, its pool and the task processes it forked."""
        p = self.workers[name]
        os.killpg(p.pid, signal.SIGKILL)
        p.wait(timeout=10)

    def stop(self) -> None:
        try:
            super().stop()
        finally:
            self.redis.stop()
            self.postgres.stop()

    def task_log(self, dag_id: str, run_id: str, task_id: str, attempt: int, map_index: int = -1) -> str:
        rel = Path("logs") / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        if map_index >= 0:
            rel = rel / f"map_index={map_index}"
        for whome in self.worker_homes.values():
            if (whome / rel / f"attempt={attempt}.log").exists():
                return (whome / rel / f"attempt={attempt}.log").read_text()
        raise FileNotFoundError(f"no worker has {rel}/attempt={attempt}.log")

    def hostnames(self, dag_id: str) -> dict[str, int]:
        """How many task instances of the DAG each host ran, from the task_instance table."""
        rows = self.postgres.query(
            "SELECT hostname, count(*) FROM task_instance WHERE dag_id = %s AND hostname <> '' GROUP BY 1", dag_id
        )
        return dict(rows)

    def elapsed(self, t0: float) -> float:
        return time.monotonic() - t0
