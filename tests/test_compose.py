"""docker-compose.yml and the Dockerfile, checked without Docker (no daemon on this machine):
every service of Airflow 3's layout is there, shares one environment and the mmw volumes, has a
healthcheck and waits for what it needs; secrets come from an .env that is not committed."""

from __future__ import annotations

import re
import subprocess

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
