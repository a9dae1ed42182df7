"""A simulated university mail site (2002): rotated syslog files of its DNS server (iplog) and
mail server (sendmail 8.12 + qpopper), a site.toml that points at them, and a truth.json with
exactly what was written, per local day and 10-minute bin, plus the incidents. With
style="modern" the same site runs Postfix 3 + Dovecot 2 and BIND 9.16 (query log through
syslog), with RFC 3339 stamps and logrotate's dateext + gzip.

    from mmw_tasks.simulate import simulate_site, SCENARIOS
    simulate_site(Path("demo"), date(2002, 2, 15), 3, scenario="klez", seed=0)

Modules: site (the site and the world it mails), traffic (everyday volumes), mail (sendmail lines,
their DNS queries, the queue), postfix (the same for Postfix), scenarios (klez, frethem,
dns_anomaly and the look-alikes), outbreaks (the benchmark's quieter worms, outages, bulk and list days, holidays),
render (styles, stamps), rotate (files, rotation, tallies), truth (truth.json, site.toml),
engine (the clock); large/ (the same site N times over, vectorised, for scales from 10 up).
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

from mmw_tasks.simulate.large import LARGE_SCALE
from mmw_tasks.simulate.render import STYLES
from mmw_tasks.simulate.scenarios import SCENARIOS, calendar

__all__ = ["SCENARIOS", "STYLES", "simulate_site"]


def simulate_site(
    out_dir: Path,
    start: date,
    days: int,
    scenario: str = "klez",
    seed: int = 0,
    style: str = "2002",
    scale: float = 1.0,
) -> Path:
    """Write logs/1dns/messages*, logs/1mx/syslog*, truth.json and site.toml under `out_dir`.

    Traffic runs from (start - 1 day) 00:00 to (start + days) 07:00 local, so every requested day
    is whole in the files; the scenario acts on the requested days: one name for all of them, or
    one per day, comma-separated ("clean,clean,klez"; the last repeats). Returns the site.toml path.
    Same arguments, same bytes. From `scale` LARGE_SCALE (10) up the site itself is N times larger
    (users, PCs, domains, lists) and simulate/large writes it, from 23:00 the evening before.
    """
    from mmw_tasks.simulate.engine import Sim

    calendar(scenario, 1)  # every name known, or a ValueError that lists them
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; expected one of {', '.join(STYLES)}")
    if not isinstance(days, int) or days < 1:
        raise ValueError(f"days must be a positive integer, not {days!r}")
    if not scale > 0:
        raise ValueError(f"scale must be positive, not {scale!r}")
    if isinstance(start, datetime):
        start = start.date()
    if not isinstance(start, date):
        raise ValueError(f"start must be a date, not {start!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if scale >= LARGE_SCALE:  # N times the site, written from columns (simulate/large)
        from mmw_tasks.simulate.large import simulate_large

        return simulate_large(out, start, days, scenario, seed, style, float(scale))
    return Sim(out, start, days, scenario, seed, style, float(scale)).run()
