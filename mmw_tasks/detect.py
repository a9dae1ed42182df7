"""Incidents of one day, as the papers found them by eye, made mechanical.

1. Abnormal intervals: a robust z-score (median/MAD over the day) of N_from or N_to above
   `peak_z`, with at least `min_peak_from` lines.
2. Attribution: each abnormal interval split into N_SMTP(i) by client host (or by sender when
   mail has no client host); whoever holds `min_share` of it is a candidate.
3. Classification with evidence: "User unknown" rejections tied to the host through the queue
   id, forged (many) senders and a constant size make `mmw_suspect`; a list's owner address or a
   local re-injection makes `mailing_list`; anything else that bursts is `bulk_sender`.
4. Outbreak-wide signals: deferrals piling up for one domain (`deferred_surge`), and Dq above
   the model's prediction with no sender peak to explain it (`dns_anomaly`).
"""

from __future__ import annotations

import json
from datetime import date, datetime

import duckdb
import polars as pl

from mmw_tasks import sql as sqlfiles
from mmw_tasks.config import Site

INCIDENT_SCHEMA = {
    "site": pl.String, "kind": pl.String, "start": pl.Datetime("us", "UTC"), "end": pl.Datetime("us", "UTC"),
    "sender": pl.String, "client_ip": pl.String, "domain": pl.String, "score": pl.Float64,
    "evidence": pl.String, "lines": pl.String,
}
LIST_MARKERS = ("-owner@", "owner-", "-request@", "-bounces@", "majordom", "mailman", "-admin@")


def robust_z(x: pl.Expr) -> pl.Expr:
    mad = (x - x.median()).abs().median()
    return (x - x.median()) / (1.4826 * mad + 1.0)


def abnormal_intervals(iv: pl.DataFrame, site: Site) -> pl.DataFrame:
    th = site.thresholds
    return iv.with_columns(
        z_from=robust_z(pl.col("n_from")), z_to=robust_z(pl.col("n_to")),
    ).filter(((pl.col("z_from") > th.peak_z) & (pl.col("n_from") >= th.min_peak_from))
             | ((pl.col("z_to") > th.peak_z) & (pl.col("n_to") >= th.min_peak_from)))


def candidates(peaks: pl.DataFrame, users: pl.DataFrame, site: Site) -> pl.DataFrame:
    """(client_ip, sender-or-null) groups that dominate at least one abnormal interval."""
    if peaks.height == 0:
        return pl.DataFrame(schema={"client_ip": pl.String, "sender": pl.String,
                                    "start": pl.Datetime("us", "UTC"), "end": pl.Datetime("us", "UTC"),
                                    "peak_share": pl.Float64, "peaks": pl.UInt32})
    u = users.join(peaks.select("interval_start", pl.col("n_from").alias("tot_from"),
                                pl.col("n_to").alias("tot_to")), on="interval_start")
    # A host with a client IP is what an administrator can unplug; without one, the sender.
    u = u.with_columns(sender=pl.when(pl.col("client_ip").is_null()).then(pl.col("sender")))
    g = u.group_by("interval_start", "client_ip", "sender").agg(
        pl.col("n_from").sum(), pl.col("n_to").sum(), pl.col("tot_from").first(), pl.col("tot_to").first())
    g = g.with_columns(share=pl.max_horizontal(pl.col("n_from") / pl.col("tot_from").clip(1),
                                               pl.col("n_to") / pl.col("tot_to").clip(1)))
    g = g.filter((pl.col("share") >= site.thresholds.min_share)
                 & (pl.col("client_ip").is_not_null() | pl.col("sender").is_not_null()))
    return g.group_by("client_ip", "sender").agg(
        start=pl.col("interval_start").min(),
        end=pl.col("interval_start").max() + site.interval,
        peak_share=pl.col("share").max(),
        peaks=pl.len(),
    ).sort("start")


def classify(act: dict, sender: str | None, client_ip: str | None, site: Site) -> tuple[str, float, str]:
    """(kind, score, one-line reason) from a candidate's activity features."""
    th = site.thresholds
    senders = act.get("sample_senders") or []
    listish = any(m in (s or "") for s in senders + [sender or ""] for m in LIST_MARKERS)
    if any(s in site.mailing_lists for s in senders + [sender or ""]) or (
            listish and act["distinct_senders"] <= 2):
        return "mailing_list", 0.1, "list owner address re-injecting posts"
    if any(s in site.bulk_senders for s in senders + [sender or ""]):
        return "bulk_sender", 0.1, "sender on the bulk-sender allow-list"
    unknown = act["user_unknown"]
    forged = act["distinct_senders"] >= 5 and act["distinct_senders"] >= 0.2 * max(act["messages"], 1)
    constant = act["messages"] >= 10 and act["size_cv"] < 0.05
    points = (0.5 if unknown >= th.min_user_unknown else 0.0) + (0.3 if forged else 0.0) + (
        0.2 if constant else 0.0)
    if points >= 0.5:
        why = ", ".join(w for w, on in (
            (f"{unknown} 'User unknown' rejections", unknown >= th.min_user_unknown),
            (f"{act['distinct_senders']} different sender addresses", forged),
            (f"near-constant message size ({act['median_size']:.0f} bytes)", constant)) if on)
        return "mmw_suspect", round(min(1.0, 0.4 + points * 0.6), 3), why
    return "bulk_sender", round(points, 3), "a burst with few unknown recipients and one sender"


