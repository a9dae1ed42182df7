"""One measurement, run as its own process so that its peak memory is its own (the parent reads
it with os.wait4): parse one server's file for the bench day into the bench lake, exactly as
`mmw run` does (ingest.parse_server_day), and print what it did as one JSON line, with the wall
and CPU seconds (resource.getrusage before and after) of the parse call itself.

    python bench/child.py SITE.toml SERVER DAY FILE
    python bench/child.py --scan FILE

Run as a script (not -m) so that PYTHONPATH decides which mmw_tasks is measured (--baseline).
"""

from __future__ import annotations

import json
import resource
import sys
import time


def cpu_seconds() -> float:
    """User + system CPU of this process so far, every thread (the parse's threads have ended
    when it returns, so their time is in)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def scan(path: str) -> None:
    """The manifest scan fetch makes of each new file (content hash, span, years of year-less
    stamps): once per file, before any parse; `mmw parse` of a file not fetched skips it."""
    from pathlib import Path

    from mmw_tasks.fetch import manifest

    t0 = time.perf_counter()
    entry, _ = manifest.scan_file(Path(path), "Asia/Tokyo")
    print(json.dumps({"seconds": time.perf_counter() - t0, "lines_read": entry.lines}))


def main() -> None:
    if sys.argv[1] == "--scan":
        return scan(sys.argv[2])
    config, server, day, path = sys.argv[1:5]
    t_import = time.perf_counter()
    from mmw_tasks import pipeline
    from mmw_tasks.config import load_site

    try:  # as in a run: into the day's new generation, switched in once the clock has stopped
        from mmw_tasks import generations
    except ImportError:  # --baseline of a commit from before generations
        generations = None  # type: ignore[assignment]
    t_imported = time.perf_counter()
    lake, gen = load_site(config).lake, None
    if generations is not None:
        gen = generations.begin(lake, day)
    t0, c0 = time.perf_counter(), cpu_seconds()
    out = (
        pipeline.parse(config, server, day, [path], generation=gen)
        if gen
        else pipeline.parse(config, server, day, [path])
    )
    t1, c1 = time.perf_counter(), cpu_seconds()
    if gen:
        generations.commit(lake, day, gen)
    print(
        json.dumps(
            {
                "seconds": t1 - t0,
                "cpu_seconds": c1 - c0,
                "import_seconds": t_imported - t_import,
                "rows": out["rows"],
                "lines_read": out["lines_read"],
                "parsed": out["parsed"],
                "ignored": out["ignored"],
                "malformed": out["malformed"],
            }
        )
    )


if __name__ == "__main__":
    main()
