"""Outbreak-wide signals: what a worm does to the whole site rather than through one host.

- `deferred_surge`: a destination domain deferring our mail (Frethem's and Klez's floods, or
  the domain's own outage): its deferrals against their usual level, N_to outgrowing N_from
  while it lasts, the cadence at which the queue retries (sendmail -q30m: ~30 min), and the
  papers' regression of the model's residual on N_deferred (retries hit the resolver's cache,
  so the residual does not follow them).
- `dns_anomaly` (mail server): Dq above the model's prediction, in intervals where no host's
  burst explains it (a list's fan-out to many domains does; that interval is not counted).
- `dns_anomaly` (client): a machine other than the mail servers looking up names in bulk,
  MX records above all: a worm with its own SMTP engine using our DNS server.
"""

from __future__ import annotations

from datetime import date, datetime

import duckdb
import polars as pl

from mmw_tasks import sql as sqlfiles
from mmw_tasks.config import Site
from mmw_tasks.detect import baseline
from mmw_tasks.detect.clients import client_words


def _runs(times: list[datetime], step) -> list[list[datetime]]:
    """Consecutive interval starts grouped into runs."""
    runs: list[list[datetime]] = []
    for t in sorted(times):
        if runs and t - runs[-1][-1] <= step:
            runs[-1].append(t)
        else:
            runs.append([t])
    return runs


def _lines(con, name: str, params: dict) -> list[dict]:
    rel = sqlfiles.query(con, name, params)
    cols = rel.columns
    return [
        dict(zip(cols, r, strict=True)) | ({"event": "query"} if "event" not in cols else {}) for r in rel.fetchall()
    ]


# -- deferrals -----------------------------------------------------------------------------------
def _first_flag(mine: pl.DataFrame, onset: pl.DataFrame, th, interval, end):
    """When a run on the logs up to then would have seen the surge (end of that interval): the day's
    deferrals to the domain reach `deferred_min`, or, sooner, `deferred_early_messages` distinct
    messages to it were deferred within `deferred_early_minutes` with none delivered to it meanwhile
    (`onset`: sql/detect/deferral_onset.sql). One stale mailbox is one message, however often retried."""
    times = []
    cum = mine.sort("interval_start").filter(pl.col("n_deferred").cum_sum() >= th.deferred_min)
    if cum.height:
        times.append(cum["interval_start"].min())
    early = onset.filter((pl.col("deferred_messages") >= th.deferred_early_messages) & (pl.col("delivered") == 0))
    if early.height:
        times.append(early["interval_start"].min())
    return min(times) + interval if times else end


