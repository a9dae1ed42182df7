"""docker-compose.yml and the Dockerfile, checked without Docker (no daemon on this machine):
every service of Airflow 3's layout is there, shares one environment and the mmw volumes, has a
healthcheck and waits for what it needs; secrets come from an .env that is not committed."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import yaml
from conftest import ROOT

AIRFLOW_SERVICES = {
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-worker",
    "airflow-triggerer",
    "airflow-init",
}
LONG_RUNNING = {"postgres", "redis"} | AIRFLOW_SERVICES - {"airflow-init"}
MMW_MOUNTS = {
    "/srv/mmw/sites",
    "/srv/mmw/lake",
    "/srv/mmw/ssh",
    "/srv/mmw/raw",
    "/opt/airflow/dags",
    "/opt/airflow/plugins",
    "/opt/airflow/logs",
}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())  # merges the <<: anchors


def _mount(spec: str) -> tuple[str, str, str]:
    """'${HOST:-./x}:/target:ro' -> ('${HOST:-./x}', '/target', 'ro')."""
    host, target, mode = re.fullmatch(r"(\$\{[^}]*\}|[^:]+):([^:]+)(?::(\w+))?", spec).groups()
    return host, target, mode or "rw"


def _targets(service: dict) -> set[str]:
    return {_mount(v)[1] for v in service.get("volumes", [])}


def test_all_services_of_the_official_layout(compose):
    assert set(compose["services"]) >= {"postgres", "redis"} | AIRFLOW_SERVICES
    commands = {name: compose["services"][name].get("command") for name in AIRFLOW_SERVICES - {"airflow-init"}}
    assert commands == {
        "airflow-apiserver": "api-server",
        "airflow-scheduler": "scheduler",
        "airflow-dag-processor": "dag-processor",
        "airflow-worker": "celery worker",
        "airflow-triggerer": "triggerer",
    }


def test_airflow_services_share_image_environment_and_volumes(compose):
    services = compose["services"]
    api = services["airflow-apiserver"]
    for name in AIRFLOW_SERVICES:
        s = services[name]
        assert s["image"] == api["image"] and s["build"] == "." and s["env_file"] == api["env_file"], name
        env = s["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith("@postgres/airflow"), name
        assert (
            env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")
            and "@redis:" in env["AIRFLOW__CELERY__BROKER_URL"]
        )
        assert env["MMW_SITE_CONFIGS"] == "/srv/mmw/sites/*.toml", name
        # tasks talk to the api-server: the URL must name that service and the port it listens on
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
        assert _targets(s) >= MMW_MOUNTS, (name, MMW_MOUNTS - _targets(s))
    assert api["ports"][0].endswith(":8080")
    modes = {_mount(v)[1]: _mount(v)[2] for v in services["airflow-worker"]["volumes"]}
    assert modes["/srv/mmw/sites"] == modes["/srv/mmw/ssh"] == "ro"
    assert modes["/srv/mmw/lake"] == "rw"  # workers write the lake


def test_healthchecks_and_start_order(compose):
    services = compose["services"]
    for name in LONG_RUNNING:
        hc = services[name]["healthcheck"]
        assert hc["test"] and hc["interval"] and hc["retries"], name
    assert "/api/v2/monitor/health" in " ".join(services["airflow-apiserver"]["healthcheck"]["test"])
    for name in AIRFLOW_SERVICES:
        deps = services[name]["depends_on"]
        assert deps["postgres"]["condition"] == deps["redis"]["condition"] == "service_healthy", name
        if name != "airflow-init":
            assert deps["airflow-init"]["condition"] == "service_completed_successfully", name
    assert services["airflow-worker"]["depends_on"]["airflow-apiserver"]["condition"] == "service_healthy"
    init_env = services["airflow-init"]["environment"]
    assert init_env["_AIRFLOW_DB_MIGRATE"] == "true" and init_env["_AIRFLOW_WWW_USER_CREATE"] == "true"


def test_secrets_come_from_an_uncommitted_env_file(compose):
    text = (ROOT / "docker-compose.yml").read_text()
    required = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*):\?", text))
    assert {"POSTGRES_PASSWORD", "AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET"} <= required
    example = (ROOT / ".env.example").read_text()
    defined = set(re.findall(r"(?m)^([A-Z_][A-Z0-9_]*)=", example))
    assert required <= defined, required - defined
    assert not re.search(r"(?i)password\s*[:=]\s*['\"]?(?!\$\{)[a-z0-9]", text.replace("POSTGRES_PASSWORD:", "")), (
        "a literal password in docker-compose.yml"
    )
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT).returncode == 0
    tracked = subprocess.run(["git", "ls-files", "--error-unmatch", ".env"], cwd=ROOT, capture_output=True)
    assert ignored and tracked.returncode != 0


def test_dockerfile_installs_mmw_into_the_airflow_image():
    lines = [ln for ln in (ROOT / "Dockerfile").read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    assert len(lines) <= 20, "keep the Dockerfile short enough to read"
    pinned = re.search(r"(?m)^apache-airflow==([\d.]+)$", (ROOT / "requirements.in").read_text()).group(1)
    text = "\n".join(lines)
    assert f"ARG AIRFLOW_VERSION={pinned}" in text and "FROM apache/airflow:${AIRFLOW_VERSION}-python3.11" in text
    for path in ("requirements.lock", "mmw_tasks", "sql", "dags", "plugins", "config/airflow_local_settings.py"):
        assert re.search(rf"(?m)^COPY .*\b{re.escape(path)}\b", text), path
        assert (ROOT / path).exists(), path
    assert '"apache-airflow==${AIRFLOW_VERSION}" -r /opt/mmw/requirements.lock' in text
    assert "-e /opt/mmw" in text  # editable: mmw_tasks finds /opt/mmw/sql next to it


# The production image is lean: no test or lint tool, no unused dependency (issue 20, item 9).
TEST_TOOLS = {
    "pytest",
    "pytest-timeout",
    "pytest-xdist",
    "hypothesis",
    "selenium",
    "aiosmtpd",
    "asyncssh",
    "ruff",
    "mypy",
    "sqlfluff",
    "duckdb-cli",
}
UNUSED = {"apache-airflow-providers-sftp", "apache-airflow-providers-ssh"}


def _pins(lock: str) -> dict[str, str]:
    text = (ROOT / lock).read_text()
    return {m[0].lower(): m[1] for m in re.findall(r"(?m)^([A-Za-z0-9_.-]+)==(\S+)", text)}


def test_production_stage_installs_only_the_production_lock():
    """No test stage is needed today (the image runs no tests); should one be added, the image
    compose builds is still the Dockerfile's last stage, so that one must stay production."""
    body = "\n".join(ln for ln in (ROOT / "Dockerfile").read_text().splitlines() if not ln.lstrip().startswith("#"))
    last = re.split(r"(?m)^FROM\s", body)[-1]
    installs = re.findall(r"pip install[^\n]*", last)
    assert installs, "the production stage installs mmw"
    for line in installs:
        assert not set(re.findall(r"[\w-]+", line)) & TEST_TOOLS, line
    assert "requirements-dev" not in last
    assert re.search(r"(?m)^COPY .*\brequirements\.lock\b", last)


