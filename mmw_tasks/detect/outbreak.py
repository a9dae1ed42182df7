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
from typing import cast

import duckdb
import polars as pl

from mmw_tasks import lake
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


def query_lines(con: duckdb.DuckDBPyConnection, day: date, spans: list[tuple]) -> dict[tuple, list[dict]]:
    """A few DNS query lines of each (client_ip, start, end) span, in one query for them all."""
    if not spans:
        return {}
    frame = pl.DataFrame(
        spans,
        schema={"client_ip": pl.String, "span_start": pl.Datetime("us", "UTC"), "span_end": pl.Datetime("us", "UTC")},
        orient="row",
    )
    con.register("spans", frame.to_arrow())
    found = sqlfiles.query(con, "detect/query_lines", {"day": day}).pl()
    out: dict[tuple, list[dict]] = {}
    for r in found.iter_rows(named=True):
        out.setdefault((r["client_ip"], r["span_start"]), []).append(
            {"file": r["file"], "line_no": r["line_no"], "event": r["event"]}
        )
    return out


# -- deferrals -----------------------------------------------------------------------------------
def _first_flag(mine: pl.DataFrame, onset: pl.DataFrame, th, interval, end):
    """When a run on the logs up to then would have seen the surge (end of that interval): the day's
    deferrals to the domain reach `deferred_min`, or, sooner, `deferred_early_messages` distinct
    messages to it were deferred within `deferred_early_minutes` with none delivered to it meanwhile
    (`onset`: sql/detect/deferral_onset.sql). One stale mailbox is one message, however often retried."""
    times: list[datetime] = []
    cum = mine.sort("interval_start").filter(pl.col("n_deferred").cum_sum() >= th.deferred_min)
    if cum.height:
        times.append(cast(datetime, cum["interval_start"].min()))
    early = onset.filter((pl.col("deferred_messages") >= th.deferred_early_messages) & (pl.col("delivered") == 0))
    if early.height:
        times.append(cast(datetime, early["interval_start"].min()))
    return min(times) + interval if times else end


def deferred_surges(con: duckdb.DuckDBPyConnection, site: Site, day: date, ivz: pl.DataFrame, fit: dict) -> list[dict]:
    """Every destination domain deferring our mail today beyond its usual; all domains at once."""
    th = site.thresholds
    dd = sqlfiles.query(con, "detect/day_domain_deferrals", {"day": day}).pl()
    if dd.height == 0:
        return []
    per = (
        dd.group_by("recipient_domain")
        .agg(pl.col("n_deferred").sum(), pl.col("n_to").sum())
        .sort("recipient_domain")
        .filter(
            (pl.col("n_deferred") >= th.deferred_min) & (pl.col("n_deferred") >= th.deferred_share * pl.col("n_to"))
        )
    )
    if per.height == 0:
        return []
    domains = per["recipient_domain"].to_list()
    hist = sqlfiles.query(
        con, "detect/deferral_history", {"day": day, "since": baseline.since(site, day), "domains": domains}
    ).pl()
    hist_days = sqlfiles.query(con, "detect/deferral_history_days", {"day": day, "since": baseline.since(site, day)})
    n_days = (hist_days.fetchone() or (0,))[0]
    if n_days >= th.baseline_min_days:  # the median day, counting the days it had none
        usual = hist.group_by("recipient_domain").agg(days=pl.len(), vals=pl.col("n_deferred"))
        usual = usual.with_columns(
            usual=pl.concat_list("vals", pl.lit(0).repeat_by(n_days - pl.col("days"))).list.median().cast(pl.Float64)
        ).select("recipient_domain", "usual")
        per = per.join(usual, on="recipient_domain", how="left").with_columns(pl.col("usual").fill_null(0.0))
        per = per.filter(pl.col("n_deferred") >= th.deferred_factor * (pl.col("usual") + 1))
    else:
        per = per.with_columns(usual=pl.lit(None, pl.Float64))
    if per.height == 0:
        return []
    domains = per["recipient_domain"].to_list()
    mine = dd.filter(pl.col("recipient_domain").is_in(domains)).sort("recipient_domain", "interval_start")
    # the surge's span: from 2% to 98% of its deferrals (ordinary ones at night stay outside)
    cum = mine.join(per.select("recipient_domain", total="n_deferred"), on="recipient_domain").with_columns(
        c=pl.col("n_deferred").cum_sum().over("recipient_domain") / pl.col("total")
    )
    spans = cum.group_by("recipient_domain").agg(
        span_start=pl.col("interval_start").filter(pl.col("c") > 0.02).min(),
        span_end=pl.col("interval_start").filter(pl.col("c") >= 0.98).min() + site.interval,
        bad=((pl.col("n_deferred") > 0) & (pl.col("n_deferred") >= th.deferred_share * pl.col("n_to"))).sum(),
    )
    onset = sqlfiles.query(
        con,
        "detect/deferral_onset",
        {"day": day, "domains": domains, "interval": site.interval, "minutes": th.deferred_early_minutes},
    ).pl()
    cadence = sqlfiles.query(con, "detect/retry_cadence", {"day": day, "domains": domains}).pl()
    con.register(
        "surges", spans.select(domain="recipient_domain", span_start="span_start", span_end="span_end").to_arrow()
    )
    lines = sqlfiles.query(con, "detect/domain_lines", {"day": day}).pl()
    out = []
    rows = per.join(spans, on="recipient_domain").join(cadence, on="recipient_domain", how="left")
    for r in rows.sort("recipient_domain").iter_rows(named=True):
        domain, end = r["recipient_domain"], r["span_end"]
        flagged = _first_flag(
            mine.filter(pl.col("recipient_domain") == domain),
            onset.filter(pl.col("recipient_domain") == domain),
            th,
            site.interval,
            end,
        )
        out.append(_surge(r, site, fit, ivz, flagged, lines.filter(pl.col("domain") == domain)))
    return out


