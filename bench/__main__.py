"""`make bench`: parsing speed of every format, gzip included, against grep -c and pflogsumm.

    python -m bench [--lines 5000000] [--runs 3] [--formats postfix,bind] [--baseline GIT-REF]
                    [--no-linearity] [--no-pflogsumm]

For each format: a file of --lines lines (plain and gzip, generated once into bench_out/logs by
bench.gen from the simulator's lines), parsed into a Parquet lake by the same code `mmw run`
uses, each run in a fresh process (bench/child.py) whose peak RSS the parent reads with
os.wait4; its CPU time is that of the parse call itself (getrusage around it, in the child). Times
are medians of --runs runs (one run when a run takes over 30 s). grep -c runs on the same file
(through gzip -dc for .gz). pflogsumm (the Debian package, installed when missing) runs once on
the Postfix file, and its Grand Totals are checked against our rows. The Postfix
format is also run on 1M and 20M lines to show the cost is linear. --baseline REF measures the
parser of an older commit (git archive) on the same files, for before/after figures.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from bench.gen import DAY, ROLE

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench_out"
FORMATS = ("sendmail", "postfix", "exim", "iplog", "bind", "dnsmasq", "unbound")
GREP_LITERAL = {
    "sendmail": "from=",
    "postfix": "status=",
    "exim": " <= ",
    "iplog": "dgram to domain",
    "bind": ": query: ",
    "dnsmasq": "query[",
    "unbound": " info: ",
}
TARGET = 1_000_000  # lines/s, the target for every format
SLOW_RUN = 30.0  # seconds: above this, one run is enough (keeps make bench near 20 minutes)


def write_log(root: Path, fmt: str, n: int, gz: bool = False) -> Path:
    """bench.gen.write_log in a process of its own: on Linux a child's peak RSS starts from its
    parent's at fork, so the measuring parent must stay small."""
    r = subprocess.run(
        [sys.executable, "-m", "bench.gen", str(root), fmt, str(n), *(["gz"] if gz else [])],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(r.stdout.strip().splitlines()[-1])


def site_toml(name: str, fmt: str, path: Path) -> Path:
    """A one-server site (plus a placeholder server of the other role) for one bench file."""
    other = (
        '[[servers]]\nname = "none"\nrole = "mail"\nformat = "sendmail"\nsource = "none/*"\n'
        if ROLE[fmt] == "dns"
        else '[[servers]]\nname = "none"\nrole = "dns"\nformat = "bind"\nsource = "none/*"\n'
        'mail_server_ips = ["10.1.0.25"]\n'
    )
    ips = 'mail_server_ips = ["10.1.0.25"]\n' if ROLE[fmt] == "dns" else ""
    text = (
        f'[site]\nname = "bench"\ntimezone = "Asia/Tokyo"\nlake = "{OUT / "lake"}"\n'
        f'local_domains = ["example.ac.jp"]\ninterval = "10m"\n\n'
        f'[[servers]]\nname = "{name}"\nrole = "{ROLE[fmt]}"\nformat = "{fmt}"\nsource = "{path}"\n{ips}\n'
        f"{other}"
    )
    p = OUT / "sites" / f"{name}.toml"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p


def run_child(code_root: Path, config: Path, server: str, path: Path) -> dict:
    """One parse in a fresh process; adds its wall time and peak RSS (MB, from os.wait4)."""
    env = {**os.environ, "PYTHONPATH": str(code_root)}
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        p = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "child.py"), str(config), server, DAY.isoformat(), str(path)],
            stdout=subprocess.PIPE,
            stderr=err,
            env=env,
            cwd=OUT,
        )
        out = p.stdout.read()
        p.stdout.close()
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = rc = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
        if rc != 0:
            err.seek(0)
            raise RuntimeError(f"{server}: child failed ({rc}):\n{err.read().decode(errors='replace')[-3000:]}")
    res = json.loads(out.decode().strip().splitlines()[-1])
    res["wall"] = wall
    res["cpu_process"] = usage.ru_utime + usage.ru_stime  # the whole process: imports, every thread
    res["peak_mb"] = usage.ru_maxrss / 1024
    return res


def scan_seconds(path: Path) -> float:
    """The manifest scan of `path` (what fetch does once per new file), in a child."""
    r = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "child.py"), "--scan", str(path)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=OUT,
    )
    return json.loads(r.stdout.strip().splitlines()[-1])["seconds"]


def grep_seconds(path: Path, literal: str, runs: int) -> tuple[float, int]:
    cmd = (
        f"gzip -dc {path} | grep -c -F -- '{literal}'"
        if path.name.endswith(".gz")
        else f"grep -c -F -- '{literal}' {path}"
    )
    times, count = [], 0
    for _ in range(runs):
        t0 = time.perf_counter()
        r = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True, check=False)
        times.append(time.perf_counter() - t0)
        count = int(r.stdout.strip() or 0)
    return statistics.median(times), count


