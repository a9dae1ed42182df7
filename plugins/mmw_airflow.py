"""mmw's Airflow plugin: the site-local-day timetable, the notifiers, and what the DAG files
wire tasks with (the stages, their assets, the fetch's retries, the DAG's date bounds).

Airflow loads this file from its plugins folder (`[core] plugins_folder`, /opt/airflow/plugins in
the official image); the timetable must be registered here or the scheduler cannot read the DAG
back. The DAG files import from it (the plugins folder is on sys.path).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pendulum
from airflow.plugins_manager import AirflowPlugin
from airflow.sdk import Asset, BaseNotifier
from airflow.timetables.base import DagRunInfo, DataInterval, TimeRestriction, Timetable

from mmw_tasks.deploy import DAY_OUTPUTS, DagSite

UTC = pendulum.UTC


class _Pipeline:
    """mmw_tasks.pipeline, imported when a task first uses it rather than when a DAG file is
    parsed: parsing stays cheap (polars, DuckDB and pyarrow take about a second to import, and
    the dag-processor never runs mmw code), and a task process that has it preloaded
    (config/airflow_local_settings.py) finds it loaded."""

    def __getattr__(self, name: str) -> Any:
        from mmw_tasks import pipeline as module

        return getattr(module, name)


pipeline = _Pipeline()


def day_assets(site: DagSite) -> list[Asset]:
    """The lake datasets a day's commit makes visible, as the assets the commit task declares
    (deploy.DAY_OUTPUTS): the stages write into the day's new generation, which nobody sees before."""
    return [lake_asset(site, dataset) for dataset in DAY_OUTPUTS]


def plan_or_skip(params: dict[str, Any], dag_run: Any) -> list:
    """The resolve task: pipeline.plan_run for the run's params, the run skipped if the day is done."""
    from airflow.sdk.exceptions import AirflowSkipException

    try:
        return pipeline.plan_run(params["config"], params.get("day"), force=params["force"], dag_run=dag_run)
    except pipeline.DayDone as e:
        raise AirflowSkipException(str(e)) from None


def lake_asset(site: DagSite, dataset: str) -> Asset:
    name, uri = site.asset(dataset)
    return Asset(name=name, uri=uri)


def fetch_retries(site: DagSite) -> dict[str, Any]:
    """The fetch task's retries ([schedule]): fetch_retries more tries, the wait doubling from
    fetch_retry_delay up to fetch_max_retry_delay."""
    s = site.schedule
    return {
        "retries": s.fetch_retries,
        "retry_delay": s.fetch_retry_delay,
        "retry_exponential_backoff": True,
        "max_retry_delay": s.fetch_max_retry_delay,
    }


def day_label(day: dt.date | None) -> pendulum.DateTime | None:
    """A DAG's start_date or end_date for LocalDayTimetable: the calendar day, as midnight UTC
    (the timetable reads a bound as the date it shows, whatever the site's zone: _bound_day)."""
    return pendulum.datetime(day.year, day.month, day.day, tz="UTC") if day else None


def day_bounds(site: DagSite) -> dict[str, pendulum.DateTime | None]:
    """The daily DAG's start_date and end_date: [schedule].start (else 2000-01-01) and .end."""
    return {
        "start_date": day_label(site.schedule.start or dt.date(2000, 1, 1)),
        "end_date": day_label(site.schedule.end),
    }


def _bound_day(bound: dt.datetime, *, round_up: bool) -> dt.date:
    """A date bound (start_date, end_date, backfill --from-date/--to-date) read as a calendar date:
    the date it shows in its own offset, counted from the next day when it is not midnight. So
    `--from-date 2002-02-16` (midnight UTC) and `2002-02-16T00:00:00-05:00` both mean the site's
    local day 2002-02-16, whatever the site's time zone."""
    b = pendulum.instance(bound)
    day = b.date()
    if round_up and (b.hour, b.minute, b.second, b.microsecond) != (0, 0, 0, 0):
        day += dt.timedelta(days=1)
    return day


