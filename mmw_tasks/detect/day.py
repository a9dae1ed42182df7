"""Incidents of one day, as the papers found them by eye, made mechanical (docs/detection.md).

1. Baselines and peaks (baseline.py): each interval's Dq, N_from, N_to and N_SMTP against the
   same time of day in the lake's history (within-day statistics for a new site); abnormal
   intervals; whether Dq peaks line up with N_SMTP peaks (lagged cross-correlation).
2. Attribution: N_SMTP(i) per client host (a host is what an administrator can unplug) and, for
   localhost and relays, per sender. A host bursts when, in one interval, it sends at least
   `host_min_messages` messages or `host_min_recipients` recipients, or draws
   `host_min_unknown` "User unknown"; or when it holds `min_share` of an abnormal interval.
   Bursts closer than `burst_gap_minutes` belong together.
3. Classification with evidence (classify.py) over what the host did inside its bursts; for a
   suspect, the first interval at which the evidence so far was already enough (time to flag).
4. Outbreak-wide signals (outbreak.py): deferral surges per destination domain, Dq that no
   mail explains, and clients other than the mail servers looking up names (MX) in bulk.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import duckdb
import polars as pl

from mmw_tasks import lake
from mmw_tasks import sql as sqlfiles
from mmw_tasks.config import Site
from mmw_tasks.detect import baseline, outbreak
from mmw_tasks.detect.classify import classify
from mmw_tasks.detect.clients import client_kind

INCIDENT_SCHEMA = {
    "site": pl.String,
    "kind": pl.String,
    "start": pl.Datetime("us", "UTC"),
    "end": pl.Datetime("us", "UTC"),
    "sender": pl.String,
    "client_ip": pl.String,
    "domain": pl.String,
    "score": pl.Float64,
    "evidence": pl.String,
    "lines": pl.String,
}
RUN_SCHEMA = {
    "site": pl.String,
    "baseline": pl.String,
    "history_days": pl.Int32,
    "note": pl.String,
    "abnormal_intervals": pl.Int32,
    "alignment": pl.String,
    "peaks": pl.String,
}
MAX_FLAG_STEPS = 18  # prefixes tried when looking for the first interval at which a suspect showed


def entity_intervals(ui: pl.DataFrame, site: Site) -> pl.DataFrame:
    """user_intervals summed per (interval, entity): the client host, or (host, sender) when the
    host is localhost, a relay or unknown (its bursts belong to the list or job that sent them)."""
    kinds = {ip: client_kind(ip, site) for ip in ui["client_ip"].unique().to_list()}
    ui = ui.with_columns(
        client_kind=pl.col("client_ip").replace_strict(kinds, default="unknown", return_dtype=pl.String)
    )
    ui = ui.with_columns(
        ent_sender=pl.when(pl.col("client_kind").is_in(["localhost", "server", "unknown"])).then(pl.col("sender"))
    )
    return ui.group_by("interval_start", "client_ip", "ent_sender", "client_kind").agg(
        pl.col("n_from").sum(),
        pl.col("n_to").sum(),
        pl.col("n_recipients").sum(),
        pl.col("n_user_unknown").sum(),
        senders=pl.col("sender").n_unique(),
    )


# -- bursts ----------------------------------------------------------------------------------------
def find_bursts(ent: pl.DataFrame, ivz: pl.DataFrame, site: Site) -> pl.DataFrame:
    """Hot (interval, entity) rows, with their share of the interval's N_SMTP and burst number."""
    th = site.thresholds
    e = ent.join(
        ivz.select("interval_start", "abnormal", tot=pl.col("n_smtp"), z_smtp=pl.col("n_smtp_z"), z_dq=pl.col("dq_z")),
        on="interval_start",
        how="left",
    )
    e = e.with_columns(share=(pl.col("n_from") + pl.col("n_to")) / pl.col("tot").clip(1))
    hot = (
        (pl.col("n_from") >= th.host_min_messages)
        | (pl.col("n_recipients") >= th.host_min_recipients)
        | ((pl.col("n_user_unknown") >= th.host_min_unknown) & (pl.col("client_kind") != "remote"))
        | (
            pl.col("abnormal")
            & (pl.col("share") >= th.min_share)
            & ((pl.col("n_from") >= 3) | (pl.col("n_recipients") >= 10))
        )
    )
    e = e.filter(hot & (pl.col("client_ip").is_not_null() | pl.col("ent_sender").is_not_null()))
    gap = timedelta(minutes=th.burst_gap_minutes) + site.interval
    keys = ["client_ip", "ent_sender"]
    e = e.sort(*keys, "interval_start", nulls_last=True).with_columns(
        _new=(pl.col("interval_start").diff().over(keys) > gap).fill_null(True)
    )
    return e.with_columns(burst=pl.col("_new").cum_sum().over(keys)).drop("_new")


