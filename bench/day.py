"""`make bench-day`: the whole daily job on a large simulated site-day, stage by stage.

    python -m bench.day [--sizes 40M] [--days 1] [--style 2002] [--timeout 1800] [--seed 1]

For each size (lines of the day: a quarter mail, three quarters DNS, as issue #18 sets them) the
site is simulated once by the large simulator (simulate/large; cached under bench_out/day/),
with its scale and the share of the DNS server's other clients fitted from a small pilot run.
Then `mmw run`'s work (pipeline.run_day, bench/day_child.py) runs on it in a fresh process per
day, reporting each stage as it ends: wall, CPU seconds and the stage's own peak RSS. The parent
prints the table, end-to-end lines/s and CPU-s per million lines, checks the report's totals
against truth.json and whether the planted worm was reported. With --days N the site has N days
(from a Monday) and each day runs in turn on the same lake, as a daily cron would: the cost per
day should stay flat as the lake grows. A run over --timeout seconds is stopped, and the table
says which stage it was in.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench_out" / "day"
START = date(2002, 2, 11)  # a Monday
PILOT_SCALE = 4.0
MAIL_SHARE = 0.25  # issue #18: 10M mail + 30M DNS lines in a 40M-line day
KEYS = ("dq", "n_from", "n_to", "n_sent", "n_deferred", "n_pop", "n_user_unknown")


def size_of(text: str) -> int:
    t = text.strip().upper()
    mult = {"K": 1_000, "M": 1_000_000}.get(t[-1:], 1)
    return int(float(t.rstrip("KM")) * mult)


def label(n: int) -> str:
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n // 1000}K" if n % 1000 == 0 else str(n)


# -- in a child process: the pilot and the simulation ---------------------------------------------------
def lines_of_day(site: Path, day: date, style: str) -> dict[str, int]:
    """Lines of each server's files stamped with the local day `day`."""
    import gzip

    month = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()[day.month - 1]
    prefix = (f"{month} {day.day:2d} " if style == "2002" else f"{day.isoformat()}T").encode()
    out = {}
    for sub in ("1dns", "1mx"):
        n = 0
        for p in (site / "logs" / sub).iterdir():
            opener = gzip.open if p.name.endswith(".gz") else open
            with opener(p, "rb") as f:
                n += sum(1 for line in f if line.startswith(prefix))
        out[sub] = n
    return out


def _pilot(site: Path, style: str, seed: int) -> None:
    """A small clean day: mail lines, Dq and other DNS lines per unit of scale (other_dns = 1)."""
    from mmw_tasks.simulate.large import simulate_large

    simulate_large(site, START, 1, scenario="clean", seed=seed, style=style, scale=PILOT_SCALE)
    n = lines_of_day(site, START, style)
    dq = json.loads((site / "truth.json").read_text())["days"][START.isoformat()]["totals"]["dq"]
    print(json.dumps({"mail": n["1mx"] / PILOT_SCALE, "dq": dq / PILOT_SCALE, "other": (n["1dns"] - dq) / PILOT_SCALE}))


def _simulate(site: Path, style: str, days: int, scale: float, other_dns: float, seed: int) -> None:
    from mmw_tasks.simulate.large import simulate_large

    simulate_large(site, START, days, scenario="klez", seed=seed, style=style, scale=scale, other_dns=other_dns)
    truth = json.loads((site / "truth.json").read_text())
    print(json.dumps({"written": sum(f["lines"] for f in truth["files"]), "day": lines_of_day(site, START, style)}))