def deferred_surges(con: duckdb.DuckDBPyConnection, site: Site, day: date, ivz: pl.DataFrame, fit: dict) -> list[dict]:
    th = site.thresholds
    dd = sqlfiles.query(con, "detect/day_domain_deferrals", {"day": day}).pl()
    if dd.height == 0:
        return []
    per = dd.group_by("recipient_domain").agg(pl.col("n_deferred").sum(), pl.col("n_to").sum()).sort("recipient_domain")
    per = per.filter(
        (pl.col("n_deferred") >= th.deferred_min) & (pl.col("n_deferred") >= th.deferred_share * pl.col("n_to"))
    )
    if per.height == 0:
        return []
    hist = sqlfiles.query(con, "detect/deferral_history", {"day": day, "since": baseline.since(site, day)}).pl()
    hist_days = hist["day"].n_unique()
    out = []
    for r in per.iter_rows(named=True):
        domain = r["recipient_domain"]
        usual = None
        if hist_days >= th.baseline_min_days:
            past = hist.filter(pl.col("recipient_domain") == domain)["n_deferred"].to_list()
            past += [0] * (hist_days - len(past))
            usual = float(pl.Series(past).median())
            if r["n_deferred"] < th.deferred_factor * (usual + 1):
                continue
        mine = dd.filter(pl.col("recipient_domain") == domain).sort("interval_start")
        bad = mine.filter((pl.col("n_deferred") > 0) & (pl.col("n_deferred") >= th.deferred_share * pl.col("n_to")))
        # the surge's span: from 2% to 98% of its deferrals (ordinary ones at night stay outside)
        cum = mine.with_columns(c=pl.col("n_deferred").cum_sum() / r["n_deferred"])
        start = cum.filter(pl.col("c") > 0.02)["interval_start"].min()
        end = cum.filter(pl.col("c") >= 0.98)["interval_start"].min() + site.interval
        onset = sqlfiles.query(
            con,
            "detect/deferral_onset",
            {"day": day, "domain": domain, "interval": site.interval, "minutes": th.deferred_early_minutes},
        ).pl()
        flagged = _first_flag(mine, onset, th, site.interval, end)
        inside = ivz.filter(pl.col("interval_start").is_between(start, end, closed="left"))
        outside = ivz.filter(~pl.col("interval_start").is_between(start, end, closed="left"))
        ratio_in = inside["n_to"].sum() / max(inside["n_from"].sum(), 1)
        ratio_out = outside["n_to"].sum() / max(outside["n_from"].sum(), 1)
        cad = sqlfiles.query(con, "detect/retry_cadence", {"day": day, "domain": domain}).pl().row(0, named=True)
        gap = cad["median_gap_minutes"]
        says = [
            f"{r['n_deferred']} of {r['n_to']} delivery attempts to {domain} were deferred "
            f"between {start.astimezone(site.tz):%H:%M} and {end.astimezone(site.tz):%H:%M}"
        ]
        if usual is not None:
            says.append(f"usually about {usual:.0f} a day")
        says.append(
            f"while it lasted, to= lines outnumbered from= lines {ratio_in:.2f} to 1 "
            f"(the rest of the day {ratio_out:.2f})"
        )
        if gap is not None:
            says.append(f"the queue retried each deferred message about every {gap:.0f} minutes")
        if fit.get("r2_sd") is not None:
            says.append(
                f"the model's residual does not follow the deferrals (R² = {fit['r2_sd']:.2f}): "
                "retries reuse the resolver's cache, as the papers observed"
            )
        out.append(
            {
                "kind": "deferred_surge",
                "start": start,
                "end": end,
                "sender": None,
                "client_ip": None,
                "domain": domain,
                "score": round(min(1.0, r["n_deferred"] / (4 * th.deferred_min)), 3),
                "evidence": {
                    "why": "; ".join(says),
                    "deferred": r["n_deferred"],
                    "deliveries": r["n_to"],
                    "intervals_with_deferrals": bad.height,
                    "usual_daily_deferrals": usual,
                    "baseline": "history" if usual is not None else "within-day",
                    "n_to_per_n_from": round(ratio_in, 3),
                    "n_to_per_n_from_elsewhere": round(ratio_out, 3),
                    "retry_cadence": {k: (round(v, 1) if isinstance(v, float) else v) for k, v in cad.items()},
                    "residual_vs_deferred": {"m_sd": fit.get("m_sd"), "r2_sd": fit.get("r2_sd")},
                    "first_flagged": flagged,
                },
                "lines": _lines(con, "detect/domain_lines", {"day": day, "domain": domain, "start": start, "end": end}),
            }
        )
    return out


# -- Dq with no mail to explain it ---------------------------------------------------------------
def dns_anomalies(
    con: duckdb.DuckDBPyConnection, site: Site, day: date, ivz: pl.DataFrame, fit: dict, explained: set
) -> list[dict]:
    """`fit`: the coefficients ivz's residuals were computed with (baseline.prediction_model)."""
    th = site.thresholds
    if fit.get("m_s") is None or ivz["resid_z"].null_count() == ivz.height:
        return []
    step = site.interval
    near = explained | {t - step for t in explained} | {t + step for t in explained}
    hot = ivz.filter(
        (pl.col("resid_z") > th.dns_excess_z)
        & (pl.col("resid") >= th.dns_excess_min)
        & (pl.col("resid") >= th.dns_excess_ratio * pl.col("pred").clip(1))
        & ~pl.col("interval_start").is_in(list(near))
    )
    out = []
    ips = list(site.mail_server_ips)
    for run in _runs(hot["interval_start"].to_list(), step):
        if len(run) < th.dns_min_intervals:
            continue
        part = hot.filter(pl.col("interval_start").is_in(run))
        start, end = run[0], run[-1] + step
        excess, pred = int(part["resid"].sum()), float(part["pred"].sum())
        out.append(
            {
                "kind": "dns_anomaly",
                "start": start,
                "end": end,
                "sender": None,
                "client_ip": ips[0] if len(ips) == 1 else None,
                "domain": None,
                "score": round(min(1.0, float(part["resid_z"].max()) / (2 * th.dns_excess_z)), 3),
                "evidence": {
                    "why": (
                        f"the mail server made {int(part['dq'].sum())} DNS queries between "
                        f"{start.astimezone(site.tz):%H:%M} and {end.astimezone(site.tz):%H:%M} "
                        "where its mail "
                        f"explains about {pred:.0f} (m_s = {fit['m_s']:.2f} per SMTP access, m_p = "
                        f"{(fit.get('m_p') or 0):.2f} per POP login, {fit.get('source', 'fit')}); no host or "
                        "sender burst at that time"
                    ),
                    "source": "mail_server",
                    "mail_server_ips": ips,
                    "intervals": len(run),
                    "excess_queries": excess,
                    "predicted_queries": round(pred),
                    "max_residual_z": round(float(part["resid_z"].max()), 1),
                    "n_from": int(part["n_from"].sum()),
                    "first_flagged": run[min(len(run), th.dns_min_intervals) - 1] + step,
                },
                "lines": [
                    ln
                    for ip in ips[:1]
                    for ln in _lines(
                        con, "detect/query_lines", {"day": day, "client_ip": ip, "start": start, "end": end}
                    )
                ],
            }
        )
    return out


