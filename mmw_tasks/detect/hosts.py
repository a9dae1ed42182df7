"""Host verdicts: every judged entity of the day scored at once, the ones that stand out reported.

1. features.gather: every entity's counts per bin and over every window (30 min, 1 h, 3 h and
   the day so far, ending at each of its active bins), and its history.
2. signals.score on all those windows at once; an entity's verdict is its best window, and a
   suspect's `first_flagged` the end of the first window that already scored as one (what a run
   on the logs up to then would have said: the windows only look back).
3. Candidates: local entities that score as suspects, and entities that burst (an interval with
   many messages, recipients or "User unknown", or most of an abnormal interval) or score at
   least `notable_score`. One query gathers every candidate's evidence
   (sql/detect/entity_evidence.sql), and classify names each.

Nothing here runs a query per entity: the cost grows with the day's lines, not with its hosts.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import duckdb
import polars as pl

from mmw_tasks import sql as sqlfiles
from mmw_tasks.config import Site
from mmw_tasks.detect import signals
from mmw_tasks.detect.baseline import Baseline, lagged_correlations
from mmw_tasks.detect.classify import Candidate, allowed, classify
from mmw_tasks.detect.clients import SPLIT_KINDS, kinds_of
from mmw_tasks.detect.features import ENTITY, Entities

MAX_BURSTS_SHOWN = 10


def entity_intervals(ui: pl.DataFrame, site: Site, relays: tuple[str, ...]) -> pl.DataFrame:
    """user_intervals summed per (interval, entity): N_SMTP(i) of the papers per client host, or
    per (host, sender) for the clients judged per sender; with each entity's kind."""
    ips = ui["client_ip"].fill_null("").unique()
    kinds = pl.DataFrame({"client_ip": ips}).with_columns(kinds_of(ips, site, relays))
    ui = ui.with_columns(pl.col("client_ip").fill_null("")).join(kinds, on="client_ip", how="left")
    ui = ui.with_columns(
        sender=pl.when(pl.col("client_kind").is_in(SPLIT_KINDS)).then(pl.col("sender").fill_null("")),
    )
    return ui.group_by("interval_start", *ENTITY, "client_kind").agg(
        pl.col("n_from").sum(),
        pl.col("n_to").sum(),
        pl.col("n_recipients").sum(),
        pl.col("n_user_unknown").sum(),
    )


def burst_messages(ent: pl.DataFrame, site: Site) -> int:
    """Messages in one interval that make an entity burst: `host_min_messages`, or on a large site
    the peak of its `burst_rank`-th busiest entity if that is higher (so that a site of thousands
    of hosts does not report hundreds of ordinary busy ones)."""
    th = site.thresholds
    judged = ent.filter(pl.col("client_kind") != "remote")
    peaks = judged.group_by(ENTITY).agg(pl.col("n_from").max())["n_from"].sort(descending=True)
    rank = max(th.burst_rank, int(th.burst_share * peaks.len()))
    return max(th.host_min_messages, int(peaks[rank]) + 1 if peaks.len() > rank else 0)


def find_bursts(ent: pl.DataFrame, ivz: pl.DataFrame, site: Site) -> pl.DataFrame:
    """Busy (interval, entity) rows, each with its share of the interval's N_SMTP and its burst
    number (busy intervals closer than `burst_gap_minutes` belong to one burst)."""
    th = site.thresholds
    e = ent.join(
        ivz.select("interval_start", "abnormal", tot=pl.col("n_smtp"), z_smtp=pl.col("n_smtp_z"), z_dq=pl.col("dq_z")),
        on="interval_start",
        how="left",
    )
    e = e.with_columns(share=(pl.col("n_from") + pl.col("n_to")) / pl.col("tot").clip(1))
    busy = (
        (pl.col("n_from") >= burst_messages(ent, site))
        | (pl.col("n_recipients") >= th.host_min_recipients)
        | ((pl.col("n_user_unknown") >= th.host_min_unknown) & (pl.col("client_kind") != "remote"))
        | (
            pl.col("abnormal")
            & (pl.col("share") >= th.min_share)
            & ((pl.col("n_from") >= 3) | (pl.col("n_recipients") >= 10))
        )
    )
    gap = timedelta(minutes=th.burst_gap_minutes) + site.interval
    e = e.filter(busy).sort(*ENTITY, "interval_start", nulls_last=True)
    e = e.with_columns(_new=(pl.col("interval_start").diff().over(ENTITY) > gap).fill_null(True))
    return e.with_columns(burst=pl.col("_new").cum_sum().over(ENTITY)).drop("_new")


