"""The site simulator for large scales: the same site N times over, its logs written from
columns (numpy draws, polars string building) instead of one event at a time.

    from mmw_tasks.simulate.large import simulate_large
    simulate_large(Path("isp"), date(2002, 2, 15), 1, scenario="klez", seed=0, scale=250)

`simulate_site` comes here from LARGE_SCALE up. Same files, formats, rotation, site.toml and
truth.json as the event simulator (exact: counted from the lines written), for the scenarios
clean, klez, frethem, dns_anomaly and full, both styles. `other_dns` sets the DNS server's other
clients (PCs, the web server, NetBIOS) apart from the scale: 1.0 is the papers' site, whose
DNS server also serves every PC; less is a site whose mail server has a resolver more to itself.

Modules: world (the site as arrays), traffic (what its users, lists and worms send), stack2002
and modern (the lines of each software stack), writer (files, rotation, truth tallies), text
(vectorised formatting), engine (the clock, incidents, truth.json).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

LARGE_SCALE = 10.0  # simulate_site's event simulator below, this one from here up


def simulate_large(
    out_dir: Path,
    start: date,
    days: int,
    scenario: str = "klez",
    seed: int = 0,
    style: str = "2002",
    scale: float = LARGE_SCALE,
    other_dns: float = 1.0,
) -> Path:
    """Write the site's logs, truth.json and site.toml under `out_dir`; returns the site.toml path."""
    from mmw_tasks.simulate.large.engine import LargeSim

    if not other_dns >= 0:
        raise ValueError(f"other_dns must be 0 or more, not {other_dns!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return LargeSim(out, start, days, scenario, seed, style, float(scale), float(other_dns)).run()