def detect_day(con: duckdb.DuckDBPyConnection, site: Site, day: date, day_start: datetime,
               day_end: datetime, fit: dict) -> pl.DataFrame:
    iv = con.sql("select * from intervals where day = $day order by interval_start",
                 params={"day": day}).pl()
    users = con.sql("select * from user_intervals where day = $day", params={"day": day}).pl()
    peaks = abnormal_intervals(iv, site)
    rows: list[dict] = []
    for c in candidates(peaks, users, site).iter_rows(named=True):
        act = sqlfiles.query(con, "detect/host_activity", {
            "day": day, "start": c["start"], "end": c["end"], "client_ip": c["client_ip"],
            "sender": c["sender"]}).pl().row(0, named=True)
        if not act["messages"] and not act["recipients"]:
            continue
        kind, score, why = classify(act, c["sender"], c["client_ip"], site)
        evidence = {"why": why, "peak_share": round(c["peak_share"], 3), "abnormal_intervals": c["peaks"],
                    **{k: act[k] for k in ("messages", "distinct_senders", "recipients", "recipient_domains",
                                           "user_unknown", "all_rejected", "median_size")},
                    "size_cv": round(act["size_cv"] or 0.0, 4), "sample_senders": act["sample_senders"]}
        # a worm forges its senders: name one only when the burst has a single real one
        sender = c["sender"] or (act["sample_senders"][0] if act["distinct_senders"] == 1 else None)
        rows.append({"kind": kind, "start": act["first_seen"] or c["start"], "end": act["last_seen"] or c["end"],
                     "sender": sender, "client_ip": c["client_ip"], "domain": None, "score": score,
                     "evidence": evidence, "lines": act["sample_lines"]})
    rows += deferred_surges(con, site, day)
    rows += dns_anomalies(iv, peaks, fit, site)
    for r in rows:
        r["evidence"] = json.dumps(r["evidence"], default=str)
        r["lines"] = json.dumps(r.get("lines") or [], default=str)
        r["site"] = site.name
    return pl.DataFrame(rows, schema=INCIDENT_SCHEMA) if rows else pl.DataFrame(schema=INCIDENT_SCHEMA)


def deferred_surges(con: duckdb.DuckDBPyConnection, site: Site, day: date) -> list[dict]:
    dd = con.sql("select * from domain_deferrals where day = $day", params={"day": day}).pl()
    if dd.height == 0:
        return []
    per = dd.group_by("recipient_domain").agg(
        pl.col("n_deferred").sum(), pl.col("n_to").sum(), pl.col("n_deferred_messages").max(),
        start=pl.col("interval_start").filter(pl.col("n_deferred") > 0).min(),
        end=pl.col("interval_start").filter(pl.col("n_deferred") > 0).max() + site.interval,
        active=(pl.col("n_deferred") > 0).sum(),
    ).filter((pl.col("n_deferred") >= site.thresholds.deferred_min)
             & (pl.col("n_deferred") >= 0.5 * pl.col("n_to")))
    return [{"kind": "deferred_surge", "start": r["start"], "end": r["end"], "sender": None, "client_ip": None,
             "domain": r["recipient_domain"],
             "score": round(min(1.0, r["n_deferred"] / (4 * site.thresholds.deferred_min)), 3),
             "evidence": {"why": f"{r['n_deferred']} of {r['n_to']} deliveries to {r['recipient_domain']} deferred",
                          "deferred": r["n_deferred"], "deliveries": r["n_to"],
                          "intervals_with_deferrals": r["active"]}}
            for r in per.iter_rows(named=True)]


def dns_anomalies(iv: pl.DataFrame, peaks: pl.DataFrame, fit: dict, site: Site) -> list[dict]:
    if fit.get("m_s") is None or iv.height == 0:
        return []
    res = iv.with_columns(resid=pl.col("dq") - fit["m_s"] * pl.col("n_from") - (fit["m_p"] or 0) * pl.col("n_pop"))
    res = res.with_columns(z=robust_z(pl.col("resid")))
    hot = res.filter((pl.col("z") > site.thresholds.dns_excess_z)
                     & ~pl.col("interval_start").is_in(peaks["interval_start"].implode()))
    if hot.height == 0:
        return []
    return [{"kind": "dns_anomaly", "start": hot["interval_start"].min(),
             "end": hot["interval_start"].max() + site.interval, "sender": None, "client_ip": None, "domain": None,
             "score": round(min(1.0, float(hot["z"].max()) / (2 * site.thresholds.dns_excess_z)), 3),
             "evidence": {"why": "DNS queries above the model's prediction with no mail burst to explain them",
                          "intervals": hot.height, "excess_queries": int(hot["resid"].sum())}}]
