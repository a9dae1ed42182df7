"""Incidents of one day, as the papers found them by eye, made mechanical (docs/detection.md).

1. Baselines and peaks (baseline.py): each interval's Dq, N_from, N_to and N_SMTP against the
   same time of day in the lake's history (within-day statistics for a new site); abnormal
   intervals; whether Dq peaks line up with N_SMTP peaks (lagged cross-correlation).
2. Hosts (features.py, signals.py, hosts.py, classify.py): every local host, and every sender
   through localhost or a relay, scored over its whole day and over sliding windows, from
   counts gathered for all of them at once; the ones that stand out become incidents, a
   suspect with the time a run on the logs up to then would have flagged it.
3. Outbreak-wide signals (outbreak.py): deferral surges per destination domain, Dq that no
   mail explains, and clients other than the mail servers looking up names (MX) in bulk.

It writes the day's `host_days` and `address_book` too: what later days judge each host against.
"""

from __future__ import annotations

import json
from datetime import date, datetime

import duckdb
import polars as pl

from mmw_tasks import lake
from mmw_tasks import sql as sqlfiles
from mmw_tasks.config import Site
from mmw_tasks.detect import baseline, features, hosts, outbreak

INCIDENT_SCHEMA = pl.Schema(
    {
        "site": pl.String(),
        "kind": pl.String(),
        "start": pl.Datetime("us", "UTC"),
        "end": pl.Datetime("us", "UTC"),
        "sender": pl.String(),
        "client_ip": pl.String(),
        "domain": pl.String(),
        "score": pl.Float64(),
        "evidence": pl.String(),
        "lines": pl.String(),
    }
)
RUN_SCHEMA = pl.Schema(
    {
        "site": pl.String(),
        "baseline": pl.String(),
        "history_days": pl.Int32(),
        "note": pl.String(),
        "abnormal_intervals": pl.Int32(),
        "alignment": pl.String(),
        "peaks": pl.String(),
    }
)
HOST_DAYS_COLUMNS = [  # data_lake/README.md
    "site",
    "client_ip",
    "sender",
    "client_kind",
    *features.ADDITIVE,
    "local_senders",
    "peak_messages",
    "active_bins",
    "first_ts",
    "last_ts",
    "hourly",
    "verdict",
]


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


def decompose(ivz: pl.DataFrame, ui: pl.DataFrame) -> list[dict]:
    """Each abnormal interval split into N_SMTP(i) by client host and by sender (top three each;
    ties broken by name, so that a re-run writes the same bytes)."""
    ab = ivz.filter(pl.col("abnormal")).select("interval_start", "dq", "n_smtp", "dq_z", "n_smtp_z")
    if ab.height == 0:
        return []
    n = (pl.col("n_from") + pl.col("n_to")).sum()

    def top(key: str) -> pl.DataFrame:
        per = ui.join(ab.select("interval_start"), on="interval_start").group_by("interval_start", key).agg(n=n)
        per = per.sort(["interval_start", "n", key], descending=[False, True, False], nulls_last=True)
        return per.group_by("interval_start", maintain_order=True).agg(pl.col(key).head(3), pl.col("n").head(3))

    hosts, senders = top("client_ip"), top("sender")
    out = []
    for r in (
        ab.join(hosts, on="interval_start", how="left")
        .join(senders.rename({"n": "n_s"}), on="interval_start", how="left")
        .iter_rows(named=True)
    ):
        tot = max(r["n_smtp"], 1)
        out.append(
            {
                "interval_start": r["interval_start"],
                "dq": r["dq"],
                "n_smtp": r["n_smtp"],
                "z_dq": round(r["dq_z"], 1),
                "z_smtp": round(r["n_smtp_z"], 1),
                "hosts": [
                    {"client_ip": h, "n_smtp": c, "share": round(c / tot, 3)}
                    for h, c in zip(r["client_ip"] or [], r["n"] or [], strict=True)
                ],
                "senders": [
                    {"sender": s, "n_smtp": c, "share": round(c / tot, 3)}
                    for s, c in zip(r["sender"] or [], r["n_s"] or [], strict=True)
                ],
            }
        )
    return out


