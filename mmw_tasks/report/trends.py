"""Trends: weekly and monthly roll-ups of daily_trends in the lake, and the trends page.

The trends stage writes the day's `daily_trends` row, then re-computes the week and the month that
hold the day (so a re-run or a late day corrects them) and writes `<lake>/reports/trends.html`; the
commit that follows refreshes the DuckDB catalog `<lake>/mmw.duckdb`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any, TypedDict

import duckdb
import polars as pl
from markupsafe import Markup

from mmw_tasks import lake
from mmw_tasks import sql as sqlfiles
from mmw_tasks.config import Site
from mmw_tasks.report import svg
from mmw_tasks.report.html import ENV
from mmw_tasks.report.model import BAND_KEYS, COEFFICIENT_NAMES, KIND_TITLES, band_params

KIND_COLUMNS = {f"n_{k}": k for k in KIND_TITLES}
KIND_SHORT = {
    "mmw_suspect": "worm suspect",
    "bulk_sender": "bulk",
    "mailing_list": "list",
    "deferred_surge": "deferred surge",
    "dns_anomaly": "DNS anomaly",
}
TREND_TOTALS = (
    ("dq", "Dq"),
    ("n_from", "from="),
    ("n_to", "to="),
    ("n_pop", "POP3 logins"),
    ("n_deferred", "deferred"),
    ("n_user_unknown", "User unknown"),
)


class RolledUp(TypedDict):
    period: str  # the ISO week (2002-W07) or the month (2002-02)
    rows: int  # rows written to its roll-up file


class RollUps(TypedDict):
    """The roll-ups roll_up wrote: the week and the month that hold the day."""

    weekly_trends: RolledUp
    monthly_trends: RolledUp


def page_path(site: Site) -> Path:
    return Path(site.lake) / "reports" / "trends.html"


def week_of(d: date) -> tuple[date, str]:
    monday = d - timedelta(days=d.weekday())
    iso = d.isocalendar()
    return monday, f"{iso.year}-W{iso.week:02d}"


def roll_up(con: duckdb.DuckDBPyConnection, site: Site, d: date) -> RollUps:
    """Write the weekly and monthly roll-ups of the periods that hold `d`."""
    monday, week = week_of(d)
    first = d.replace(day=1)

    def one(dataset: str, params: dict[str, date], period: str) -> RolledUp:
        path = lake.rollup_path(site.lake, dataset, period)
        return {"period": period, "rows": lake.copy_query(con, f"trends/{dataset}", params, path)}

    return {
        "weekly_trends": one("weekly_trends", {"week_start": monday}, week),
        "monthly_trends": one("monthly_trends", {"month_start": first}, first.strftime("%Y-%m")),
    }


def _day_axis(days: list[date]) -> tuple[list[float], list[tuple[float, str]]]:
    xs = [float(d.toordinal()) for d in days]
    if len(days) > 45:  # month starts
        ticks = [
            (float(d.toordinal()), d.strftime("%b %Y" if d.month == 1 or d == days[0] else "%b"))
            for d in days
            if d.day == 1
        ]
    else:
        step = max(1, len(days) // 8)
        ticks = [(float(d.toordinal()), d.strftime("%m-%d")) for d in days[::step]]
    return xs, ticks


def _incident_days(daily: pl.DataFrame) -> list[svg.Marker]:
    out = []
    for row in daily.filter(pl.col("n_mmw_suspect") > 0).iter_rows(named=True):
        x = float(row["day"].toordinal())
        out.append(
            svg.Marker(
                x - 0.5,
                x + 0.5,
                "",
                svg.KIND_COLORS["mmw_suspect"],
                f"{row['day']}: {row['n_mmw_suspect']} suspected worm-infected host(s)",
                ref=f"day-{row['day']}",
            )
        )
    return out


def coefficient_charts(daily: pl.DataFrame, bands: pl.DataFrame, xs, ticks, markers, min_history: int) -> list[Markup]:
    """Each coefficient per day, with its band where the history is long enough to judge drift
    (one bar per day: weekdays and weekends have bands of their own), drifts in red and unreliable
    fits in grey."""
    out = []
    for k in BAND_KEYS:
        b = daily.select("day").join(bands.filter(pl.col("coefficient") == k), on="day", how="left")
        judged = pl.col("history_days") >= min_history
        b = b.with_columns(lo=pl.when(judged).then("lo"), hi=pl.when(judged).then("hi"))
        drift = [v if flag else None for v, flag in zip(b["value"].to_list(), b["drift"].to_list(), strict=True)]
        unreliable = [
            v if ok is False else None for v, ok in zip(b["value"].to_list(), b["reliable"].to_list(), strict=True)
        ]
        out.append(
            Markup(
                svg.line_chart(
                    COEFFICIENT_NAMES[k],
                    xs,
                    [
                        svg.Series(k, daily[k].to_list(), "#1f4e9c"),
                        svg.Series("drift", drift, "#c0392b", dots=True, css="drift"),
                        svg.Series("unreliable fit", unreliable, "#999999", dots=True, css="unreliable"),
                    ],
                    ticks,
                    k,
                    markers=markers,
                    y_min=None,
                    frame=svg.Frame(height=170),
                    bands=[svg.Band(b["lo"].to_list(), b["hi"].to_list(), "history band", steps=True)],
                )
            )
        )
    return out


Column = tuple[str, Callable[[dict[str, Any]], str]]  # a table's column: its title, its cell from a row


def _int(v: Any) -> str:
    return "" if v is None else f"{int(v):,}"


def _num(v: Any) -> str:
    return "" if v is None else f"{v:.3g}"


def _col(title: str, key: str, fmt: Callable[[Any], str] = _int) -> Column:
    return title, lambda r: fmt(r.get(key))


def _incidents(r: dict[str, Any]) -> str:
    return " / ".join(_int(r.get(f"n_{k}") or 0) for k in ("mmw_suspect", "deferred_surge", "dns_anomaly"))


def _m_s_range(r: dict[str, Any]) -> str:
    lo, hi = r.get("m_s_min"), r.get("m_s_max")
    return "" if lo is None or hi is None else f"{_num(lo)}–{_num(hi)}"


# The columns the tables show, narrow enough for the page at 1280 px: thousands separated, three
# significant digits, the incidents that need attention in one cell.
INCIDENTS = "worm / surge / DNS"
ROLLUP_COLUMNS: list[Column] = [
    _col("days", "days"),
    _col("Dq", "dq"),
    _col("from=", "n_from"),
    _col("POP3 logins", "n_pop"),
    _col('"User unknown"', "n_user_unknown"),
    _col("deferred", "deferral_rate", lambda v: "" if v is None else f"{v:.1%}"),
    _col("m_s", "m_s", _num),
    ("m_s range", _m_s_range),
    _col("m_p", "m_p", _num),
    _col("R²", "r2", _num),
    _col("q", "q", _num),
    _col("n", "n", _num),
    (INCIDENTS, _incidents),
]
DAY_COLUMNS: list[Column] = [
    _col("day", "day", str),
    _col("", "day", lambda d: d.strftime("%a")),
    _col("Dq", "dq"),
    _col("from=", "n_from"),
    _col("POP3 logins", "n_pop"),
    _col('"User unknown"', "n_user_unknown"),
    _col("m_s", "m_s", _num),
    _col("m_p", "m_p", _num),
    _col("R²", "r2", _num),
    _col("q", "q", _num),
    _col("n", "n", _num),
    (INCIDENTS, _incidents),
    _col("drift", "drift", lambda v: v or ""),
    _col("fit", "reliable", lambda v: "unreliable" if v is False else ""),
]


def _table(df: pl.DataFrame, columns: list[Column], days: bool = False) -> dict[str, Any]:
    """A table's column titles and rows of cells for the template (`days`: the first column is
    the day, a link to its report)."""
    rows = []
    for r in df.iter_rows(named=True):
        cells = [{"text": cell(r), "href": None} for _, cell in columns]
        if days:
            cells[0]["href"] = f"day={r['day']}/report.html"
        rows.append({"id": f"day-{r['day']}" if days else None, "cells": cells})
    return {"titles": [t for t, _ in columns], "rows": rows}


def render(site: Site, daily: pl.DataFrame, bands: pl.DataFrame, weekly: pl.DataFrame, monthly: pl.DataFrame) -> str:
    daily = daily.sort("day")
    days = daily["day"].to_list()
    xs, ticks = _day_axis(days)
    markers = _incident_days(daily)
    colors = ("#1f4e9c", "#d9730d", "#444", "#2e8b57", "#c0392b", "#8e44ad")
    totals = [
        Markup(
            svg.line_chart(
                title,
                xs,
                [svg.Series(title, daily[c].cast(pl.Float64).to_list(), color)],
                ticks,
                f"{title} per day",
                markers=markers,
                frame=svg.Frame(height=150),
            )
        )
        for (c, title), color in zip(TREND_TOTALS, colors, strict=True)
    ]
    kinds = [
        svg.Series(KIND_SHORT[k], daily[c].cast(pl.Float64).to_list(), svg.KIND_COLORS[k])
        for c, k in KIND_COLUMNS.items()
        if c in daily.columns
    ]
    bars = Markup(svg.stacked_bars("Incidents per day", xs, kinds, ticks, "incidents") if days else "")
    drifted = (
        bands.filter(pl.col("drift")).group_by("day").agg(pl.col("coefficient").sort().str.join(", ").alias("drift"))
    )
    reliable = bands.group_by("day").agg(pl.col("reliable").first())
    recent = (
        daily.sort("day", descending=True)
        .join(drifted, on="day", how="left", maintain_order="left")
        .join(reliable, on="day", how="left", maintain_order="left")
    )
    span = f"{days[0]} to {days[-1]}, {len(days)} day(s)" if days else "no days yet"
    return ENV.get_template("trends.html.j2").render(
        site=site.name,
        timezone=site.timezone,
        settings=site.report,
        span=span,
        latest=days[-1] if days else None,
        coefficients=coefficient_charts(daily, bands, xs, ticks, markers, site.report.min_history),
        totals=totals,
        bars=bars,
        monthly=_table(monthly.sort("month"), [_col("month", "month", str), *ROLLUP_COLUMNS]),
        weekly=_table(weekly.sort("week"), [_col("week", "week", str), *ROLLUP_COLUMNS]),
        days=_table(recent, DAY_COLUMNS, days=True),
        incidents_title=INCIDENTS,
    )


def write_page(con: duckdb.DuckDBPyConnection, site: Site) -> Path:
    daily = sqlfiles.query(con, "trends/page_days", {}).pl()
    bands = sqlfiles.query(con, "trends/coefficient_bands", band_params(site)).pl()
    weekly = sqlfiles.query(con, "trends/page_weeks", {}).pl()
    monthly = sqlfiles.query(con, "trends/page_months", {}).pl()
    path = page_path(site)
    path.parent.mkdir(parents=True, exist_ok=True)
    with lake.atomic_file(path) as tmp:
        tmp.write_text(render(site, daily, bands, weekly, monthly))
    return path
