"""What analysts get from `mmw sql`: the lake's views, read-only (contract section 2).

A connection handed to an analyst's SQL can neither write, delete, attach, install nor read
outside the lake. Two locks, each enough for most of it:

- The statements: only queries run (SELECT, and the forms DuckDB turns into one: FROM, SHOW,
  DESCRIBE, SUMMARIZE, PRAGMA show_tables; EXPLAIN of a query). COPY, EXPORT, ATTACH, CREATE,
  DROP, INSERT, SET, INSTALL, LOAD, CALL ... are refused before anything runs. This is what keeps
  a query from overwriting the lake's own files, which the next lock must let it read.
- DuckDB's settings, locked (`lock_configuration`) so no statement can change them back: no file
  outside the lake can be opened (`enable_external_access = false` with the lake as the one
  `allowed_directories` entry), no extension installed or loaded by itself
  (`autoinstall_known_extensions`, `autoload_known_extensions`).

The catalog file <lake>/mmw.duckdb, when mmw opens it for an analyst (`mmw sql --catalog`), gets
the same locks and is opened read-only besides. `mmw sql --unsafe` is a plain connection.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb

from mmw_tasks import lake

ALLOWED = (duckdb.StatementType.SELECT,)
_EXPLAIN = re.compile(r"^\s*explain(\s+analyze)?\s+", re.I)


class ReadOnlyError(ValueError):
    """A statement that `mmw sql` does not run without --unsafe; the message says which and why."""


def check(query: str) -> list[str]:
    """The statements of `query`, each a query; else ReadOnlyError naming the first that is not.
    A syntax error is a duckdb.ParserException, as DuckDB words it."""
    out = []
    for st in duckdb.extract_statements(query):
        kind, text = st.type, st.query.strip()
        if kind == duckdb.StatementType.EXPLAIN:  # EXPLAIN ANALYZE runs what it explains
            inner = duckdb.extract_statements(_EXPLAIN.sub("", text, count=1))
            kind = inner[0].type if len(inner) == 1 else kind
        if kind not in ALLOWED:
            word = text.split()[0].upper() if text else kind.name
            raise ReadOnlyError(
                f"sql is read-only: {word} is not run, only queries (SELECT, FROM, SHOW, DESCRIBE, "
                "SUMMARIZE, EXPLAIN); --unsafe lifts this"
            )
        out.append(text)
    return out


def lock(con: duckdb.DuckDBPyConnection, root: Path) -> duckdb.DuckDBPyConnection:
    """Restrict `con` to reading files under `root`, for good."""
    where = str(Path(root).resolve()).rstrip("/") + "/"
    con.execute("SET allowed_directories = ?", [[where]])
    con.execute("SET enable_external_access = false")
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET autoload_known_extensions = false")
    con.execute("SET lock_configuration = true")
    return con


def connect(root: Path) -> duckdb.DuckDBPyConnection:
    """The lake's views in a fresh in-memory database, locked (what `mmw sql` runs on)."""
    return lock(lake.connect(root), root)


def open_catalog(root: Path) -> duckdb.DuckDBPyConnection:
    """The catalog file <lake>/mmw.duckdb, read-only and locked (`mmw sql --catalog`)."""
    path = Path(root) / lake.CATALOG
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no catalog yet (the trends stage of a run writes it)")
    return lock(duckdb.connect(str(path), read_only=True), root)
