"""Read raw log lines back by file and line number (the lines behind an incident).

Files are streamed in batches (compressed or not, as mmw_tasks.parse.logfiles reads them) only as far as
the last wanted line, so a report costs one partial pass over each file it cites.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import polars as pl

from mmw_tasks.parse.logfiles import LogFileError, iter_line_batches

MAX_LINE_CHARS = 2000  # a report shows lines, not megabyte-long garbage


def read_lines(wanted: list[tuple[str, int]]) -> dict[tuple[str, int], str | None]:
    """{(file, line_no): text}; None for a line whose file is gone or too short now."""
    by_file: dict[str, set[int]] = defaultdict(set)
    for file, line_no in wanted:
        by_file[file].add(int(line_no))
    out: dict[tuple[str, int], str | None] = {(f, int(n)): None for f, n in wanted}
    for file, numbers in by_file.items():
        path = Path(file)
        if not path.is_file():
            continue
        last = max(numbers)
        want = pl.Series("n", sorted(numbers), dtype=pl.Int64)
        try:
            for first_no, lines in iter_line_batches(path):
                end_no = first_no + len(lines)
                idx = want.filter((want >= first_no) & (want < end_no))
                if len(idx):
                    picked = lines.gather((idx - first_no).to_list()).str.slice(0, MAX_LINE_CHARS)
                    out.update({(file, n): t for n, t in zip(idx.to_list(), picked.to_list(), strict=True)})
                if end_no > last:
                    break
        except (LogFileError, OSError):
            continue  # the report says the line could not be read back; it must not fail for that
    return out