# -- the parent -------------------------------------------------------------------------------------------
def run(cmd: list[str], cwd: Path) -> tuple[str, dict]:
    """A child to its end: (stdout, wall/cpu/peak_mb from os.wait4)."""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
    out = p.stdout.read().decode()
    p.stdout.close()
    _, status, ru = os.wait4(p.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed")
    return out, {"wall": time.monotonic() - t0, "cpu": ru.ru_utime + ru.ru_stime, "peak_mb": ru.ru_maxrss / 1024}


def prepare(size: int, days: int, style: str, seed: int, fresh: bool) -> tuple[Path, dict]:
    """The simulated site of `size` lines a day (cached): its directory and plan.json."""
    site = OUT / f"{style}-{label(size)}-{days}d-seed{seed}"
    plan_path = site / "plan.json"
    if not fresh and plan_path.is_file() and (site / "truth.json").is_file():
        return site, json.loads(plan_path.read_text())
    shutil.rmtree(site, ignore_errors=True)
    pilot_dir = OUT / f"pilot-{style}-seed{seed}"
    shutil.rmtree(pilot_dir, ignore_errors=True)
    me = [sys.executable, "-m", "bench.day"]
    out, _ = run([*me, "_pilot", str(pilot_dir), style, str(seed)], ROOT)
    unit = json.loads(out.strip().splitlines()[-1])
    shutil.rmtree(pilot_dir, ignore_errors=True)
    scale = size * MAIL_SHARE / unit["mail"]
    other_dns = max(0.0, (size * (1 - MAIL_SHARE) / scale - unit["dq"]) / unit["other"])
    print(
        f"  simulating {label(size)} x {days} day(s): scale {scale:.1f}, other DNS clients {other_dns:.3f} ...",
        flush=True,
    )
    out, cost = run([*me, "_simulate", str(site), style, str(days), repr(scale), repr(other_dns), str(seed)], ROOT)
    res = json.loads(out.strip().splitlines()[-1])
    plan = {
        "size": size, "days": days, "style": style, "seed": seed, "scale": scale, "other_dns": other_dns,
        "written": res["written"], "first_day": res["day"], "simulate": cost,
    }  # fmt: skip
    plan_path.write_text(json.dumps(plan, indent=1) + "\n")
    return site, plan


def run_day(site: Path, day: date, timeout: float) -> dict:
    """bench/day_child.py on one day: its events as they come, stopped after `timeout` seconds."""
    cmd = [sys.executable, str(ROOT / "bench" / "day_child.py"), str(site / "site.toml"), day.isoformat()]
    t0 = time.monotonic()
    p = subprocess.Popen(
        cmd, cwd=site, stdout=subprocess.PIPE, start_new_session=True, env={**os.environ, "PYTHONPATH": str(ROOT)}
    )
    res: dict = {"day": day.isoformat(), "stages": {}, "running": None, "timed_out": False}
    buf = b""
    while True:
        left = None if not timeout else timeout - (time.monotonic() - t0)
        if left is not None and left <= 0:
            res["timed_out"] = True
            os.killpg(p.pid, signal.SIGKILL)
            break
        ready, _, _ = select.select([p.stdout], [], [], left)
        if not ready:
            continue
        chunk = os.read(p.stdout.fileno(), 65536)
        if not chunk:
            break
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            ev = json.loads(line)
            if ev["event"] == "start":
                res["running"] = (ev["stage"], time.monotonic())
            elif ev["event"] == "end":
                res["stages"][ev["stage"]] = {"wall": ev["wall"], "cpu": ev["cpu"], "peak_mb": ev["stage_peak_mb"]}
                res["running"] = None
                print(f"  {ev['stage']}: {ev['wall']:,.1f} s wall, {ev['cpu']:,.1f} CPU-s", flush=True)
            elif ev["event"] == "imported":
                res["stages"]["import"] = {"wall": ev["wall"], "cpu": ev["cpu"], "peak_mb": None}
            elif ev["event"] == "done":
                res["done"] = ev
    p.stdout.close()
    _, status, ru = os.wait4(p.pid, 0)
    res["wall"] = time.monotonic() - t0
    res["cpu"] = ru.ru_utime + ru.ru_stime
    res["peak_mb"] = ru.ru_maxrss / 1024
    if res["running"]:  # stopped: the stage's CPU is what the process spent beyond the stages done
        name, since = res["running"]
        done_cpu = sum(s["cpu"] for s in res["stages"].values())
        res["running"] = {"stage": name, "for": time.monotonic() - since, "cpu": res["cpu"] - done_cpu}
    if not res["timed_out"] and "done" not in res:
        raise RuntimeError(f"{' '.join(cmd)} failed (exit {os.waitstatus_to_exitcode(status)})")
    return res


def check(site: Path, res: dict) -> None:
    """Totals against truth.json, and the planted worm among the report's mmw_suspect."""
    truth = json.loads((site / "truth.json").read_text())["days"][res["day"]]
    planted = {i["client_ip"] for i in truth["incidents"] if i["kind"] == "mmw_suspect"}
    res["planted"] = sorted(planted)
    done = res.get("done")
    if not done:
        return
    diff = {k: (done["totals"][k], truth["totals"][k]) for k in KEYS if done["totals"][k] != truth["totals"][k]}
    res["totals_equal"], res["totals_diff"] = not diff, diff
    found = {i["client_ip"] for i in done["incidents"] if i["kind"] == "mmw_suspect"}
    res["worm_found"] = planted <= found and bool(planted)
    res["false_suspects"] = len(found - planted)
    res["lines"] = {s: v["lines_read"] for s, v in done["servers"].items()}
    res["malformed"] = sum(v["malformed"] for v in done["servers"].values())


# -- the tables ---------------------------------------------------------------------------------------------
def table(head: list[str], rows: list[list], left: int = 1) -> str:
    cells = [head, *[[str(c) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(head))]
    lines = []
    for j, r in enumerate(cells):
        lines.append(
            "  ".join(c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
        )
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def f1(x) -> str:
    return "-" if x is None else f"{x:,.1f}"


def stage_table(res: dict) -> str:
    rows = []
    for name, s in res["stages"].items():
        rows.append([name, f1(s["wall"]), f1(s["cpu"]), "-" if s["peak_mb"] is None else f"{s['peak_mb']:,.0f}"])
    if res.get("running"):
        r = res["running"]
        rows.append([f"{r['stage']} (still running)", f1(r["for"]), f"> {f1(r['cpu'])}", "?"])
    rows.append(["whole process", f1(res["wall"]), f1(res["cpu"]), f"{res['peak_mb']:,.0f}"])
    return table(["stage", "wall s", "CPU-s", "peak MB"], rows)


def verdict(res: dict) -> list[str]:
    out = []
    if res.get("lines"):
        n = sum(res["lines"].values())
        mail = res["lines"].get("1mx", 0)
        out.append(
            f"end to end: {n:,} lines ({mail:,} mail, {n - mail:,} DNS) in {res['wall']:,.1f} s: "
            f"{n / res['wall']:,.0f} lines/s, {res['cpu'] / (n / 1e6):.2f} CPU-s per million lines; "
            f"{res['malformed']:,} malformed"
        )
    if res["timed_out"]:
        r = res.get("running") or {}
        out.append(
            f"TIMED OUT after {res['wall']:,.0f} s in stage {r.get('stage', '?')} "
            f"(running for {r.get('for', 0):,.0f} s)"
        )
    if "totals_equal" in res:
        if res["totals_equal"]:
            out.append("totals vs truth: equal")
        else:
            out.append(
                "totals vs truth: DIFFER "
                + ", ".join(f"{k} {a:,} (truth {b:,})" for k, (a, b) in res["totals_diff"].items())
            )
        out.append(
            f"planted worm ({', '.join(res['planted']) or 'none'}) found: {'yes' if res['worm_found'] else 'NO'}; "
            f"mmw_suspect not planted: {res['false_suspects']}"
        )
    return out


def running_for(res: dict, stage: str) -> str:
    r = res.get("running")
    return f"> {r['cpu']:,.0f}" if r and r["stage"] == stage else "-"


def summary_row(first: str, res: dict) -> list:
    n = sum(res.get("lines", {}).values()) if res.get("lines") else None
    det = res["stages"].get("detect")
    return [
        first,
        f"{n:,}" if n else "-",
        f1(res["wall"]),
        f1(res["cpu"]),
        f"{res['cpu'] / (n / 1e6):.2f}" if n else "-",
        f"{n / res['wall']:,.0f}" if n else "-",
        f"{res['peak_mb']:,.0f}",
        f1(det["cpu"]) if det else running_for(res, "detect"),
        "timed out" if res["timed_out"] else ("equal" if res.get("totals_equal") else "DIFFER"),
        "-" if "worm_found" not in res else ("yes" if res["worm_found"] else "NO"),
    ]


SUMMARY = ["size", "lines", "wall s", "CPU-s", "CPU-s/M lines", "lines/s", "peak MB", "detect CPU-s", "totals", "worm"]


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "_pilot":
        return _pilot(Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])) or 0
    if len(sys.argv) > 1 and sys.argv[1] == "_simulate":
        a = sys.argv[2:]
        return _simulate(Path(a[0]), a[1], int(a[2]), float(a[3]), float(a[4]), int(a[5])) or 0
    ap = argparse.ArgumentParser(prog="python -m bench.day", description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", "--lines", default="40M", help="lines of a site-day, comma-separated (4M,10M,40M)")
    ap.add_argument("--days", type=int, default=1, help="days of the site, each run in turn on one lake")
    ap.add_argument("--style", choices=["2002", "modern"], default="2002")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=1800, help="seconds a day's run may take (0: no limit)")
    ap.add_argument("--fresh", action="store_true", help="simulate again even when the site is cached")
    a = ap.parse_args()
    sizes = [size_of(x) for x in a.sizes.split(",") if x.strip()]
    OUT.mkdir(parents=True, exist_ok=True)
    print(
        f"mmw bench-day: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, python "
        f"{sys.version.split()[0]}, style {a.style}, seed {a.seed}, {a.days} day(s) from {START}",
        flush=True,
    )
    summary, results = [], []
    for size in sizes:
        site, plan = prepare(size, a.days, a.style, a.seed, a.fresh)
        sim = plan["simulate"]
        print(
            f"\n== {label(size)} lines a day: {site.relative_to(ROOT)} (scale {plan['scale']:.1f}, other DNS clients "
            f"{plan['other_dns']:.3f})\nsimulated {plan['written']:,} lines ({plan['days']} day(s) and the night "
            "around) in "
            f"{sim['wall']:,.1f} s wall, {sim['cpu']:,.1f} CPU-s, peak {sim['peak_mb']:,.0f} MB: "
            f"{plan['written'] / sim['wall']:,.0f} lines/s, {plan['written'] / sim['cpu']:,.0f} lines per CPU-s",
            flush=True,
        )
        shutil.rmtree(site / "data_lake", ignore_errors=True)
        for k in range(a.days):
            day = START + timedelta(days=k)
            print(f"\n{day} ({day.strftime('%A')}), load average {os.getloadavg()[0]:.1f}:", flush=True)
            res = run_day(site, day, a.timeout)
            check(site, res)
            print(stage_table(res))
            for line in verdict(res):
                print(line)
            sys.stdout.flush()
            res.update(size=size, site=str(site))
            results.append(res)
            summary.append(summary_row(f"{label(size)} {day}" if a.days > 1 else label(size), res))
    print("\n" + table(SUMMARY, summary))
    print(
        "wall and CPU-s: the whole `mmw run` process (imports included; CPU is user + system, every thread);\n"
        "peak MB: its maximum RSS; per stage, the stage's own peak (RSS sampled every 20 ms)."
    )
    print(f"(load average now {os.getloadavg()[0]:.1f})")
    (OUT / "results.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