class LocalDayTimetable(Timetable):
    """One run per local calendar day of a site.

    The data interval is the day, 00:00 to 24:00 in the site's time zone (23 or 25 hours on DST
    days), and the run starts at `run_at` local time the next morning, after the servers rotate
    their logs. Scheduled runs are named `scheduled__<day>` (backfill runs keep Airflow's own
    names; their data interval says the day). A manual run, or `airflow dags test DAG <date>`,
    covers the local day before its logical date.
    """

    def __init__(self, timezone: str = "UTC", run_at: str = "06:30") -> None:
        self._tz_name = timezone
        self._tz = pendulum.timezone(timezone)
        hour, minute = (int(x) for x in run_at.split(":"))
        self._run_at = dt.time(hour, minute)
        self.description = f"every local day in {timezone}, run at {run_at} the next morning"

    @property
    def summary(self) -> str:
        return f"local day ({self._tz_name}), runs {self._run_at:%H:%M} next day"

    def serialize(self) -> dict[str, Any]:
        return {"timezone": self._tz_name, "run_at": f"{self._run_at:%H:%M}"}

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> Timetable:
        return cls(data["timezone"], data["run_at"])

    def _midnight(self, day: dt.date) -> pendulum.DateTime:
        return pendulum.datetime(day.year, day.month, day.day, tz=self._tz)

    def interval_of(self, day: dt.date) -> DataInterval:
        return DataInterval(
            self._midnight(day).in_timezone(UTC), self._midnight(day + dt.timedelta(days=1)).in_timezone(UTC)
        )

    def run_after_of(self, day: dt.date) -> pendulum.DateTime:
        nxt = day + dt.timedelta(days=1)
        return pendulum.datetime(
            nxt.year, nxt.month, nxt.day, self._run_at.hour, self._run_at.minute, tz=self._tz
        ).in_timezone(UTC)

    def day_of(self, when: dt.datetime) -> dt.date:
        return pendulum.instance(when).in_timezone(self._tz).date()

    def info_for(self, day: dt.date) -> DagRunInfo:
        return DagRunInfo(run_after=self.run_after_of(day), data_interval=self.interval_of(day))

    def infer_manual_data_interval(self, *, run_after: dt.datetime) -> DataInterval:
        return self.interval_of(self.day_of(run_after) - dt.timedelta(days=1))

    def next_dagrun_info(
        self, *, last_automated_data_interval: DataInterval | None, restriction: TimeRestriction
    ) -> DagRunInfo | None:
        if last_automated_data_interval is not None:
            day = self.day_of(last_automated_data_interval.start) + dt.timedelta(days=1)
        elif restriction.earliest is not None:
            day = _bound_day(restriction.earliest, round_up=True)
        else:
            return None
        if not restriction.catchup:  # skip to the latest day whose run time has come
            now = pendulum.now(UTC)
            due = self.day_of(now) - dt.timedelta(days=1)
            if self.run_after_of(due) > now:
                due -= dt.timedelta(days=1)
            day = max(day, due)
        if restriction.latest is not None and day > _bound_day(restriction.latest, round_up=False):
            return None
        return self.info_for(day)

    def generate_run_id(self, *, run_type, run_after, data_interval, **extra) -> str:
        kind = getattr(run_type, "value", str(run_type))
        if data_interval is not None and kind == "scheduled":
            return f"{kind}__{self.day_of(data_interval.start)}"
        return super().generate_run_id(run_type=run_type, run_after=run_after, data_interval=data_interval, **extra)


class WebhookNotifier(BaseNotifier):
    """POST a JSON message to a URL, or to the URL of an Airflow connection (`host`, with the
    connection's scheme, port, and schema as the path), which keeps tokens out of config files."""

    template_fields = ("url",)

    def __init__(
        self, *, message: dict, url: str | None = None, conn_id: str | None = None, timeout: float = 10.0
    ) -> None:
        super().__init__()
        self.message, self.url, self.conn_id, self.timeout = message, url, conn_id, timeout

    def target(self) -> str:
        if self.url:
            return self.url
        from airflow.sdk import Connection

        c = Connection.get(self.conn_id)
        if (c.host or "").startswith(("http://", "https://")):
            return c.host
        scheme = "https" if c.conn_type in ("https", "http_secure") else "http"
        return f"{scheme}://{c.host}{f':{c.port}' if c.port else ''}/{(c.schema or '').lstrip('/')}"

    def notify(self, context) -> None:
        from mmw_tasks.report.notify import post_json

        post_json(self.target(), self.message, timeout=self.timeout)


def _jobs(context) -> list[dict]:
    """The resolve task's result (one job per server, each with config and day), if there is one."""
    ti = context.get("ti")
    try:
        return (ti.xcom_pull(task_ids="resolve") if ti is not None else None) or []
    except Exception:  # noqa: BLE001 - the callback must still say something
        return []


def _day_of_run(context, site_tz: str) -> str | None:
    """The mmw day a run works on, from the resolve task's result, else the params or interval."""
    jobs = _jobs(context)
    if jobs and jobs[0].get("day"):
        return jobs[0]["day"]
    params = context.get("params") or {}
    if params.get("day"):
        return str(params["day"])
    start = context.get("data_interval_start")
    return str(pendulum.instance(start).in_timezone(site_tz).date()) if start else None


def _task_label(context) -> str | None:
    ti = context.get("ti")
    if ti is None:
        return None
    label, index = ti.task_id, getattr(ti, "map_index", -1)
    if index is not None and index >= 0:
        try:  # mapped over the site's servers: name the server, not its index
            label = f"{label}[{_jobs(context)[index]['server']}]"
        except Exception:  # noqa: BLE001
            label = f"{label}[{index}]"
    return label


