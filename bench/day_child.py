"""One site-day, as `mmw run` does it (pipeline.run_day), in a process of its own, reporting as
it goes: one JSON line per stage start and end (with the stage's own peak RSS, sampled), then
one with the day's report. bench/day.py reads them live, so that a run stopped by its timeout
still names the stage it was in.

    python bench/day_child.py SITE.toml DAY

Run as a script (not -m) so that PYTHONPATH decides which mmw_tasks is measured.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import threading
import time

PAGE = os.sysconf("SC_PAGE_SIZE")


def emit(**kw) -> None:
    sys.stdout.write(json.dumps(kw) + "\n")
    sys.stdout.flush()


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class RssSampler(threading.Thread):
    """The process's resident set every 20 ms; `peak` is the most since the last reset."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak = self.rss()

    @staticmethod
    def rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * PAGE

    def reset(self) -> None:
        self.peak = self.rss()

    def run(self) -> None:
        while True:
            self.peak = max(self.peak, self.rss())
            time.sleep(0.02)


def main() -> None:
    config, day = sys.argv[1:3]
    sampler = RssSampler()
    sampler.start()
    w0, c0 = time.monotonic(), cpu()
    from mmw_tasks import pipeline

    emit(event="imported", wall=round(time.monotonic() - w0, 3), cpu=round(cpu() - c0, 3))

    def on_stage(name: str, rec: dict | None) -> None:
        if rec is None:
            sampler.reset()
            emit(event="start", stage=name)
        else:
            emit(event="end", stage=name, **rec, stage_peak_mb=round(max(sampler.peak, sampler.rss()) / 2**20, 1))

    out = pipeline.run_day(config, day, log=lambda m: None, on_stage=on_stage)
    rep = json.loads(open(out["report"]["report"]).read())
    emit(
        event="done",
        wall=round(time.monotonic() - w0, 3),
        cpu=round(cpu() - c0, 3),
        servers={
            s: {k: v[k] for k in ("lines_read", "parsed", "ignored", "malformed")} for s, v in out["servers"].items()
        },
        totals=rep["totals"],
        incidents=[{k: i.get(k) for k in ("kind", "client_ip", "sender", "domain")} for i in rep["incidents"]],
    )


if __name__ == "__main__":
    main()