def _surge(r: dict, site: Site, fit: dict, ivz: pl.DataFrame, flagged, lines: pl.DataFrame) -> dict:
    th = site.thresholds
    domain, start, end, usual = r["recipient_domain"], r["span_start"], r["span_end"], r["usual"]
    inside = ivz.filter(pl.col("interval_start").is_between(start, end, closed="left"))
    outside = ivz.filter(~pl.col("interval_start").is_between(start, end, closed="left"))
    ratio_in = cast(int, inside["n_to"].sum()) / max(cast(int, inside["n_from"].sum()), 1)
    ratio_out = cast(int, outside["n_to"].sum()) / max(cast(int, outside["n_from"].sum()), 1)
    cad = {
        k: r.get(k) for k in ("retried_messages", "retries", "median_gap_minutes", "q1_gap_minutes", "q3_gap_minutes")
    }
    cad = {k: (v if v is not None else (0 if k in ("retried_messages", "retries") else None)) for k, v in cad.items()}
    gap = cad["median_gap_minutes"]
    says = [
        f"{r['n_deferred']} of {r['n_to']} delivery attempts to {domain} were deferred "
        f"between {start.astimezone(site.tz):%H:%M} and {end.astimezone(site.tz):%H:%M}"
    ]
    if usual is not None:
        says.append(f"usually about {usual:.0f} a day")
    says.append(
        f"while it lasted, to= lines outnumbered from= lines {ratio_in:.2f} to 1 (the rest of the day {ratio_out:.2f})"
    )
    if gap is not None:
        says.append(f"the queue retried each deferred message about every {gap:.0f} minutes")
    if fit.get("r2_sd") is not None:
        says.append(
            f"the model's residual does not follow the deferrals (R² = {fit['r2_sd']:.2f}): "
            "retries reuse the resolver's cache, as the papers observed"
        )
    return {
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
            "intervals_with_deferrals": r["bad"],
            "usual_daily_deferrals": usual,
            "baseline": "history" if usual is not None else "within-day",
            "n_to_per_n_from": round(ratio_in, 3),
            "n_to_per_n_from_elsewhere": round(ratio_out, 3),
            "retry_cadence": {k: (round(v, 1) if isinstance(v, float) else v) for k, v in cad.items()},
            "residual_vs_deferred": {"m_sd": fit.get("m_sd"), "r2_sd": fit.get("r2_sd")},
            "first_flagged": flagged,
        },
        "lines": lines.select("file", "line_no", "event").to_dicts(),
    }


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
    ips = list(site.mail_server_ips)
    runs = [run for run in _runs(hot["interval_start"].to_list(), step) if len(run) >= th.dns_min_intervals]
    lines = query_lines(con, day, [(ips[0], run[0], run[-1] + step) for run in runs] if ips else [])
    out = []
    for run in runs:
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
                "score": round(min(1.0, cast(float, part["resid_z"].max()) / (2 * th.dns_excess_z)), 3),
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
                    "max_residual_z": round(cast(float, part["resid_z"].max()), 1),
                    "n_from": int(part["n_from"].sum()),
                    "first_flagged": run[min(len(run), th.dns_min_intervals) - 1] + step,
                },
                "lines": lines.get((ips[0], start), []) if ips else [],
            }
        )
    return out


