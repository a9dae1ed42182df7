"""What every judged entity did today, per bin and over sliding windows, and what it used to do.

All entities at once: one query per step for the whole day, whatever the number of hosts
(sql/detect/entity_bins.sql, host_lookups.sql, entity_history.sql, entity_hours.sql,
novel_recipients.sql), and
windows as polars rolling sums over the bins. Counts of distinct things (senders, recipients,
domains, sizes) are counted where the entity first showed them today, so that they add up over
bins: a window's `new_recipients` are the recipients it mailed for the first time that day.

An entity is a client host (`sender` null) or, for localhost, the mail servers, relays
(configured or learnt from history) and mail with no client, one sender through that client
(`sender` set; "" for lines whose message has no sender). Remote clients are not judged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import duckdb
import polars as pl

from mmw_tasks import lake
from mmw_tasks import sql as sqlfiles
from mmw_tasks.config import Site
from mmw_tasks.detect.clients import SPLIT_KINDS, kinds_of

ENTITY = ["client_ip", "sender"]
# per-bin counts that add up over bins (sql/detect/entity_bins.sql, host_lookups.sql)
ADDITIVE = (
    "messages",
    "refused_sessions",
    "size_repeats",
    "large_messages",
    "new_senders",
    "new_foreign_senders",
    "foreign_messages",
    "attempts",
    "refused",
    "user_unknown",
    "deferred",
    "new_recipients",
    "new_domains",
    "novel_recipients",
    "mx_lookups",
)
DAY_WINDOW = 0  # window_minutes of the cumulative window: everything since the day began


@dataclass(frozen=True)
class Entities:
    """The day's judged entities: `bins` (entity x bin, ADDITIVE counts), `windows` (entity x
    window x end bin: the sums over the window and its shape), `history` (one row per entity
    with what it did on the trailing days), `hours` (one row per entity and local hour of the
    trailing days: its most messages in that hour, the days it was busy in it) and `relays`
    (hosts judged per sender because history shows them relaying for many senders; configured
    relays are not listed)."""

    bins: pl.DataFrame
    windows: pl.DataFrame
    history: pl.DataFrame
    hours: pl.DataFrame
    relays: tuple[str, ...]
    day_start: datetime


def learnt_relays(con: duckdb.DuckDBPyConnection, site: Site, day: date, since: date) -> tuple[str, ...]:
    """Local hosts that relayed for at least `relay_min_senders` distinct senders of our domains
    on `relay_min_days` of the trailing days, and were never suspected meanwhile."""
    if not lake.has_files(site.lake, "host_days"):
        return ()
    th = site.thresholds
    rows = sqlfiles.query(
        con,
        "detect/learnt_relays",
        {"day": day, "since": since, "min_senders": th.relay_min_senders, "min_days": th.relay_min_days},
    ).fetchall()
    return tuple(r[0] for r in rows)


def judge_clients(con: duckdb.DuckDBPyConnection, site: Site, day: date, relays: tuple[str, ...]) -> None:
    """Register in `con` the table `judged`: the day's clients that are judged (all but remote
    ones), their kind, and whether their mail is judged per sender (`split`)."""
    ips = sqlfiles.query(con, "detect/day_clients", {"day": day}).pl()["client_ip"]
    judged = (
        pl.DataFrame({"client_ip": ips})
        .with_columns(kinds_of(ips, site, relays))
        .filter(pl.col("client_kind") != "remote")
        .with_columns(split=pl.col("client_kind").is_in(SPLIT_KINDS))
    )
    con.register("judged", judged.to_arrow())


def entity_bins(con: duckdb.DuckDBPyConnection, site: Site, params: dict) -> pl.DataFrame:
    """The judged entities' ADDITIVE counts per bin (the table judged_events is made first)."""
    sqlfiles.execute(con, "detect/judged_events", params)
    bins = sqlfiles.query(con, "detect/entity_bins", params).pl()
    keys = [*ENTITY, "bin"]
    if lake.has_files(site.lake, "address_book"):
        novel = sqlfiles.query(con, "detect/novel_recipients", params).pl()
        bins = bins.join(novel, on=keys, how="left", nulls_equal=True)
    else:  # no address book yet: nothing is known to be novel
        bins = bins.with_columns(novel_recipients=pl.lit(0, pl.Int64))
    if lake.has_files(site.lake, "dns_queries"):
        lookups = sqlfiles.query(con, "detect/host_lookups", params).pl()
        bins = bins.join(
            lookups.with_columns(sender=pl.lit(None, pl.String)),
            on=keys,
            how="full",
            coalesce=True,
            nulls_equal=True,
        )
    kinds = bins.filter(pl.col("client_kind").is_not_null()).select("client_ip", "client_kind").unique("client_ip")
    counts = [c for c in ADDITIVE if c in bins.columns]
    return (
        bins.drop("client_kind")
        .join(kinds, on="client_ip", how="left")
        .with_columns([pl.col(c).fill_null(0) for c in counts])
        .with_columns([pl.lit(0, pl.Int64).alias(c) for c in ADDITIVE if c not in bins.columns])
        .sort([*ENTITY, "bin"], nulls_last=True)
    )