def test_production_lock_has_no_test_tool_and_no_unused_dependency():
    prod, dev = _pins("requirements.lock"), _pins("requirements-dev.lock")
    assert not (TEST_TOOLS | UNUSED) & prod.keys(), (TEST_TOOLS | UNUSED) & prod.keys()
    assert TEST_TOOLS <= dev.keys(), TEST_TOOLS - dev.keys()  # make install still brings them
    assert not UNUSED & dev.keys()
    both = prod.keys() & dev.keys()  # the dev lock is resolved against the production pins
    assert all(prod[n] == dev[n] for n in both), {n for n in both if prod[n] != dev[n]}


def test_production_code_imports_only_what_the_production_lock_installs():
    """mmw_tasks, the DAGs, the plugins and config/ (what the image carries) import nothing that
    only requirements-dev.lock installs; so dropping a test tool from the image breaks no task."""
    import ast
    import importlib.metadata as md

    dist_of = md.packages_distributions()
    prod = {n.replace("_", "-") for n in _pins("requirements.lock")}
    local = {"mmw_tasks", "mmw_airflow", "mmw_connections", "airflow_local_settings"}
    bad = []
    for folder in ("mmw_tasks", "dags", "plugins", "config"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top in sys.stdlib_module_names or top in local:
                        continue
                    dists = {d.lower().replace("_", "-") for d in dist_of.get(top, [])}
                    if top == "airflow" and name.startswith("airflow.providers."):
                        provider = "apache-airflow-providers-" + name.split(".")[2].replace("_", "-")
                        dists = {provider} & prod or {provider + " (not in requirements.lock)"}
                    if not dists & prod:
                        bad.append(f"{path.relative_to(ROOT)}: {name} ({', '.join(sorted(dists)) or 'not installed'})")
    assert not bad, bad