def burst_windows(rows: pl.DataFrame, step: timedelta) -> list[tuple[datetime, datetime]]:
    """(start, end) of each burst of one entity's hot rows."""
    w = rows.group_by("burst").agg(s=pl.col("interval_start").min(), e=pl.col("interval_start").max()).sort("s")
    return [(r["s"], r["e"] + step) for r in w.iter_rows(named=True)]


def _features(con, site: Site, day: date, ip, sender, windows, rows: pl.DataFrame, kind: str) -> dict:
    act = (
        sqlfiles.query(
            con,
            "detect/host_activity",
            {
                "day": day,
                "starts": [s for s, _ in windows],
                "ends": [e for _, e in windows],
                "client_ip": ip,
                "sender": sender,
                "local_domains": list(site.local_domains),
            },
        )
        .pl()
        .row(0, named=True)
    )
    minutes = sum((e - s).total_seconds() for s, e in windows) / 60
    longest = max((e - s).total_seconds() / 60 for s, e in windows)
    return {
        **act,
        "client_ip": ip,
        "sender": sender,
        "client_kind": kind,
        "bursts": len(windows),
        "burst_minutes": int(longest),
        "active_minutes": int(minutes),
        "burst_intervals": rows.height,
        "peak_messages": int(rows["n_from"].max() or 0),
        "interval_minutes": site.interval_minutes,
    }


def _allow(site: Site, ip, senders: list[str]) -> str | None:
    if ip and ip in site.bulk_hosts:
        return "bulk_sender"
    low = [s.lower() for s in senders if s]
    if any(s in site.mailing_lists for s in low):
        return "mailing_list"
    if low and all(s in site.bulk_senders for s in low):
        return "bulk_sender"
    return None


def _history(con, site: Site, day: date, ip, sender, windows) -> tuple[int, int]:
    """(earlier days with a burst of this host within `regular_window_minutes` of one of today's,
    the most messages it sent in one interval on the trailing days)."""
    th = site.thresholds
    hist = sqlfiles.query(
        con,
        "detect/host_history",
        {
            "day": day,
            "since": baseline.since(site, day),
            "timezone": site.timezone,
            "client_ip": ip,
            "sender": sender,
        },
    ).pl()
    if hist.height == 0:
        return 0, 0
    hot = hist.filter((pl.col("n_from") >= th.host_min_messages) | (pl.col("n_recipients") >= th.host_min_recipients))
    starts = [int(s.astimezone(site.tz).hour * 60 + s.astimezone(site.tz).minute) for s, _ in windows]
    near = pl.lit(False)
    for m in starts:
        d = (pl.col("minute_of_day") - m).abs()
        near = near | (pl.min_horizontal(d, 1440 - d) <= th.regular_window_minutes)
    return hot.filter(near)["day"].n_unique(), int(hist["n_from"].max() or 0)


def _past_suspect_days(con, site: Site, day: date, ip) -> list[str]:
    if not ip or not lake.has_files(site.lake, "incidents"):
        return []
    rows = sqlfiles.query(
        con, "detect/host_past_incidents", {"day": day, "since": baseline.since(site, day), "client_ip": ip}
    ).fetchall()
    return [str(r[0]) for r in rows]


def _first_flag(con, site: Site, day: date, ip, sender, rows: pl.DataFrame, kind: str, extra: dict):
    """The end of the first hot interval at which the evidence so far already made a suspect."""
    step = site.interval
    times = rows.sort("interval_start")["interval_start"].to_list()
    for t in times[:MAX_FLAG_STEPS]:
        upto = rows.filter(pl.col("interval_start") <= t)
        windows = burst_windows(upto, step)
        f = _features(con, site, day, ip, sender, windows, upto, kind) | extra
        if classify(f, site.thresholds).kind == "mmw_suspect":
            return t + step
    return times[-1] + step


def _peaks_of(rows: pl.DataFrame) -> list[dict]:
    pk = rows.filter(pl.col("abnormal").fill_null(False))
    pk = pk.sort("share", "interval_start", descending=[True, False]).head(5)
    return [
        {
            "interval_start": r["interval_start"],
            "n_smtp": r["n_from"] + r["n_to"],
            "share": round(r["share"], 3),
            "z_smtp": round(r["z_smtp"], 1),
            "z_dq": round(r["z_dq"], 1),
        }
        for r in pk.iter_rows(named=True)
    ]