def windows(bins: pl.DataFrame, site: Site) -> pl.DataFrame:
    """For every entity, window length and active bin of the day: the ADDITIVE sums over the
    window that ends with that bin, its first active bin, how many of its bins were active and
    the most messages in one of them. The windows are [thresholds].windows_minutes, and the
    whole day so far (window_minutes 0)."""
    step = site.interval
    sums = [pl.col(c).sum() for c in ADDITIVE]
    shape = [
        pl.col("bin").min().alias("first_bin"),
        pl.len().alias("active_bins"),
        pl.col("messages").max().alias("peak_messages"),
        pl.col("first_ts").min(),
    ]
    # An entity with fewer than min_messages messages and refused sessions all day has no window
    # the signals judge (signals.score): its whole day, one row, is all its verdict needs. At ISP
    # size these are most entities, and their rolling windows most of the memory.
    day_total = (pl.col("messages") + pl.col("refused_sessions")).sum().over(ENTITY)
    kinds = bins.select("client_ip", "client_kind").unique("client_ip")
    small = bins.filter(day_total < site.thresholds.min_messages)
    bins = bins.filter(day_total >= site.thresholds.min_messages)
    parts = [
        small.group_by(ENTITY)
        .agg(pl.col("bin").max(), *sums, *shape)
        .with_columns(window_minutes=pl.lit(DAY_WINDOW, pl.Int32))
    ]
    for minutes in site.thresholds.windows_minutes:
        w = bins.rolling(index_column="bin", period=f"{minutes}m", group_by=ENTITY).agg(*sums, *shape)
        parts.append(w.with_columns(window_minutes=pl.lit(minutes, pl.Int32)))
    cum = bins.select(
        *ENTITY,
        "bin",
        *[pl.col(c).cum_sum().over(ENTITY) for c in ADDITIVE],
        pl.col("bin").min().over(ENTITY).alias("first_bin"),
        pl.int_range(1, pl.len() + 1, dtype=pl.UInt32).over(ENTITY).alias("active_bins"),
        pl.col("messages").cum_max().over(ENTITY).alias("peak_messages"),
        pl.col("first_ts").min().over(ENTITY).alias("first_ts"),
        window_minutes=pl.lit(DAY_WINDOW, pl.Int32),
    )
    out = pl.concat([*parts, cum], how="diagonal_relaxed")
    return out.join(kinds, on="client_ip", how="left").with_columns(
        end=pl.col("bin") + step,
        span_minutes=((pl.col("bin") + step - pl.col("first_bin")).dt.total_minutes()).cast(pl.Int32),
    )


