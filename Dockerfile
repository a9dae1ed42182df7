# mmw on the official Airflow 3 image: the mmw_tasks package, its SQL, the DAGs and the plugin.
# Build: docker compose build   (or: docker build -t mmw-airflow .)
ARG AIRFLOW_VERSION=3.3.2
FROM apache/airflow:${AIRFLOW_VERSION}-python3.11
ARG AIRFLOW_VERSION

# The pinned production dependencies the tests ran with (requirements.lock only: the test and
# lint tools of requirements-dev.lock stay out of the image); pinning Airflow keeps pip from moving it.
COPY --chown=airflow:root requirements.lock /opt/mmw/requirements.lock
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -r /opt/mmw/requirements.lock

# mmw itself, editable so mmw_tasks finds /opt/mmw/sql; gives the `mmw` command too. Its kernels
# (mmw_tasks/parse/csrc/*.c) are compiled at install: the image's Python has its headers, gcc is added.
USER root
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && apt-get clean && rm -rf /var/lib/apt/lists/*
USER airflow
COPY --chown=airflow:root pyproject.toml /opt/mmw/
COPY --chown=airflow:root mmw_tasks /opt/mmw/mmw_tasks
COPY --chown=airflow:root sql /opt/mmw/sql
RUN pip install --no-cache-dir --no-deps -e /opt/mmw

# DAGs, plugin and local settings (preloads mmw into the scheduler and workers) are baked in, so a
# worker on another machine runs exactly this code (docker-compose.yml mounts ./dags, ./plugins and
# ./config over them on this machine).
COPY --chown=airflow:root dags /opt/airflow/dags
COPY --chown=airflow:root plugins /opt/airflow/plugins
COPY --chown=airflow:root config/airflow_local_settings.py /opt/airflow/config/