def host_incidents(con, site: Site, day: date, ivz: pl.DataFrame, ent: pl.DataFrame, base) -> list[dict]:
    hot = find_bursts(ent, ivz, site)
    step = site.interval
    dq_series = ivz.sort("interval_start").select("interval_start", "dq")
    out = []
    for (ip, sender, kind), rows in hot.group_by(["client_ip", "ent_sender", "client_kind"], maintain_order=True):
        windows = burst_windows(rows, step)
        f = _features(con, site, day, ip, sender, windows, rows, kind)
        if not f["messages"] and not f["recipients_attempted"]:
            continue
        past = _past_suspect_days(con, site, day, ip) if kind == "local" else []
        regular, hist_peak = _history(con, site, day, ip, sender, windows) if base.method == "history" else (0, None)
        extra = {
            "regular_days": 0 if past else regular,
            "history_peak_messages": hist_peak,
            "allow": _allow(site, ip, (f["sample_senders"] or []) + [sender]),
        }
        v = classify(f | extra, site.thresholds)
        own = ent.filter((pl.col("client_ip").eq_missing(ip)) & (pl.col("ent_sender").eq_missing(sender)))
        series = dq_series.join(
            own.select("interval_start", n=pl.col("n_from") + pl.col("n_to")), on="interval_start", how="left"
        ).fill_null(0)
        align = baseline.lagged_correlation(series["n"], series["dq"], site.thresholds.align_max_lag)
        in_bursts = ivz.filter(pl.col("interval_start").is_in(rows["interval_start"].implode()))
        align["dq_abnormal_intervals"] = int(in_bursts["dq_abnormal"].sum())
        align["dq_excess"] = int((in_bursts["dq"] - in_bursts["dq_level"]).sum())
        distinct = f["distinct_senders"]
        flagged = None
        if v.kind == "mmw_suspect":
            flagged = _first_flag(con, site, day, ip, sender, rows, kind, extra)
        evidence = {  # the telling counts first: the report lists the first few
            "why": v.why,
            **({"first_flagged": flagged} if flagged else {}),
            "messages": f["messages"],
            "user_unknown": f["user_unknown"],
            "recipients_attempted": f["recipients_attempted"],
            "distinct_senders": distinct,
            "recipients": f["distinct_recipients"],
            "recipient_domains": f["recipient_domains"],
            "median_size": f["median_size"],
            "near_constant_share": round(f["near_constant_share"], 3),
            "peak_messages_per_interval": f["peak_messages"],
            "all_rejected": f["refused_without_message"],
            "client_kind": kind,
            "baseline": base.method,
            "peak_share": round(float(rows["share"].max()), 3),
            "abnormal_intervals": int(rows["abnormal"].sum()),
            "regular_days": regular,
            "history_peak_messages": hist_peak,
            "signals": v.evidence,
            "sample_senders": f["sample_senders"],
            "bursts": [{"start": s, "end": e} for s, e in windows][:10],
            "earlier_suspect_days": past,
            "dq_alignment": align,
            "peaks": _peaks_of(rows),
        }
        # a worm forges its senders: name one only when nearly all its messages carry it
        one_sender = sender or (f["top_sender"] if f["top_sender_messages"] >= 0.9 * max(f["messages"], 1) else None)
        out.append(
            {
                "kind": v.kind,
                "start": f["first_seen"] or windows[0][0],
                "end": f["last_seen"] or windows[-1][1],
                "sender": one_sender,
                "client_ip": ip,
                "domain": None,
                "score": v.score,
                "evidence": evidence,
                "lines": f["sample_lines"] or [],
            }
        )
    return out


# -- the day -------------------------------------------------------------------------------------
def abnormal(base_frame: pl.DataFrame, site: Site) -> pl.DataFrame:
    th = site.thresholds
    smtp = ((pl.col("n_smtp_z") > th.peak_z) | (pl.col("n_from_z") > th.peak_z)) & (
        (pl.col("n_from") >= th.min_peak_from) | (pl.col("n_to") >= th.min_peak_from)
    )
    dq = (pl.col("dq_z") > th.peak_z) & (pl.col("dq") >= 2 * th.min_peak_from)
    return base_frame.with_columns(smtp_abnormal=smtp, dq_abnormal=dq).with_columns(
        abnormal=pl.col("smtp_abnormal") | pl.col("dq_abnormal")
    )