def measure(code_root: Path, fmt: str, path: Path, runs: int, name: str) -> dict:
    config = site_toml(name, fmt, path)
    first = run_child(code_root, config, name, path)
    results = [first]
    if first["seconds"] < SLOW_RUN:
        results += [run_child(code_root, config, name, path) for _ in range(runs - 1)]
    secs = statistics.median(r["seconds"] for r in results)
    cpu = statistics.median(r["cpu_seconds"] for r in results)
    return {
        **first,
        "seconds": secs,
        "cpu": cpu,
        "runs": len(results),
        "peak_mb": max(r["peak_mb"] for r in results),
        "all_seconds": [round(r["seconds"], 2) for r in results],
    }


def raw_bytes(path: Path) -> int:
    if not path.name.endswith(".gz"):
        return path.stat().st_size
    cache = path.with_name(path.name + ".size")
    if cache.is_file():
        return int(cache.read_text())
    r = subprocess.run(["sh", "-c", f"gzip -dc {path} | wc -c"], capture_output=True, text=True, check=True)
    cache.write_text(r.stdout.strip())
    return int(r.stdout.strip())


def export(ref: str) -> Path:
    """The mmw_tasks and sql of an older commit, for --baseline."""
    dest = OUT / f"ref-{ref}"
    if (dest / "mmw_tasks").is_dir():
        return dest
    tmp = Path(tempfile.mkdtemp(dir=OUT))
    data = subprocess.run(["git", "archive", ref, "mmw_tasks", "sql"], cwd=ROOT, capture_output=True, check=True).stdout
    tar = tmp / "a.tar"
    tar.write_bytes(data)
    with tarfile.open(tar) as t:
        t.extractall(tmp, filter="data")
    tar.unlink()
    tmp.rename(dest)
    return dest


