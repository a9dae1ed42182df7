"""The lake: Hive-partitioned Parquet, one directory per (dataset, day), files replaced atomically.

Layout: <lake>/<dataset>/day=YYYY-MM-DD/<part>.parquet. Per-server datasets write one part per
server (`1mx.parquet`), site-wide ones `part-0.parquet`. Every write goes to a temporary file in
the same directory and is moved into place with os.replace, so a re-run replaces, never appends,
and a reader never sees half a file. A day's partitions are written under a new generation of
the day and switched in together (generations.py): inside generations.writing(), partition_dir
and part_path name the generation's files, and connect() reads that day from them.
"""

from __future__ import annotations

import logging
import os
import queue
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TypeVar

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from polars import CompatLevel

from mmw_tasks import generations
from mmw_tasks import sql as sqlfiles

log = logging.getLogger("mmw")
T = TypeVar("T")

Schema = dict[str, pl.DataType | type[pl.DataType]]  # a dataset's columns and their types, in order

# The views every lake offers analysts (contract section 4), plus the supporting datasets.
VIEWS = (
    "mail_events",
    "dns_queries",
    "line_accounting",
    "malformed_lines",
    "intervals",
    "user_intervals",
    "domain_deferrals",
    "model_fits",
    "incidents",
    "daily_trends",
    "weekly_trends",
    "monthly_trends",
    "detect_runs",
    "host_days",
    "address_book",
    "dns_client_days",
)
# Roll-ups are partitioned by period, not day: <lake>/weekly_trends/week=2002-W07/part-0.parquet.
ROLLUPS = {"weekly_trends": "week", "monthly_trends": "month"}
# Views that exist without files, empty (sql/views/<name>_none.sql): a site with no DNS server
# still offers dns_queries (contract section 4), and every query over it runs and counts nothing.
STAND_INS = ("dns_queries",)
CATALOG = "mmw.duckdb"  # <lake>/mmw.duckdb: the views for any DuckDB client, refreshed by each commit


def partition_dir(lake: Path, dataset: str, day: date | str) -> Path:
    """Where the day's partition of `dataset` is written: in the generation being written, if
    the day has one (generations.writing), else the public path."""
    g = generations.active(lake, day)
    if g is not None:
        return g.partition_dir(dataset)
    return Path(lake) / dataset / f"day={day}"


def part_path(lake: Path, dataset: str, day: date | str, part: str = "part-0") -> Path:
    return partition_dir(lake, dataset, day) / f"{part}.parquet"


def rollup_path(lake: Path, dataset: str, period: str) -> Path:
    """<lake>/<dataset>/<week|month>=<period>/part-0.parquet"""
    return Path(lake) / dataset / f"{ROLLUPS[dataset]}={period}" / "part-0.parquet"


