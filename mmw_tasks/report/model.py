"""What a day's report holds, shared by its renderings (json, md, html, mail) and the trends page:
the keys of its sections, the kinds of incident and their titles, where it is written."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from mmw_tasks.config import Site

TOTAL_KEYS = ("dq", "n_from", "n_to", "n_sent", "n_deferred", "n_pop", "n_user_unknown")
MODEL_KEYS = ("m_s", "m_p", "r2", "q", "n", "m_sd", "r2_sd")
BAND_KEYS = ("m_s", "m_p", "r2", "q", "n")  # the coefficients with a history band
ATTENTION = ("mmw_suspect", "deferred_surge", "dns_anomaly")  # kinds someone must look at
KIND_TITLES = {
    "mmw_suspect": "Suspected worm-infected host",
    "bulk_sender": "Bulk mailing (benign burst)",
    "mailing_list": "Mailing list traffic",
    "deferred_surge": "Other sites are deferring our mail",
    "dns_anomaly": "DNS queries with no mail to explain them",
}
COEFFICIENT_NAMES = {
    "m_s": "m_s (DNS queries per SMTP access)",
    "m_p": "m_p (DNS queries per POP3 login)",
    "r2": "R² of the fit",
    "q": "q (share delivered locally)",
    "n": "n (hosts per remote domain)",
}
DRIFT_CAUSES = "a changed mail setup, a new relay or a resolver cache change"


def report_dir(site: Site, day: date | str) -> Path:
    return Path(site.lake) / "reports" / f"day={day}"


def who(i: dict) -> str:
    host = i.get("client_ip") and (
        f"host {i['client_ip']}" + (f" ({i['reverse_name']})" if i.get("reverse_name") else "")
    )
    return (
        ", ".join(
            x
            for x in (host, i.get("sender") and f"sender {i['sender']}", i.get("domain") and f"domain {i['domain']}")
            if x
        )
        or "no single sender"
    )


def dq_types_known(rep: dict) -> bool:
    """Whether the DNS log gave query types (iplog's have none: all 'unknown')."""
    return any(k != "unknown" for k in rep.get("dq_by_type", {}))