class MmwNotifier(BaseNotifier):
    """Tell a site's people, per its [notify] table, about a task that failed for good
    (`event="failure"`, as on_failure_callback) or a day with incidents or a partial report
    (`event="incidents"`, as on_success_callback of the report task): e-mail through the SMTP
    provider's SmtpNotifier and a JSON POST through WebhookNotifier. Every channel is tried; the
    first error is raised afterwards, so a broken webhook does not silence the e-mail."""

    def __init__(
        self,
        *,
        event: str,
        site: str,
        timezone: str,
        email: tuple[str, ...] = (),
        email_from: str | None = None,
        smtp_conn_id: str = "smtp_default",
        webhook: str | None = None,
        webhook_conn_id: str | None = None,
        incident_kinds: tuple[str, ...] = (),
    ) -> None:
        super().__init__()
        if event not in ("failure", "incidents"):
            raise ValueError(f"event must be 'failure' or 'incidents', got {event!r}")
        self.event, self.site, self.timezone = event, site, timezone
        self.email, self.email_from, self.smtp_conn_id = tuple(email), email_from, smtp_conn_id
        self.webhook, self.webhook_conn_id = webhook, webhook_conn_id
        self.incident_kinds = tuple(incident_kinds)
        self.sent: list[dict] = []

    @classmethod
    def for_site(cls, event: str, dag_site) -> MmwNotifier | None:
        n = dag_site.notify
        if not n.enabled or (event == "failure" and not n.on_failure):
            return None
        return cls(
            event=event,
            site=dag_site.name,
            timezone=dag_site.timezone,
            email=n.email,
            email_from=n.email_from,
            smtp_conn_id=n.smtp_conn_id,
            webhook=n.webhook,
            webhook_conn_id=n.webhook_conn_id,
            incident_kinds=n.incident_kinds,
        )

    @classmethod
    def callbacks(cls, event: str, dag_site) -> list[MmwNotifier]:
        """for_site as a task's list of callbacks: the notifier, or none when nobody is told."""
        notifier = cls.for_site(event, dag_site)
        return [notifier] if notifier else []

    def message(self, context) -> dict | None:
        from mmw_tasks.report import notify

        day = _day_of_run(context, self.timezone)
        dag = context.get("dag")
        dag_id = getattr(dag, "dag_id", None) or (context.get("ti") and context["ti"].dag_id)
        run_id = context.get("run_id")
        if self.event == "failure":
            exc = context.get("exception")
            if isinstance(exc, BaseException):
                error = f"{type(exc).__name__}: {exc}"
            else:
                error = exc or context.get("reason")
            ti = context.get("ti")
            return notify.failure_message(
                self.site,
                day,
                dag_id,
                run_id,
                _task_label(context),
                str(error) if error else None,
                getattr(ti, "try_number", None),
            )
        report_path = self._report_path(context, day)
        if report_path is None or not report_path.is_file():
            return None
        return notify.incident_message(
            self.site, json.loads(report_path.read_text()), report_path, self.incident_kinds, dag_id, run_id
        )

    @staticmethod
    def _report_path(context, day: str | None) -> Path | None:
        from mmw_tasks.config import load_site
        from mmw_tasks.report.build import report_dir

        jobs = _jobs(context)
        config = (jobs[0]["config"] if jobs else None) or (context.get("params") or {}).get("config")
        if not (config and day):
            return None
        return report_dir(load_site(config), day) / "report.json"

    def notify(self, context) -> None:
        msg = self.message(context)
        if msg is None:
            return
        self.send(msg, context)

    def send(self, msg: dict, context) -> None:
        """Send `msg` (notify's JSON message: subject, text, ...) through every channel of the
        site; the mmw_intraday DAG sends its alerts with this."""
        errors: list[BaseException] = []
        channels = []
        if self.webhook or self.webhook_conn_id:
            channels.append(WebhookNotifier(message=msg, url=self.webhook, conn_id=self.webhook_conn_id))
        if self.email:
            from airflow.providers.smtp.notifications.smtp import SmtpNotifier

            from mmw_tasks.report.notify import as_html

            channels.append(
                SmtpNotifier(
                    to=list(self.email),
                    from_email=self.email_from,
                    subject=msg["subject"],
                    html_content=as_html(msg),
                    smtp_conn_id=self.smtp_conn_id,
                )
            )
        for channel in channels:
            try:
                channel.notify(context)
            except Exception as e:  # noqa: BLE001 - try every channel, then report
                self.log.error("mmw notification via %s failed: %s", type(channel).__name__, e)
                errors.append(e)
        self.sent.append(msg)
        if errors:
            raise errors[0]


class MmwPlugin(AirflowPlugin):
    name = "mmw"
    timetables = [LocalDayTimetable]
