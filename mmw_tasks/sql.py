"""SQL lives in files under sql/: one output per file, values bound as DuckDB $parameters."""

from __future__ import annotations

import os
import re
from functools import cache
from pathlib import Path

import duckdb

SQL_DIR = Path(os.environ.get("MMW_SQL_DIR", Path(__file__).resolve().parents[1] / "sql"))
_PARAM = re.compile(r"\$([a-z_][a-z0-9_]*)")


@cache
def load(name: str) -> str:
    path = SQL_DIR / f"{name}.sql"
    if not path.is_file():
        raise FileNotFoundError(f"no SQL file {path}")
    return path.read_text()


def params_of(name: str) -> set[str]:
    """The $parameters a SQL file uses (comments stripped)."""
    text = re.sub(r"--[^\n]*", "", load(name))
    return set(_PARAM.findall(text))


def _bind(name: str, params: dict) -> dict:
    wanted = params_of(name)
    missing = wanted - params.keys()
    if missing:
        raise KeyError(f"sql/{name}.sql needs parameters {sorted(missing)}")
    return {k: params[k] for k in wanted}


def query(con: duckdb.DuckDBPyConnection, name: str, params: dict) -> duckdb.DuckDBPyRelation:
    return con.sql(load(name), params=_bind(name, params) or None)


def execute(con: duckdb.DuckDBPyConnection, name: str, params: dict) -> None:
    con.execute(load(name), _bind(name, params) or None)