# -- another machine resolving mail exchangers ---------------------------------------------------
def dns_clients(
    con: duckdb.DuckDBPyConnection, site: Site, day: date, day_start: datetime, ent: pl.DataFrame
) -> list[dict]:
    """Machines other than the mail servers asking our DNS server many questions, far above their
    usual (the median of the day's intervals, or their 95th percentile on the trailing days)."""
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
    step = site.interval
    clients = per["client_ip"].unique().sort().to_list()
    hist = (
        sqlfiles.query(
            con, "detect/dns_client_history", {"day": day, "since": baseline.since(site, day), "clients": clients}
        ).pl()
        if lake.has_files(site.lake, "dns_client_days")
        else pl.DataFrame(schema={"client_ip": pl.String, "days": pl.Int64, "p95_queries": pl.Float64})
    )
    # the day's median per interval, counting the intervals it asked nothing in
    usual = (
        per.group_by("client_ip")
        .agg(vals=pl.col("queries"), n=pl.len())
        .with_columns(
            day_usual=pl.concat_list("vals", pl.lit(0).repeat_by(n_bins - pl.col("n"))).list.median().cast(pl.Float64)
        )
        .join(hist.select("client_ip", "days", "p95_queries"), on="client_ip", how="left")
        .with_columns(from_history=pl.col("days").fill_null(0) >= th.baseline_min_days)
        .with_columns(
            usual=pl.when("from_history")
            .then(pl.max_horizontal("day_usual", "p95_queries"))
            .otherwise(pl.col("day_usual"))
        )
        .select("client_ip", "usual", "from_history")
    )
    rows = per.join(usual, on="client_ip")
    hot = rows.filter(
        (pl.col("queries") >= th.dns_client_min)
        & (pl.col("queries") >= th.dns_client_factor * pl.col("usual").clip(1.0))
    )
    if hot.height == 0:
        return []
    spans = hot.group_by("client_ip").agg(
        span_start=pl.col("interval_start").min(),
        span_end=pl.col("interval_start").max() + step,
        peak=pl.col("queries").max(),
        hot_intervals=pl.len(),
    )
    inside = rows.join(spans, on="client_ip").filter(
        pl.col("interval_start").is_between(pl.col("span_start"), pl.col("span_end"), closed="left")
    )
    sums = inside.group_by("client_ip").agg(
        pl.col("queries").sum(), mx=pl.col("mx_queries").sum(), names=pl.col("names").max()
    )
    typed = per.group_by("client_ip").agg(typed=pl.col("typed").sum())
    sent = (
        ent.join(spans, on="client_ip")
        .filter(pl.col("interval_start").is_between(pl.col("span_start"), pl.col("span_end"), closed="left"))
        .group_by("client_ip")
        .agg(n_sent=pl.col("n_from").sum())
    )
    found = (
        spans.join(sums, on="client_ip")
        .join(typed, on="client_ip")
        .join(usual, on="client_ip")
        .join(sent, on="client_ip", how="left")
        .with_columns(pl.col("n_sent").fill_null(0))
        .sort("client_ip")
    )
    lines = query_lines(con, day, list(found.select("client_ip", "span_start", "span_end").iter_rows()))
    return [_client(r, site, lines.get((r["client_ip"], r["span_start"]), [])) for r in found.iter_rows(named=True)]


def _client(r: dict, site: Site, lines: list[dict]) -> dict:
    ip, start, end, usual = r["client_ip"], r["span_start"], r["span_end"], r["usual"]
    queries, mx, typed, n_sent = r["queries"], r["mx"], r["typed"], r["n_sent"]
    says = [
        f"{ip} ({client_words(ip, site)}) asked our DNS server {queries} questions between "
        f"{start.astimezone(site.tz):%H:%M} and {end.astimezone(site.tz):%H:%M}, up to "
        f"{r['peak']} in one interval where it usually asks about {usual:.0f}"
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
    return {
        "kind": "dns_anomaly",
        "start": start,
        "end": end,
        "sender": None,
        "client_ip": ip,
        "domain": None,
        "score": 0.6 if mx_share is None else round(min(1.0, 0.4 + mx_share), 3),
        "evidence": {
            "why": "; ".join(says),
            "source": "client",
            "baseline": "history" if r["from_history"] else "within-day",
            "queries": queries,
            "mx_queries": mx if typed else None,
            "peak_queries_per_interval": r["peak"],
            "usual_queries_per_interval": round(usual, 1),
            "hot_intervals": r["hot_intervals"],
            "distinct_names": r["names"],
            "messages_through_our_server": n_sent,
            "first_flagged": start + site.interval,
        },
        "lines": lines,
    }