def decompose(ivz: pl.DataFrame, ent: pl.DataFrame, ui: pl.DataFrame) -> list[dict]:
    """Each abnormal interval split into N_SMTP(i) by client host and by sender (top three each)."""
    ab = ivz.filter(pl.col("abnormal")).select("interval_start", "dq", "n_smtp", "dq_z", "n_smtp_z")
    if ab.height == 0:
        return []
    by_host = ent.group_by("interval_start", "client_ip").agg(n=(pl.col("n_from") + pl.col("n_to")).sum())
    by_sender = ui.group_by("interval_start", "sender").agg(n=(pl.col("n_from") + pl.col("n_to")).sum())
    out = []
    for r in ab.iter_rows(named=True):
        tot = max(r["n_smtp"], 1)
        # ties broken by name, so that a re-run writes the same bytes
        hosts = (
            by_host.filter(pl.col("interval_start") == r["interval_start"])
            .sort(["n", "client_ip"], descending=[True, False], nulls_last=True)  # ties: same order every run
            .head(3)
        )
        snd = (
            by_sender.filter(pl.col("interval_start") == r["interval_start"])
            .sort(["n", "sender"], descending=[True, False], nulls_last=True)
            .head(3)
        )
        out.append(
            {
                "interval_start": r["interval_start"],
                "dq": r["dq"],
                "n_smtp": r["n_smtp"],
                "z_dq": round(r["dq_z"], 1),
                "z_smtp": round(r["n_smtp_z"], 1),
                "hosts": [
                    {"client_ip": h["client_ip"], "n_smtp": h["n"], "share": round(h["n"] / tot, 3)}
                    for h in hosts.iter_rows(named=True)
                ],
                "senders": [
                    {"sender": s["sender"], "n_smtp": s["n"], "share": round(s["n"] / tot, 3)}
                    for s in snd.iter_rows(named=True)
                ],
            }
        )
    return out


def detect_day(
    con: duckdb.DuckDBPyConnection, site: Site, day: date, day_start: datetime, day_end: datetime, fit: dict
) -> pl.DataFrame:
    iv = sqlfiles.query(con, "detect/day_intervals", {"day": day}).pl()
    ui = sqlfiles.query(con, "detect/day_user_intervals", {"day": day}).pl()
    base = baseline.interval_baselines(con, site, day, iv)
    model = baseline.prediction_model(con, site, day, fit)
    ivz = abnormal(baseline.model_residuals(base.frame, model), site)
    ent = entity_intervals(ui, site)
    rows = host_incidents(con, site, day, ivz, ent, base)
    explained = {r["interval_start"] for r in find_bursts(ent, ivz, site).iter_rows(named=True)}
    rows += outbreak.deferred_surges(con, site, day, ivz, fit)
    rows += outbreak.dns_anomalies(con, site, day, ivz, model, explained)
    rows += outbreak.dns_clients(con, site, day, day_start, ent)
    # one order whatever the hash seed: a re-run writes the same rows
    rows.sort(key=lambda r: (r["start"], r["kind"], r["client_ip"] or "", r["sender"] or "", r["domain"] or ""))
    for r in rows:
        r["evidence"] = json.dumps(local_times(r["evidence"], site), default=str)
        r["lines"] = json.dumps(r.get("lines") or [], default=str)
        r["site"] = site.name
    align = baseline.lagged_correlation(ivz["n_smtp"], ivz["dq"], site.thresholds.align_max_lag)
    run = {
        "site": site.name,
        "baseline": base.method,
        "history_days": len(base.history_days),
        "note": base.note,
        "abnormal_intervals": int(ivz["abnormal"].sum()),
        "alignment": json.dumps({"dq_vs_n_smtp": align, "prediction_model": model}),
        "peaks": json.dumps(local_times(decompose(ivz, ent, ui), site), default=str),
    }
    lake.write_frame(pl.DataFrame([run], schema=RUN_SCHEMA), lake.part_path(site.lake, "detect_runs", day))
    return pl.DataFrame(rows, schema=INCIDENT_SCHEMA) if rows else pl.DataFrame(schema=INCIDENT_SCHEMA)


def local_times(x, site: Site):
    """Times inside evidence as ISO 8601 in the site's time zone (as the report shows them)."""
    if isinstance(x, datetime):
        return x.astimezone(site.tz).isoformat()
    if isinstance(x, dict):
        return {k: local_times(v, site) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [local_times(v, site) for v in x]
    return x


def report_notes(con: duckdb.DuckDBPyConnection, day: date) -> list[str]:
    """What the report says about how the day was judged (the detect stage's own note)."""
    try:
        row = sqlfiles.query(con, "detect/run_note", {"day": day}).fetchone()
    except duckdb.Error:
        row = None
    return [row[0]] if row else ["Baselines: detection has not run for this day."]