def _tmp_for(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return generations.temp_path(path)


@contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success move it into place, else remove it. (A
    killed writer leaves the temporary file; generations.sweep_temps removes it later.)"""
    tmp = _tmp_for(path)
    try:
        yield tmp
        generations.checkpoint(f"write {'/'.join(path.parts[-3:])}")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_frame(df: pl.DataFrame, path: Path) -> Path:
    with atomic_file(path) as tmp:
        df.write_parquet(tmp, compression="zstd", statistics=True)
    return path


class StreamingPart:
    """A Parquet part written batch by batch (bounded memory), moved into place on close.

    Batches are written as given, not sorted (data_lake/README.md, "Row order"): converted to Arrow
    and written by a background thread, so that the next batch's parsing overlaps this one's
    writing (polars and pyarrow release the GIL). At most `depth` batches wait (one: a second
    raised the peak memory of a 5M-line sendmail parse by 55 MB and its speed by nothing); an
    error in the writer is raised by the next write() or by close().
    """

    def __init__(
        self,
        path: Path,
        schema: Schema,
        depth: int = 1,
        dictionary: list[str] | None = None,
        constants: tuple[str, ...] = (),
    ):
        self.path = path
        self._ctx = atomic_file(path)
        self._tmp = self._ctx.__enter__()
        self._schema = schema
        # `constants`: columns of one value per batch (server, file), given to write() and
        # handed to Parquet as a dictionary of that one value (no column of copies to build)
        self._constants = constants
        # Arrow's string views are what polars holds: converting to them copies no text (large
        # strings would copy every value); the file stores plain Parquet strings either way
        views = (
            pl.DataFrame(schema={c: t for c, t in schema.items() if c not in constants})
            .to_arrow(compat_level=CompatLevel.newest())
            .schema
        )
        self._views_schema = views
        self._arrow_schema = pa.schema(
            [pa.field(c, pa.dictionary(pa.int32(), pa.string())) if c in constants else views.field(c) for c in schema]
        )
        # min/max statistics for times and numbers only (the filters that can skip row groups);
        # those of every text column cost a fifth of the writing and prune nothing
        stats = [c for c in schema if c in views.names and not pa.types.is_string_view(views.field(c).type)]
        # `dictionary`: the columns worth dictionary-encoding (default all; for a column of mostly
        # distinct values, such as DNS names, the dictionary costs time and saves no space)
        self._writer = pq.ParquetWriter(
            self._tmp,
            self._arrow_schema,
            compression="zstd",
            write_statistics=stats,
            store_schema=False,
            use_dictionary=True if dictionary is None else dictionary,
        )
        self.rows = 0
        self._q: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="mmw-parquet-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is None:
                return
            if self._error is not None:
                continue  # drain after a failure
            df, constants = item
            try:
                arrow = df.select(self._views_schema.names).to_arrow(compat_level=CompatLevel.newest())
                arrow = arrow.cast(self._views_schema)
                one = pa.array(np.zeros(arrow.num_rows, dtype=np.int32))
                columns = [
                    pa.DictionaryArray.from_arrays(one, pa.array([constants[f.name]], pa.string()))
                    if f.name in self._constants
                    else arrow.column(f.name)
                    for f in self._arrow_schema
                ]
                self._writer.write_table(pa.Table.from_arrays(columns, schema=self._arrow_schema))
                generations.checkpoint(f"batch {'/'.join(self.path.parts[-3:])}")
            except BaseException as e:  # re-raised in the producer
                self._error = e

    def write(self, df: pl.DataFrame, **constants) -> None:
        """Queue a batch; `constants` gives the value of each of the part's constant columns."""
        if self._error is not None:
            raise self._error
        if set(constants) != set(self._constants):
            raise ValueError(f"constants {sorted(constants)} given for {sorted(self._constants)}")
        if df.height:
            self._q.put((df, constants))
            self.rows += df.height

    def close(self, ok: bool = True) -> None:
        self._q.put(None)
        self._thread.join()
        self._writer.close()
        if ok and self._error is not None:
            ok = False
        if ok:
            self._ctx.__exit__(None, None, None)
        else:
            self._ctx.__exit__(RuntimeError, RuntimeError("aborted"), None)
        if self._error is not None:
            raise self._error


def beyond_budget(con: duckdb.DuckDBPyConnection, what: str, run: Callable[[], T]) -> T:
    """run(); when DuckDB runs out of its share of [site].memory_limit all the same (an operator
    that cannot spill: at 40M lines a day the join of to= lines to their from= did), lift the
    limit on `con`, say so in one warning, and run it again: a day is never lost to the budget."""
    try:
        return run()
    except duckdb.OutOfMemoryException:
        row = con.execute("select current_setting('memory_limit')").fetchone()
        log.warning(
            "%s needed more memory than DuckDB's share of [site].memory_limit (%s): run again without it",
            what,
            row[0] if row else "?",
        )
        con.execute("SET memory_limit = ?", [f"{_unbudgeted() >> 20}MB"])
        return run()


def _unbudgeted() -> int:
    """What DuckDB takes without a limit: 80% of the machine's memory, in bytes."""
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * 0.8)


