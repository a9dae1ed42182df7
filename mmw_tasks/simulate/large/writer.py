"""One host's log written from sorted columns of lines: rotation, compression, file times, and
the truth tallies of what was written (as simulate/rotate.py does line by line).

A batch is a frame of `t` (seconds since the origin), `k` (what the line counts as in truth,
render.K_*), `b` (the body: "prog[pid]: message") and `r` (2002 style: a repeat written right
after the line, 1 = the same line again, n > 1 = `last message repeated n times`; 0 = none).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

from mmw_tasks.simulate.large.text import S, lit
from mmw_tasks.simulate.rotate import finish_file, segment_name

try:
    from isal import igzip
except ImportError:  # pragma: no cover
    igzip = None

ROWS = 1_000_000  # lines joined into one write
LINE_SCHEMA = {"t": pl.Float64, "k": pl.UInt8, "b": S, "r": pl.UInt8}


def lines(t, k, b, r=None) -> pl.DataFrame:
    """A batch of lines (the frame this module writes; see its docstring)."""
    t = np.asarray(t, dtype=np.float64)
    n = len(t)
    return pl.DataFrame(
        {
            "t": t,
            "k": np.broadcast_to(np.asarray(k, dtype=np.uint8), (n,)),
            "b": b if isinstance(b, pl.Series) else pl.Series([b] * n, dtype=S),
            "r": np.zeros(n, np.uint8) if r is None else np.broadcast_to(np.asarray(r, dtype=np.uint8), (n,)),
        },
        schema=LINE_SCHEMA,
    )


class HostWriter:
    def __init__(self, sim, directory: Path, host: str, scheme: str, rotations: list[float], base: str = ""):
        self.sim = sim
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.host = host
        self.scheme = scheme
        self.base = base
        self.rotations = rotations
        self.n_segments = len(rotations) + 1
        self.restart = sim.style.restart_body(host)
        self.seg = -1
        self.fh = None
        self.raw = None
        self.files: list[dict] = []
        self.prefix = f" {host} "

    def name_of(self, seg: int) -> str:
        """The file name segment `seg` has once the run is over."""
        return segment_name(self.sim, self.scheme, self.base, self.rotations, seg)

    def _open(self, rot_t: float | None) -> None:
        self._close()
        self.seg += 1
        self.path = self.dir / self.name_of(self.seg)
        self.gz = self.path.name.endswith(".gz")
        self.raw = open(self.path, "wb")  # noqa: SIM115 - closed in _close
        if self.gz:
            opener = igzip.IGzipFile if igzip else gzip.GzipFile
            self.fh = opener(filename="", mode="wb", fileobj=self.raw, mtime=0, compresslevel=1)
        else:
            self.fh = self.raw
        self.lines, self.first, self.last = 0, None, 0
        if rot_t is not None and self.restart:
            sec = int(rot_t)
            self.fh.write(f"{self.sim.stamp_one(rot_t)} {self.host} {self.restart}\n".encode())
            self.lines, self.first, self.last = 1, sec, sec

    def _close(self) -> None:
        if self.fh is None:
            return
        self.files.append(
            finish_file(self.sim, self.fh, self.raw if self.gz else None, self.path, self.lines, self.first, self.last)
        )
        self.fh = None

    def close(self) -> None:
        self._close()

    def write(self, df: pl.DataFrame) -> None:
        """Write a batch sorted by `t`; tally it into the truth counts."""
        if df.height == 0:
            return
        if self.fh is None:
            self._open(None)
        t = df["t"].to_numpy()
        sec = t.astype(np.int64)
        rep = df["r"].to_numpy()
        k = df["k"].to_numpy()
        self.sim.tally(sec, k, rep)
        lo, n = 0, len(t)
        while True:
            rot = self.rotations[self.seg] if self.seg < len(self.rotations) else float("inf")
            cut = int(np.searchsorted(t, rot, side="left"))
            if cut > lo:
                self._write_rows(df, sec, rep, lo, cut)
                lo = cut
            if lo >= n:
                return
            self._open(rot)  # lines after the rotation: a new file, syslogd's restart line first

    def _write_rows(self, df: pl.DataFrame, sec: np.ndarray, rep: np.ndarray, lo: int, hi: int) -> None:
        for a in range(lo, hi, ROWS):
            b = min(hi, a + ROWS)
            part = df.slice(a, b - a)
            head = pl.concat_str(pl.col("s"), lit(self.prefix))
            line = pl.concat_str(head, pl.col("b"), lit("\n"))
            r = pl.col("r")
            if rep[a:b].any():  # the repeat line right after its line, as syslogd writes it
                again = (
                    pl.when(r == 1)
                    .then(pl.col("b"))
                    .otherwise(pl.concat_str(lit("last message repeated "), r.cast(S), lit(" times")))
                )
                line = pl.when(r > 0).then(pl.concat_str(line, head, again, lit("\n"))).otherwise(line)
            text = part.with_columns(s=self.sim.stamps(part["t"].to_numpy())).select(line).to_series().to_arrow()
            self.fh.write(arrow_bytes(text))
            self.lines += (b - a) + int(np.count_nonzero(rep[a:b]))
            if self.first is None:
                self.first = int(sec[a])
            self.last = int(sec[b - 1])


def arrow_bytes(text: pa.Array) -> memoryview:
    """The characters of a string array, one after another, without a copy (its data buffer)."""
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    if text.type != pa.large_string():
        text = text.cast(pa.large_string())
    offsets = np.frombuffer(text.buffers()[1], dtype=np.int64)
    return memoryview(text.buffers()[2])[offsets[text.offset] : offsets[text.offset + len(text)]]
