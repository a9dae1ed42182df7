"""`python -m mmw_eval` (what `make eval` runs): the benchmark suite, its table and its targets.

    python -m mmw_eval                      # the suite (mmw_eval/suite.py), 2 workers
    python -m mmw_eval --seed-offset 1000   # the same sites and days with new seeds
    python -m mmw_eval --sites new-small --json results.json

Exit status 0 when every target is met, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import time
from pathlib import Path

from mmw_eval.run import run_site
from mmw_eval.score import render, table, targets
from mmw_eval.suite import SUITE

ROOT = Path(__file__).resolve().parents[1]


def _job(args):
    spec, out = args
    return run_site(spec, out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="mmw_eval", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--out", default=str(ROOT / "eval_out"), help="where the simulated sites are written")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seed-offset", type=int, default=0, help="add this to every site's seed")
    p.add_argument("--sites", help="comma-separated names of the suite's sites to run (default: all)")
    p.add_argument("--json", help="also write every day's truth and findings to this file")
    p.add_argument("--verbose", action="store_true", help="list every miss and false alarm")
    a = p.parse_args(argv)
    specs = [s.with_seed_offset(a.seed_offset) for s in SUITE]
    if a.sites:
        names = a.sites.split(",")
        unknown = set(names) - {s.name for s in specs}
        if unknown:
            p.error(f"unknown site(s) {', '.join(sorted(unknown))}; the suite has {', '.join(s.name for s in specs)}")
        specs = [s for s in specs if s.name in names]
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    # longest sites first, so that two workers finish together
    jobs = sorted(((s, out) for s in specs), key=lambda j: -len(j[0].calendar) * (0.5 + j[0].scale))
    if a.workers > 1 and len(jobs) > 1:
        with mp.get_context("spawn").Pool(min(a.workers, len(jobs))) as pool:
            results = pool.map(_job, jobs, chunksize=1)
    else:
        results = [_job(j) for j in jobs]
    wall = time.monotonic() - t0
    days = [d for r in results for d in r["days"]]
    days.sort(key=lambda d: (d["site"], d["day"]))
    rows, summary = table(days)
    styles = sorted({d["style"] for d in days})
    history = sum(1 for d in days if d["baseline"] == "history")
    print(
        f"mmw benchmark: {len(days)} site-days on {len(results)} simulated sites "
        f"(stacks: {', '.join(styles)}; seeds +{a.seed_offset}; {history} days judged against history, "
        f"{len(days) - history} with within-day statistics); {summary['clean_days']} clean days, "
        f"{summary['benign_days'] - summary['clean_days']} other benign days, "
        f"{len(days) - summary['benign_days']} days with something planted"
    )
    print()
    print(render(rows, summary))
    print()
    ok = True
    for what, passed in targets(rows, summary):
        ok &= passed
        print(f"  [{'PASS' if passed else 'FAIL'}] {what}")
    cpu = sum(r["seconds"] for r in results)
    print(
        f"\nwall time {wall:.0f} s with {a.workers} worker(s) ({cpu:.0f} s of site runs; simulation "
        f"{sum(r['simulate_seconds'] for r in results):.0f} s of it)"
    )
    if a.verbose or not ok:
        for label, items in (("missed", summary["misses"]), ("false alarms", summary["false_alarms"])):
            for it in items:
                print(f"  {label}: " + " ".join(str(x) for x in it))
    if a.json:
        Path(a.json).write_text(
            json.dumps({"rows": rows, "summary": summary, "days": days}, indent=1, default=str) + "\n"
        )
    return 0 if ok else 1