# -- another machine resolving mail exchangers ---------------------------------------------------
def dns_clients(
    con: duckdb.DuckDBPyConnection, site: Site, day: date, day_start: datetime, ent: pl.DataFrame
) -> list[dict]:
    th = site.thresholds
    per = sqlfiles.query(
        con,
        "detect/dns_clients",
        {
            "day": day,
            "day_start": day_start,
            "interval": site.interval,
            "min_queries": th.dns_client_min,
            "mail_server_ips": list(site.mail_server_ips),
        },
    ).pl()
    if per.height == 0:
        return []
    n_bins = int(round(86400 / site.interval.total_seconds()))
    clients = per["client_ip"].unique().sort().to_list()
    hist = sqlfiles.query(
        con,
        "detect/dns_client_history",
        {
            "day": day,
            "since": baseline.since(site, day),
            "interval": site.interval,
            "day_start": day_start,
            "clients": clients,
        },
    ).pl()
    step = site.interval
    out = []
    for (ip,), rows in per.group_by(["client_ip"], maintain_order=True):
        counts = rows["queries"].to_list() + [0] * (n_bins - rows.height)
        usual = float(pl.Series(counts).median())
        h = hist.filter(pl.col("client_ip") == ip)
        basis = "within-day"
        if h.height and h["days"][0] >= th.baseline_min_days:
            usual, basis = max(usual, float(h["p95_queries"][0])), "history"
        hot = rows.filter(
            (pl.col("queries") >= th.dns_client_min) & (pl.col("queries") >= th.dns_client_factor * max(usual, 1.0))
        )
        if hot.height == 0:
            continue
        start, end = hot["interval_start"].min(), hot["interval_start"].max() + step
        span = rows.filter(pl.col("interval_start").is_between(start, end, closed="left"))
        queries, mx = int(span["queries"].sum()), int(span["mx_queries"].sum())
        sent = ent.filter((pl.col("client_ip") == ip) & pl.col("interval_start").is_between(start, end, closed="left"))
        n_sent = int(sent["n_from"].sum())
        typed = sqlfiles.query(con, "detect/typed_queries", {"day": day, "client_ip": ip}).fetchone()[0]
        says = [
            f"{ip} ({client_words(ip, site)}) asked our DNS server {queries} questions between "
            f"{start.astimezone(site.tz):%H:%M} and {end.astimezone(site.tz):%H:%M}, up to "
            f"{int(hot['queries'].max())} in one interval where it usually asks about {usual:.0f}"
        ]
        if typed:
            says.append(f"{mx} of them for MX records: this machine looks up where to deliver mail itself")
        says.append(
            f"it handed our mail server {n_sent} messages meanwhile"
            if n_sent
            else "it sent nothing through our mail server meanwhile: its mail bypasses us, as a worm with "
            "its own SMTP engine does"
        )
        mx_share = mx / queries if typed and queries else None
        score = 0.6 if mx_share is None else round(min(1.0, 0.4 + mx_share), 3)
        out.append(
            {
                "kind": "dns_anomaly",
                "start": start,
                "end": end,
                "sender": None,
                "client_ip": ip,
                "domain": None,
                "score": score,
                "evidence": {
                    "why": "; ".join(says),
                    "source": "client",
                    "baseline": basis,
                    "queries": queries,
                    "mx_queries": mx if typed else None,
                    "peak_queries_per_interval": int(hot["queries"].max()),
                    "usual_queries_per_interval": round(usual, 1),
                    "hot_intervals": hot.height,
                    "distinct_names": int(span["names"].max()),
                    "messages_through_our_server": n_sent,
                    "first_flagged": start + step,
                },
                "lines": _lines(con, "detect/query_lines", {"day": day, "client_ip": ip, "start": start, "end": end}),
            }
        )
    return out