def copy_query(con: duckdb.DuckDBPyConnection, name: str, params: dict, path: Path) -> int:
    """Run sql/<name>.sql with bound parameters and write its result to `path` atomically."""
    table = beyond_budget(con, f"sql/{name}.sql", lambda: sqlfiles.query(con, name, params).to_arrow_table())
    with atomic_file(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return table.num_rows


def drop_server_parts(lake: Path, day: date | str, server: str) -> list[Path]:
    """Remove one server's parts of one day from every dataset (a day reported without that server):
    from the generation being written, if the day has one."""
    g = generations.active(lake, day)
    gone = sorted((g.root if g else Path(lake)).glob(f"*/day={day}/{server}.parquet"))
    for p in gone:
        p.unlink()
    return gone


def has_files(lake: Path, dataset: str) -> bool:
    """The dataset has a file for some day (a link counts when it leads to one); while a day is
    written (generations.writing), its new generation counts too."""
    dirs = [Path(lake) / dataset]
    g = generations.active(lake)
    if g is not None:
        dirs.append(g.root / dataset)
    return any(p.exists() for d in dirs if d.is_dir() for p in d.glob("*=*/*.parquet"))


# DuckDB's share of a stage's [site].memory_limit; the rest is for the polars frames of detect
# and the report, Arrow buffers and Python itself (docs/speed.md, "Memory budget").
DUCKDB_SHARE = 0.6
SPILL_DIR = ".spill"  # under the lake: where DuckDB spills what does not fit its share


def connect(lake: Path, database: str = ":memory:", memory_limit: int | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the lake's views (those datasets that have files yet). While a day
    is written (generations.writing), the views read that day from its new generation and every
    other day from the lake (sql/views/_lake_dataset_overlay.sql). With `memory_limit` (bytes,
    the stage's budget) DuckDB keeps to DUCKDB_SHARE of it and spills larger sorts, joins and
    aggregates to <lake>/.spill instead of growing."""
    config: dict[str, str | bool | int | float | list[str]] = {}
    if memory_limit:
        spill = Path(lake) / SPILL_DIR
        spill.mkdir(parents=True, exist_ok=True)
        config = {"memory_limit": f"{int(memory_limit * DUCKDB_SHARE) >> 20}MB", "temp_directory": str(spill)}
    con = duckdb.connect(database, config=config)
    con.execute("SET VARIABLE mmw_lake = ?", [str(Path(lake).resolve())])
    con.execute("SET TimeZone = 'UTC'")
    sqlfiles.execute(con, "views/_mmw_lake", {})
    _lake_macros(con)
    g = generations.active(lake)
    if g is not None:
        con.execute("SET VARIABLE mmw_read_root = ?", [str(g.read_root)])
        con.execute("SET VARIABLE mmw_new_day = ?", [date.fromisoformat(g.day)])
        sqlfiles.execute(con, "views/_lake_dataset_overlay", {})
    return refresh_views(con, lake)


def _lake_macros(con: duckdb.DuckDBPyConnection) -> None:
    """lake_dataset() and lake_rollup(): every view reads its files through them, below mmw_lake()."""
    sqlfiles.execute(con, "views/_lake_dataset", {})
    sqlfiles.execute(con, "views/_lake_rollup", {})


def _view_names(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {r[0] for r in sqlfiles.query(con, "lake/view_names", {}).fetchall()}


def refresh_views(con: duckdb.DuckDBPyConnection, lake: Path) -> duckdb.DuckDBPyConnection:
    """(Re)create the view of every dataset that has files now (and the STAND_INS of those without)."""
    for view in VIEWS:
        if has_files(lake, view):
            sqlfiles.execute(con, f"views/{view}", {})
        elif view in STAND_INS:
            sqlfiles.execute(con, f"views/{view}_none", {})
    return _macros(con, lake)


def _macros(con: duckdb.DuckDBPyConnection, lake: Path) -> duckdb.DuckDBPyConnection:
    """Table macros over the views (a macro's query is bound when it is made: after its views)."""
    if has_files(lake, "mail_events"):
        sqlfiles.execute(con, "views/_mail_attributed", {})
    if has_files(lake, "daily_trends"):
        sqlfiles.execute(con, "views/_trends_rollup", {})
    return con


def empty_table(schema: dict[str, pl.DataType]) -> pa.Table:
    return pl.DataFrame(schema=schema).to_arrow()


def sql_string(text: str) -> str:
    """A SQL string literal (quotes doubled). Only for DDL, which takes no bound parameters."""
    return "'" + text.replace("'", "''") + "'"


def ensure_views(con: duckdb.DuckDBPyConnection, lake: Path) -> duckdb.DuckDBPyConnection:
    """Create the views of datasets that got their first files since `con` was made. (A view's glob
    is expanded at each query, so existing views already see new partitions.)"""
    have = _view_names(con)
    for view in VIEWS:
        if (view not in have or view in STAND_INS) and has_files(lake, view):
            sqlfiles.execute(con, f"views/{view}", {})
        elif view not in have and view in STAND_INS:
            sqlfiles.execute(con, f"views/{view}_none", {})
    return _macros(con, lake)


def catalog_is_current(lake: Path) -> bool:
    """The catalog exists, points at this lake and has a view for every dataset with files."""
    lake = Path(lake).resolve()
    path = lake / CATALOG
    if not path.is_file():
        return False
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error:
        return False  # unreadable or locked by a writer: rebuild
    try:
        where = (sqlfiles.query(con, "lake/lake_root", {}).fetchone() or (None,))[0]
        have = _view_names(con)
    except duckdb.Error:
        return False
    finally:
        con.close()
    return where == str(lake) and {v for v in VIEWS if has_files(lake, v)} <= have


def write_catalog(lake: Path) -> Path:
    """<lake>/mmw.duckdb: a DuckDB database holding the lake's views, for any DuckDB client.

    A view on read_parquet with a relative path would resolve against the client's working
    directory, and a session variable is not stored in a database file; so where a session defines
    mmw_lake() from its variable (sql/views/_mmw_lake.sql), the catalog defines it as the lake's
    absolute path, and the same SQL files then make the views. Rebuilt whole and moved into place
    atomically (an analyst's open copy keeps working); if the lake moves, the next run's commit
    rewrites it.
    """
    lake = Path(lake).resolve()
    path = lake / CATALOG
    with atomic_file(path) as tmp:
        con = duckdb.connect(str(tmp))
        try:
            # DDL cannot take a bound parameter: the one literal, quoted, and read back
            con.execute(f"create or replace macro mmw_lake() as {sql_string(str(lake))}")
            stored = (sqlfiles.query(con, "lake/lake_root", {}).fetchone() or (None,))[0]
            if stored != str(lake):
                raise ValueError(f"the catalog stored the lake as {stored!r}, not {str(lake)!r}")
            _lake_macros(con)
            refresh_views(con, lake)
            con.execute("checkpoint")
        finally:
            con.close()
        for leftover in tmp.parent.glob(tmp.name + ".wal"):
            leftover.unlink()
    return path


# The day-so-far area of partial runs (mmw_tasks/intraday.py, data_lake/README.md): a lake of its
# own per day, which no view of this lake reads. Not "day=D": DuckDB's Hive partitioning would
# take that `day` for every file below it.
PARTIAL = "partial"


def partial_dir(lake: Path, day: date | str) -> Path:
    """<lake>/partial/YYYY-MM-DD: the day's partial runs' area."""
    return Path(lake) / PARTIAL / str(day)


def discard_partial(lake: Path, day: date | str) -> bool:
    """Remove the day's partial area (the daily run does, once the day is in the lake)."""
    d = partial_dir(lake, day)
    if not d.exists():
        return False
    shutil.rmtree(d)
    if d.parent.is_dir() and not any(d.parent.iterdir()):
        d.parent.rmdir()
    return True