def history(con: duckdb.DuckDBPyConnection, site: Site, day: date, since: date) -> tuple[pl.DataFrame, pl.DataFrame]:
    """What each entity did on the trailing days (host_days): (one row per entity: days seen, its
    most messages in one bin and in one day, the days it was a suspect; one row per entity and
    local hour h: its most messages in that hour (`hour_max`) and the days on which it sent at
    least host_min_messages in it (`hour_busy_days`))."""
    params = {"day": day, "since": since, "busy": site.thresholds.host_min_messages}
    per_entity = sqlfiles.query(con, "detect/entity_history", params).pl()
    suspects = sqlfiles.query(con, "detect/entity_suspect_days", params).pl()
    per_entity = per_entity.join(suspects, on=ENTITY, how="left", nulls_equal=True).with_columns(
        pl.col("suspect_days").fill_null(pl.lit([], pl.List(pl.Date)))
    )
    return per_entity, sqlfiles.query(con, "detect/entity_hours", params).pl()


def day_summary(bins: pl.DataFrame, site: Site) -> pl.DataFrame:
    """One row per entity (and one per split host as a whole) for the host_days dataset: the
    day's totals, distinct counts, and messages per local hour."""
    tz = site.timezone
    hour = pl.col("bin").dt.convert_time_zone(tz).dt.hour().cast(pl.Int32)
    per_hour = bins.with_columns(hour=hour).group_by([*ENTITY, "hour"]).agg(pl.col("messages").sum())
    grid = (
        per_hour.select(ENTITY)
        .unique()
        .join(pl.DataFrame({"hour": list(range(24))}, schema={"hour": pl.Int32}), how="cross")
        .join(per_hour, on=[*ENTITY, "hour"], how="left", nulls_equal=True)
        .with_columns(pl.col("messages").fill_null(0))
        .sort([*ENTITY, "hour"], nulls_last=True)
        .group_by(ENTITY, maintain_order=True)
        .agg(hourly=pl.col("messages"))
    )
    totals = bins.group_by(ENTITY).agg(
        pl.col("client_kind").first(),
        *[pl.col(c).sum() for c in ADDITIVE],
        peak_messages=pl.col("messages").max(),
        active_bins=pl.len(),
        first_ts=pl.col("first_ts").min(),
        last_ts=pl.col("last_ts").max(),
    )
    ent = totals.join(grid, on=ENTITY, how="left", nulls_equal=True).with_columns(
        local_senders=pl.col("new_senders") - pl.col("new_foreign_senders")
    )
    split = ent.filter(pl.col("sender").is_not_null())
    hosts = split.group_by("client_ip").agg(
        pl.col("client_kind").first(),
        *[pl.col(c).sum() for c in ADDITIVE if c not in ("new_senders", "new_foreign_senders")],
        new_senders=(pl.col("messages") > 0).sum().cast(pl.Int64),
        local_senders=((pl.col("messages") > 0) & (pl.col("new_foreign_senders") == 0)).sum().cast(pl.Int64),
        peak_messages=pl.col("peak_messages").max(),
        active_bins=pl.col("active_bins").max(),
        first_ts=pl.col("first_ts").min(),
        last_ts=pl.col("last_ts").max(),
    )
    hosts = hosts.with_columns(sender=pl.lit(None, pl.String), new_foreign_senders=pl.lit(0, pl.Int64))
    return pl.concat([ent, hosts], how="diagonal_relaxed")


def gather(con: duckdb.DuckDBPyConnection, site: Site, day: date, day_start: datetime, since: date) -> Entities:
    """Every judged entity's bins, windows and history, for the local day `day`."""
    relays = learnt_relays(con, site, day, since)
    judge_clients(con, site, day, relays)
    params = {
        "day": day,
        "day_start": day_start,
        "since": since,
        "interval": site.interval,
        "local_domains": list(site.local_domains),
        "attachment_bytes": site.thresholds.attachment_bytes,
        "mail_server_ips": list(site.mail_server_ips),
        "site": site.name,
    }
    bins = entity_bins(con, site, params)
    hist, hours = history(con, site, day, since) if lake.has_files(site.lake, "host_days") else (pl.DataFrame(),) * 2
    return Entities(
        bins=bins, windows=windows(bins, site), history=hist, hours=hours, relays=relays, day_start=day_start
    )
