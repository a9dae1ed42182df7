"""Run one benchmark site: simulate it, then the whole daily job day by day (history builds up),
and collect, per day, the truth and what mmw reported."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from mmw_eval.suite import SiteSpec


def run_site(spec: SiteSpec, out: Path) -> dict:
    from mmw_tasks import lake, pipeline
    from mmw_tasks.simulate import simulate_site

    t0 = time.monotonic()
    where = out / f"{spec.name}-{spec.seed}"
    if where.exists():
        shutil.rmtree(where)
    toml = simulate_site(
        where,
        spec.start,
        len(spec.calendar),
        scenario=",".join(spec.calendar),
        seed=spec.seed,
        style=spec.style,
        scale=spec.scale,
    )
    t_sim = time.monotonic() - t0
    truth = json.loads((where / "truth.json").read_text())
    days = []
    for d, scenario in zip(spec.days, spec.calendar, strict=True):
        t1 = time.monotonic()
        pipeline.run_day(toml, d, log=lambda m: None)
        con = lake.connect(where / "data_lake")
        inc = con.sql(
            'select kind, start, "end", sender, client_ip, domain, score, evidence from incidents where day = $day',
            params={"day": d},
        ).pl()
        run = con.sql("select baseline from detect_runs where day = $day", params={"day": d}).fetchone()
        found = []
        for r in inc.iter_rows(named=True):
            ev = json.loads(r.pop("evidence"))
            r["first_flagged"] = ev.get("first_flagged")
            r["source"] = ev.get("source")
            r["start"], r["end"] = r["start"].isoformat(), r["end"].isoformat()
            found.append(r)
        days.append(
            {
                "site": spec.name,
                "style": spec.style,
                "seed": spec.seed,
                "scale": spec.scale,
                "day": str(d),
                "scenario": scenario,
                "baseline": run[0] if run else None,
                "truth": truth["days"][str(d)]["incidents"],
                "found": found,
                "seconds": round(time.monotonic() - t1, 2),
            }
        )
    return {
        "site": spec.name,
        "days": days,
        "simulate_seconds": round(t_sim, 1),
        "seconds": round(time.monotonic() - t0, 1),
    }
