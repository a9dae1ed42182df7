"""Gaps: stretches of a day in which a server logged nothing (issue #17, item 6; contract section 5).

A truncated log, a missing rotated file or a server that was down leaves the day's totals short
without a word. The coverage is measured on the lines themselves, not on the files' spans: per
server, the stamps of the day's parsed lines (mail events, DNS queries), with the day's start and
end; every stretch between two of them at least `gap_hours` long is a hole
(sql/gaps/server_holes.sql).

A hole is a gap when the server was busy enough around it that so long a silence is no chance:
counting the minutes that have a line of it (not the lines: a burst of a thousand lines in one
minute says little of how busy a server is) in a stretch of `gap_hours` before the hole and one
after it (within the day), at that rate the hole would have at least `gap_min_minutes` minutes
with a line. A quiet night is no gap: a busy server has no such hole at night, and a small one
is as quiet around its hole as in it. A log that stops at 13:04 is a gap, as is a rotated file
missing in the middle of the day; so is a server whose files cover the day but hold no line of
it. Each gap is told as `1mx: no lines 13:04-24:00 (the day is partial)` in the report (json, md,
html), `mmw run`'s output and the notification, and makes the day partial.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import TypedDict

import duckdb

from mmw_tasks import sql as sqlfiles
from mmw_tasks.config import Site

# A stretch of the day a server has no line in, though it usually has (report.json `gaps`; contract
# section 5: server, from, to). `from` and `to` are ISO 8601 with the site's offset: the last line
# before the gap (or the day's start) and the first after it (or the day's end); `expected` the
# minutes with a line it would have held at the server's rate on either side (None for a server
# with no line in the whole day); `text` the gap in words, as every output tells it.
Gap = TypedDict(
    "Gap",
    {"server": str, "from": str, "to": str, "hours": float, "expected": float | None, "text": str},
)


def clock(ts: datetime, day_end: datetime, site: Site) -> str:
    """HH:MM local; the day's end is 24:00."""
    return "24:00" if ts >= day_end else ts.astimezone(site.tz).strftime("%H:%M")


def find(
    con: duckdb.DuckDBPyConnection,
    site: Site,
    day: date,
    day_start: datetime,
    day_end: datetime,
    servers: list[str],
) -> list[Gap]:
    """The gaps of `servers` (those that arrived) in the local `day`, by server, then time."""
    if not servers:
        return []
    th = site.thresholds
    near = timedelta(hours=th.gap_hours)
    holes = sqlfiles.query(
        con,
        "gaps/server_holes",
        {
            "day": day,
            "day_start": day_start,
            "day_end": day_end,
            "servers": servers,
            "min_gap": timedelta(hours=th.gap_hours),
            "near": near,
        },
    ).pl()  # (fetchall would need pytz for the times)
    out: list[Gap] = []
    for server, start, end, day_lines, before, after in holes.iter_rows():
        hours = (end - start).total_seconds() / 3600
        around = (min(near, start - day_start) + min(near, day_end - end)).total_seconds() / 3600
        expected = (before + after) / around * hours if around > 0 else 0.0
        if day_lines and expected < th.gap_min_minutes:
            continue  # a quiet stretch: as few lines around it as in it
        text = f"{server}: no lines {clock(start, day_end, site)}-{clock(end, day_end, site)}"
        out.append(
            {
                "server": server,
                "from": start.astimezone(site.tz).isoformat(),
                "to": end.astimezone(site.tz).isoformat(),
                "hours": round(hours, 2),
                "expected": round(expected, 1) if day_lines else None,
                "text": f"{text} (the day is partial)",
            }
        )
    return out


def note(g: Gap) -> str:
    """The report's note on a gap: what it is and why it counts."""
    why = (
        "it has no line in the whole day, though its files cover it"
        if g["expected"] is None
        else f"at its rate of the hours around it, about {g['expected']:g} of its minutes would have had a line"
    )
    return f"GAP: {g['text']}: {why}; totals and incidents miss whatever it did then."