# -- pflogsumm ----------------------------------------------------------------------------------
def ensure_pflogsumm() -> str | None:
    exe = shutil.which("pflogsumm") or ("/usr/sbin/pflogsumm" if Path("/usr/sbin/pflogsumm").exists() else None)
    if exe:
        return exe
    print("pflogsumm not found: apt-get install -y pflogsumm", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    r = subprocess.run([*sudo, "apt-get", "install", "-y", "-q", "pflogsumm"], env=env, capture_output=True, text=True)
    if r.returncode != 0:
        subprocess.run([*sudo, "apt-get", "update", "-q"], env=env, capture_output=True)
        subprocess.run([*sudo, "apt-get", "install", "-y", "-q", "pflogsumm"], env=env, capture_output=True)
    return shutil.which("pflogsumm") or ("/usr/sbin/pflogsumm" if Path("/usr/sbin/pflogsumm").exists() else None)


def pflogsumm_totals(exe: str, path: Path) -> tuple[float, dict, set[str]]:
    """pflogsumm's received, delivered, deferrals, bounced and rejected for a file, from its Grand
    Totals (over the whole file, whatever days it holds; the per-hour table is an average per
    day). Counts over 512k are printed in units of 1024 ("548k"): those keys come back in units
    of 1024 too, named in the returned set."""
    t0 = time.perf_counter()
    r = subprocess.run([exe, str(path)], capture_output=True, text=True, check=True)
    secs = time.perf_counter() - t0
    grand = r.stdout.split("Grand Totals", 1)[1].split("\n\n", 3)
    text = "\n".join(grand[:3])
    patterns = {
        "received": r"^\s*(\d+)([km]?)\s+received\s*$",
        "delivered": r"^\s*(\d+)([km]?)\s+delivered\s*$",
        "deferrals": r"^\s*\d+[km]?\s+deferred\s+\(\s*(\d+)([km]?)\s+deferrals\s*\)",
        "bounced": r"^\s*(\d+)([km]?)\s+bounced\s*$",
        "rejected": r"^\s*(\d+)([km]?)\s+rejected\b",
    }
    out, in_k = {}, set()
    for key, pat in patterns.items():
        m = re.search(pat, text, re.M)
        if m is None:
            raise RuntimeError(f"pflogsumm's Grand Totals have no {key!r} line:\n{text}")
        if m.group(2) == "m":
            raise RuntimeError(f"pflogsumm printed {key} in millions (units of 1024k): too coarse to compare")
        out[key] = int(m.group(1))
        if m.group(2) == "k":
            in_k.add(key)
    return secs, out, in_k


def our_totals(server: str) -> dict:
    """The same counts from the lake rows the last parse of `server` wrote. received: the new
    messages (from rows) that are not bounce notifications, i.e. those with an smtpd client= or
    a pickup line, the two pflogsumm counts."""
    import duckdb

    base = OUT / "lake" / "mail_events" / f"day={DAY.isoformat()}" / f"{server}.parquet"
    con = duckdb.connect()
    q = f"""with ev as (select * from read_parquet('{base}')),
        notices as (
            select distinct regexp_extract(detail, 'notification: ([0-9A-Za-z]+)', 1) as queue_id
            from ev where event = 'dsn' and detail like '%non-delivery notification: %'
        )
        select
        count(*) filter (where event = 'from' and queue_id not in (select queue_id from notices)) as received,
        count(*) filter (where event = 'to' and status = 'sent') as delivered,
        count(*) filter (where event = 'to' and status = 'deferred') as deferrals,
        count(*) filter (where event = 'to' and status in ('bounced', 'user_unknown')) as bounced,
        count(*) filter (where event = 'reject') as rejected
        from ev"""
    row = con.sql(q).fetchone()
    return dict(zip(("received", "delivered", "deferrals", "bounced", "rejected"), row, strict=True))


# -- the table ----------------------------------------------------------------------------------
def fmt_row(cells: list, widths: list[int]) -> str:
    return "  ".join(
        str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
    )


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", type=int, default=5_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--formats", default=",".join(FORMATS))
    ap.add_argument("--baseline", default=None, help="git ref whose parser is measured too (one run per file)")
    ap.add_argument("--no-linearity", action="store_true")
    ap.add_argument("--no-pflogsumm", action="store_true")
    ap.add_argument("--no-gzip", action="store_true")
    a = ap.parse_args()
    formats = [f for f in a.formats.split(",") if f]
    OUT.mkdir(exist_ok=True)
    shutil.rmtree(OUT / "lake", ignore_errors=True)
    started = time.perf_counter()
    print(
        f"mmw bench: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, python {sys.version.split()[0]}, "
        f"files of {a.lines:,} lines under {OUT}",
        flush=True,
    )

    t0 = time.perf_counter()
    jobs = []  # (label, fmt, path)
    for fmt in formats:
        jobs.append((fmt, fmt, write_log(OUT, fmt, a.lines)))
        if not a.no_gzip:
            jobs.append((f"{fmt} gz", fmt, write_log(OUT, fmt, a.lines, gz=True)))
    lin = []
    if not a.no_linearity and "postfix" in formats:
        for n in (1_000_000, a.lines, 4 * a.lines):
            lin.append((n, write_log(OUT, "postfix", n)))
    print(f"files ready in {time.perf_counter() - t0:.0f} s (bench.gen: simulator lines, tiled)", flush=True)
    ref_root = export(a.baseline) if a.baseline else None

    rows = []
    for label, fmt, path in jobs:
        name = label.replace(" ", "_")
        res = measure(ROOT, fmt, path, a.runs, name)
        g_secs, g_count = grep_seconds(path, GREP_LITERAL[fmt], a.runs)
        s_secs = scan_seconds(path)
        mb = raw_bytes(path) / 1e6
        row = {
            "label": label,
            "fmt": fmt,
            "path": path,
            "lines": res["lines_read"],
            "mb": mb,
            "disk_mb": path.stat().st_size / 1e6,
            "res": res,
            "grep": g_secs,
            "grep_count": g_count,
            "scan": s_secs,
        }
        if ref_root is not None:
            row["base"] = run_child(ref_root, site_toml(name, fmt, path), name, path)
        rows.append(row)
        print(
            f"  {label:12s} {res['lines_read'] / res['seconds']:>12,.0f} lines/s  {mb / res['seconds']:7.1f} MB/s  "
            f"peak {res['peak_mb']:6.0f} MB  runs {res['all_seconds']}  grep {g_secs:.2f} s"
            + (f"  baseline {row['base']['lines_read'] / row['base']['seconds']:,.0f} lines/s" if ref_root else ""),
            flush=True,
        )

    pf = None
    if not a.no_pflogsumm and "postfix" in formats:
        exe = ensure_pflogsumm()
        pf_path = next(p for label, f, p in jobs if label == "postfix")
        if exe:
            secs, theirs, in_k = pflogsumm_totals(exe, pf_path)
            ours = our_totals("postfix")
            pf = {"secs": secs, "theirs": theirs, "in_k": in_k, "ours": ours, "path": pf_path}
        else:
            print("pflogsumm could not be installed: comparison skipped", flush=True)

    lin_rows = []
    for n, path in lin:
        done = next((r for r in rows if r["path"] == path), None)  # the postfix file measured above
        res = (
            done["res"]
            if done
            else measure(ROOT, "postfix", path, a.runs if n <= a.lines else 1, f"postfix_{n // 1_000_000}M")
        )
        lin_rows.append((n, path, res))
        print(
            f"  postfix {n // 1_000_000:>3d}M  {res['lines_read'] / res['seconds']:>12,.0f} lines/s  "
            f"{res['seconds']:.1f} s  peak {res['peak_mb']:.0f} MB",
            flush=True,
        )

    # -- print the table -------------------------------------------------------------------------
    print()
    head = [
        "file",
        "lines",
        "MB",
        "lines/s",
        "MB/s",
        "lines/CPU-s",
        "peak MB",
        "runs",
        "grep -c s",
        "x grep",
        "scan lines/s",
    ]
    if ref_root is not None:
        head += [f"lines/s @{a.baseline}", "speed-up"]
    table = []
    for r in rows:
        res = r["res"]
        cells = [
            r["label"],
            f"{r['lines']:,}",
            f"{r['mb']:.0f}",
            f"{r['lines'] / res['seconds']:,.0f}",
            f"{r['mb'] / res['seconds']:.1f}",
            f"{r['lines'] / res['cpu']:,.0f}",
            f"{res['peak_mb']:.0f}",
            res["runs"],
            f"{r['grep']:.2f}",
            f"{res['seconds'] / r['grep']:.1f}",
            f"{r['lines'] / r['scan']:,.0f}",
        ]
        if ref_root is not None:
            b = r["base"]
            cells += [f"{b['lines_read'] / b['seconds']:,.0f}", f"{b['seconds'] / res['seconds']:.1f}"]
        table.append(cells)
    widths = [max(len(str(x)) for x in col) for col in zip(head, *table, strict=True)]
    print(fmt_row(head, widths))
    print(fmt_row(["-" * w for w in widths], widths))
    for cells in table:
        print(fmt_row(cells, widths))
    print(
        "lines/s, MB/s: lines (uncompressed bytes) parsed into Parquet per second, median of the runs, in a fresh\n"
        "process (imports excluded); lines/CPU-s: per second of CPU of the parse call (user+sys, all threads, from\n"
        "getrusage in the child; this machine is shared, so wall time includes waiting for a core); peak MB: the\n"
        "process's maximum RSS; x grep: our time / grep -c's on the same file (gzip -dc | grep -c for .gz);\n"
        "scan lines/s: the manifest scan fetch makes once of each new file (content hash, span, years), one run,\n"
        "not part of the parse (a file parsed without a fetch skips it)."
    )
    met = [r["label"] for r in rows if r["lines"] / r["res"]["seconds"] >= TARGET]
    missed = [r["label"] for r in rows if r["label"] not in met]
    print(f"target {TARGET:,} lines/s: met by {', '.join(met) or 'none'}; not by {', '.join(missed) or 'none'}")

    if lin_rows:
        print("\nlinearity (postfix, plain):")
        for n, _, res in lin_rows:
            print(
                f"  {n:>12,} lines  {res['seconds']:7.2f} s  {res['lines_read'] / res['seconds']:>12,.0f} lines/s  "
                f"{res['seconds'] / n * 1e6:.3f} s per 1M lines  peak {res['peak_mb']:.0f} MB"
            )
    if pf:
        ours, theirs = pf["ours"], pf["theirs"]
        pr = next(r for r in rows if r["label"] == "postfix")
        print(
            f"\npflogsumm on {pf['path'].name}: {pf['secs']:.1f} s = {pr['lines'] / pf['secs']:,.0f} lines/s "
            f"(we are {pf['secs'] / pr['res']['seconds']:.1f}x faster)"
        )
        print(
            "  count       pflogsumm        mmw  agree   (pflogsumm's Grand Totals; mmw: new messages but bounce "
            "notifications = client= + pickup; to sent; to deferred; to bounced or user_unknown; reject)"
        )
        ok = True
        for k in ("received", "delivered", "deferrals", "bounced", "rejected"):
            if k in pf["in_k"]:  # pflogsumm printed it in units of 1024 (its "%6d" of n/1024)
                same = theirs[k] == ours[k] // 1024
                shown, how = f"{theirs[k]:,}k", "yes (to 1024)" if same else "NO"
            else:
                same = theirs[k] == ours[k]
                shown, how = f"{theirs[k]:,}", "yes" if same else "NO"
            ok &= same or k == "rejected"
            print(f"  {k:10s} {shown:>10} {ours[k]:>10,}  {how}")
        print("  received/delivered/deferred/bounced agree" if ok else "  DISAGREEMENT (see above)")
    print(f"\nbench took {time.perf_counter() - started:.0f} s (load average now {os.getloadavg()[0]:.1f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