def detect_day(
    con: duckdb.DuckDBPyConnection, site: Site, day: date, day_start: datetime, day_end: datetime, fit: dict
) -> pl.DataFrame:
    """The day's incidents; also writes the day's detect_runs, host_days and address_book parts."""
    since = baseline.since(site, day)
    iv = sqlfiles.query(con, "detect/day_intervals", {"day": day}).pl()
    ui = sqlfiles.query(con, "detect/day_user_intervals", {"day": day}).pl()
    base = baseline.interval_baselines(con, site, day, iv)
    model = baseline.prediction_model(con, site, day, fit)
    assert base.frame is not None
    ivz = abnormal(baseline.model_residuals(base.frame, model), site)
    ents = features.gather(con, site, day, day_start, since)
    ent = hosts.entity_intervals(ui, site, ents.relays)
    rows = hosts.incidents(con, site, day, ents, ent, ivz, base)
    explained = set(hosts.find_bursts(ent, ivz, site)["interval_start"].to_list())
    rows += outbreak.deferred_surges(con, site, day, ivz, fit)
    has_dns = bool(site.servers_by_role("dns"))  # without a DNS server, no DNS signal to look at
    if has_dns:
        rows += outbreak.dns_anomalies(con, site, day, ivz, model, explained)
    clients = outbreak.dns_clients(con, site, day, day_start, ent) if has_dns else []
    # a machine whose own DNS look-ups make it an incident already is not also a benign sender
    looked_up = {r["client_ip"] for r in clients}
    rows = [r for r in rows if r["kind"] == "mmw_suspect" or r.get("domain") or r["client_ip"] not in looked_up]
    rows += clients
    write_history(con, site, day, ents, rows)
    # one order whatever the hash seed: a re-run writes the same rows
    rows.sort(key=lambda r: (r["start"], r["kind"], r["client_ip"] or "", r["sender"] or "", r["domain"] or ""))
    for r in rows:
        r.pop("entity_sender", None)
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
        "peaks": json.dumps(local_times(decompose(ivz, ui), site), default=str),
    }
    lake.write_frame(pl.DataFrame([run], schema=RUN_SCHEMA), lake.part_path(site.lake, "detect_runs", day))
    return pl.DataFrame(rows, schema=INCIDENT_SCHEMA) if rows else pl.DataFrame(schema=INCIDENT_SCHEMA)


def write_history(con: duckdb.DuckDBPyConnection, site: Site, day: date, ents: features.Entities, rows: list) -> None:
    """The day's host_days (one row per judged entity, and per split host as a whole, with the
    verdict it got), address_book (its recipients, hashed) and dns_client_days (the DNS clients
    that asked much): what later days judge against."""
    summary = features.day_summary(ents.bins, site)
    verdicts = pl.DataFrame(
        [
            {"client_ip": r["client_ip"] or "", "sender": r["entity_sender"], "verdict": r["kind"]}
            for r in rows
            if "entity_sender" in r
        ],
        schema={"client_ip": pl.String, "sender": pl.String, "verdict": pl.String},
    )
    summary = summary.join(verdicts, on=["client_ip", "sender"], how="left", nulls_equal=True).with_columns(
        site=pl.lit(site.name)
    )
    lake.write_frame(
        summary.select(HOST_DAYS_COLUMNS).sort(["client_ip", "sender"], nulls_last=True),
        lake.part_path(site.lake, "host_days", day),
    )
    lake.copy_query(con, "detect/address_book_day", {"site": site.name}, lake.part_path(site.lake, "address_book", day))
    if lake.has_files(site.lake, "dns_queries"):
        th = site.thresholds
        lake.copy_query(
            con,
            "detect/dns_client_day",
            {
                "site": site.name,
                "day": day,
                "day_start": ents.day_start,
                "interval": site.interval,
                "mail_server_ips": list(site.mail_server_ips),
                "floor": max(1, th.dns_client_min // int(th.dns_client_factor)),
            },
            lake.part_path(site.lake, "dns_client_days", day),
        )


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