def prepare(ents: Entities, site: Site) -> pl.DataFrame:
    """The windows with what the signals read besides their sums: shares, rates, the entity's
    history at that time of day."""
    w = ents.windows
    hour = pl.col("bin").dt.convert_time_zone(site.timezone).dt.hour().cast(pl.Int32)
    w = w.with_columns(hour=hour)
    hist = ents.history
    if hist.height:
        # "this time of day" is looked up per (entity, hour), not by carrying the 24-hour lists
        # of history onto every window row: at ISP size those lists were most of detect's memory
        w = w.join(hist, on=ENTITY, how="left", nulls_equal=True).join(
            usual_at_hour(ents.hours, site), on=[*ENTITY, "hour"], how="left", nulls_equal=True
        )
    else:
        w = w.with_columns(
            days_seen=pl.lit(None, pl.Int64),
            hist_peak_messages=pl.lit(None, pl.Int64),
            hist_day_messages=pl.lit(None, pl.Int64),
            usual_hourly=pl.lit(None, pl.Int64),
            busy_days_at_hour=pl.lit(None, pl.Int64),
            suspect_days=pl.lit([], pl.List(pl.Date)),
        )
    minutes = site.interval_minutes
    return w.drop("hour").with_columns(
        interval_minutes=pl.lit(minutes, pl.Int32),
        span_bins=(pl.col("span_minutes") // minutes).cast(pl.Int32),
        unknown_share=pl.col("user_unknown") / pl.col("attempts").clip(1),
        hourly_rate=pl.col("messages") * 60.0 / pl.col("span_minutes").clip(60),
        days_seen=pl.col("days_seen").fill_null(0),
        suspect_days=pl.col("suspect_days").fill_null([]),
    )


def usual_at_hour(hours: pl.DataFrame, site: Site) -> pl.DataFrame:
    """Per entity of history and local hour h: the most messages it sent in one of the hours
    around h (`usual_hourly`) and the most days it was busy in one of them (`busy_days_at_hour`),
    h +- regular_window_minutes / 2 (`hours`: features.history's per-hour rows)."""
    reach = max(0, round(site.thresholds.regular_window_minutes / 60))  # hours either side: "this time of day"
    near = pl.concat([hours.with_columns(hour=(pl.col("h") - k) % 24) for k in range(-reach, reach + 1)])
    return near.group_by([*ENTITY, "hour"]).agg(
        usual_hourly=pl.col("hour_max").max(), busy_days_at_hour=pl.col("hour_busy_days").max()
    )


def verdict_windows(scored: pl.DataFrame, bins: pl.DataFrame, site: Site) -> pl.DataFrame:
    """Per entity: its best window (highest score, then the longest and latest), and for one that reached
    `suspect_score` the end of the first window that did (`first_flag`) and the stretch it was at
    it (`flag_start`, `flag_end`): within the shortest windows that reached it, the bins with at
    least `span_min_messages` messages or refused sessions."""
    th = site.thresholds
    length = pl.when(pl.col("window_minutes") == 0).then(pl.lit(1 << 20)).otherwise(pl.col("window_minutes"))
    # the best window: the highest score, then the longest window (the whole day first), the latest
    best = (
        scored.with_columns(length=length)
        .sort(["score", "length", "end"], descending=[True, True, True])
        .unique(ENTITY, keep="first", maintain_order=True)
        .drop("length")
    )
    hot = scored.filter(pl.col("suspect")).with_columns(length=length)
    first = hot.group_by(ENTITY).agg(first_flag=pl.col("end").min(), shortest=pl.col("length").min())
    core = hot.join(first, on=ENTITY, nulls_equal=True).filter(pl.col("length") == pl.col("shortest"))
    busy = bins.filter((pl.col("messages") + pl.col("refused_sessions")) >= th.span_min_messages)
    inside = core.select(*ENTITY, "first_bin", w_end="end").join(
        busy.select(*ENTITY, "bin"), on=ENTITY, nulls_equal=True
    )
    inside = inside.filter((pl.col("bin") >= pl.col("first_bin")) & (pl.col("bin") < pl.col("w_end")))
    stretch = inside.group_by(ENTITY).agg(flag_start=pl.col("bin").min(), flag_end=pl.col("bin").max() + site.interval)
    first = first.join(stretch, on=ENTITY, how="left", nulls_equal=True)
    return best.join(
        first.select(*ENTITY, "first_flag", "flag_start", "flag_end"), on=ENTITY, how="left", nulls_equal=True
    )


def _candidates(verdicts: pl.DataFrame, bursts: pl.DataFrame, site: Site) -> pl.DataFrame:
    """Entities to report, with their span: suspects (the span of their qualifying windows,
    widened to their bursts) and entities that burst or scored at least `notable_score`."""
    th = site.thresholds
    step = site.interval
    spans = bursts.group_by(ENTITY).agg(
        burst_start=pl.col("interval_start").min(),
        burst_end=pl.col("interval_start").max() + step,
        bursts=pl.col("burst").n_unique(),
    )
    c = verdicts.join(spans, on=ENTITY, how="left", nulls_equal=True)
    suspect = (pl.col("client_kind") == "local") & pl.col("first_flag").is_not_null()
    wanted = suspect | pl.col("burst_start").is_not_null() | (pl.col("score") >= th.notable_score)
    c = c.filter(wanted)
    start = pl.min_horizontal(pl.col("flag_start"), pl.col("burst_start"))
    end = pl.max_horizontal(pl.col("flag_end"), pl.col("burst_end"))
    return c.with_columns(
        span_start=start.fill_null(pl.col("first_bin")),
        span_end=end.fill_null(pl.col("end")),
        bursts=pl.col("bursts").fill_null(0),
    )


def _dq_alignment(cands: pl.DataFrame, ent: pl.DataFrame, ivz: pl.DataFrame, site: Site) -> pl.DataFrame:
    """Per candidate: the lag (in intervals, within `align_max_lag`; positive: Dq follows) at which
    its own N_SMTP(i) correlates best with Dq over the day, and r; Dq's abnormal intervals and
    excess over its level within the candidate's span. All candidates at once."""
    keys = cands.select(*ENTITY, "span_start", "span_end")
    grid = keys.join(ivz.select("interval_start", "dq", "dq_abnormal", "dq_level"), how="cross")
    own = ent.select(*ENTITY, "interval_start", n=pl.col("n_from") + pl.col("n_to"))
    s = grid.join(own, on=[*ENTITY, "interval_start"], how="left", nulls_equal=True).with_columns(
        pl.col("n").fill_null(0)
    )
    s = s.sort([*ENTITY, "interval_start"], nulls_last=True)
    best = lagged_correlations(s, ENTITY, site.thresholds.align_max_lag)
    inside = s.filter(pl.col("interval_start").is_between(pl.col("span_start"), pl.col("span_end"), closed="left"))
    span = inside.group_by(ENTITY).agg(
        dq_abnormal_intervals=pl.col("dq_abnormal").cast(pl.Int64).sum(),
        dq_excess=(pl.col("dq") - pl.col("dq_level").fill_null(0)).sum().round(0).cast(pl.Int64),
    )
    return (
        keys.select(ENTITY)
        .join(best, on=ENTITY, how="left", nulls_equal=True)
        .join(span, on=ENTITY, how="left", nulls_equal=True)
    )


def _peaks(bursts: pl.DataFrame) -> pl.DataFrame:
    """Per entity, the abnormal intervals it held the largest share of (at most five)."""
    pk = bursts.filter(pl.col("abnormal").fill_null(False)).sort(["share", "interval_start"], descending=[True, False])
    return pk.group_by(ENTITY, maintain_order=True).agg(
        peaks=pl.struct(
            "interval_start",
            n_smtp=pl.col("n_from") + pl.col("n_to"),
            share=pl.col("share").round(3),
            z_smtp=pl.col("z_smtp").round(1),
            z_dq=pl.col("z_dq").round(1),
        ).head(5),
        peak_share=pl.col("share").max().round(3),
        abnormal_intervals=pl.len(),
    )


def incidents(
    con: duckdb.DuckDBPyConnection,
    site: Site,
    day: date,
    ents: Entities,
    ent: pl.DataFrame,
    ivz: pl.DataFrame,
    base: Baseline,
) -> list[dict[str, Any]]:
    """The day's host incidents (mmw_suspect, bulk_sender, mailing_list), as rows for the lake."""
    th = site.thresholds
    if ents.windows.height == 0:
        return []
    scored = signals.score(prepare(ents, site), th)
    verdicts = verdict_windows(scored, ents.bins, site)
    bursts = find_bursts(ent, ivz, site)
    cands = _candidates(verdicts, bursts, site)
    if cands.height == 0:
        return []
    con.register("candidates", cands.select(*ENTITY, "span_start", "span_end").to_arrow())
    found = sqlfiles.query(con, "detect/entity_evidence", {"local_domains": list(site.local_domains)}).pl()
    found = found.rename({c: f"span_{c}" for c in found.columns if c not in ENTITY})
    cands = (
        cands.join(found, on=ENTITY, how="inner", nulls_equal=True)
        .join(_dq_alignment(cands, ent, ivz, site), on=ENTITY, how="left", nulls_equal=True)
        .join(_peaks(bursts), on=ENTITY, how="left", nulls_equal=True)
    )
    windows_of = bursts.group_by([*ENTITY, "burst"]).agg(
        start=pl.col("interval_start").min(), end=pl.col("interval_start").max() + site.interval
    )
    shown = (
        windows_of.sort("start")
        .group_by(ENTITY, maintain_order=True)
        .agg(burst_list=pl.struct("start", "end").head(MAX_BURSTS_SHOWN))
    )
    cands = cands.join(shown, on=ENTITY, how="left", nulls_equal=True)
    out = []
    for r in cands.sort([*ENTITY], nulls_last=True).iter_rows(named=True):
        if not r["span_messages"] and not r["span_recipients_attempted"] and not r["span_refused_sessions"]:
            continue
        out.append(_incident(r, site, base, ents.relays))
    return out


def _incident(r: dict[str, Any], site: Site, base: Baseline, relays: tuple[str, ...]) -> dict[str, Any]:
    th = site.thresholds
    ip = r["client_ip"] or None
    senders = [s for s in (r["span_sample_senders"] or []) if s]
    cand: Candidate = {
        "client_ip": ip,
        "sender": r["sender"] or None,
        "client_kind": r["client_kind"],
        "messages": r["span_messages"],
        "refused_sessions": r["span_refused_sessions"],
        "distinct_senders": r["span_distinct_senders"],
        "sample_senders": senders,
        "recipients_attempted": r["span_recipients_attempted"],
        "distinct_recipients": r["span_distinct_recipients"],
        "user_unknown": r["span_user_unknown"],
        "bursts": max(r["bursts"] or 0, 1),
        "allow": allowed(site, ip, senders + ([r["sender"]] if r["sender"] else [])),
    }
    v = classify(cand, r, th)
    flagged = r["first_flag"] if v.kind == "mmw_suspect" else None
    window = {"minutes": r["window_minutes"] or None, "start": r["first_bin"], "end": r["end"]}
    evidence = {  # the telling counts first: the report lists the first few
        "why": v.why,
        **({"first_flagged": flagged} if flagged else {}),
        "messages": r["span_messages"],
        "user_unknown": r["span_user_unknown"],
        "recipients_attempted": r["span_recipients_attempted"],
        "distinct_senders": r["span_distinct_senders"],
        "recipients": r["span_distinct_recipients"],
        "recipient_domains": r["span_recipient_domains"],
        "median_size": r["span_median_size"],
        "near_constant_share": round(r["span_near_constant_share"] or 0.0, 3),
        "peak_messages_per_interval": r["peak_messages"],
        "all_rejected": r["span_refused_sessions"],
        "client_kind": r["client_kind"],
        "relay": "learnt" if ip in relays else "configured" if ip in site.relay_hosts else None,
        "baseline": base.method,
        "window": window,
        "novel_recipients": r["novel_recipients"] if r["days_seen"] >= th.baseline_min_days else None,
        "mx_lookups": r["mx_lookups"],
        "peak_share": r["peak_share"],
        "abnormal_intervals": r["abnormal_intervals"] or 0,
        "regular_days": r["busy_days_at_hour"] or 0,
        "history_days": r["days_seen"],
        "history_usual_hourly": r["usual_hourly"],
        "signals": v.evidence,
        "sample_senders": senders,
        "bursts": r["burst_list"] or [],
        "earlier_suspect_days": [str(d) for d in r["suspect_days"] or []],
        "dq_alignment": {
            "lag": r["lag"] or 0,
            "r": round(r["r"], 3) if r["r"] is not None else None,
            "dq_abnormal_intervals": r["dq_abnormal_intervals"] or 0,
            "dq_excess": r["dq_excess"] or 0,
        },
        "peaks": r["peaks"] or [],
    }
    # a worm forges its senders: name one only when nearly all its messages carry it
    one = r["sender"] or (
        r["span_top_sender"] if r["span_top_sender_messages"] >= 0.9 * max(r["span_messages"], 1) else None
    )
    return {
        "kind": v.kind,
        "start": r["span_first_seen"] or r["span_start"],
        "end": r["span_last_seen"] or r["span_end"],
        "sender": one or None,
        "client_ip": ip,
        "domain": None,
        "score": v.score,
        "evidence": evidence,
        "lines": r["span_sample_lines"] or [],
        "entity_sender": r["sender"],  # the entity's key (host_days), not part of the incident
    }
