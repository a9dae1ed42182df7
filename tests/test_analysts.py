"""Every ```sql block of docs/analysts.md runs on the six-week simulated lake, through `mmw sql`'s
views and through the catalog file, both read-only as `mmw sql` opens them, and answers with at
least one row."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from conftest import ROOT

from mmw_tasks import readonly
from mmw_tasks.config import load_site

DOC = ROOT / "docs" / "analysts.md"


def documented_queries() -> list[tuple[str, str]]:
    """(heading, sql) for every sql block, in order."""
    out, heading = [], ""
    for part in re.split(r"^(## .*)$", DOC.read_text(), flags=re.M):
        if part.startswith("## "):
            heading = part[3:].strip()
            continue
        out += [(heading, q) for q in re.findall(r"```sql\n(.*?)```", part, re.S)]
    return out


QUERIES = documented_queries()


def test_the_page_has_a_dozen_questions():
    assert len({h for h, _ in QUERIES}) >= 12


@pytest.fixture(scope="module")
def views(six_weeks):
    return readonly.connect(load_site(six_weeks).lake)


@pytest.fixture(scope="module")
def catalog(six_weeks):
    con = readonly.open_catalog(load_site(six_weeks).lake)
    yield con
    con.close()


@pytest.mark.parametrize(
    ("heading", "query"), QUERIES, ids=[f"{h.split('.')[0]}-{k}" for k, (h, _) in enumerate(QUERIES)]
)
def test_documented_query_answers(views, catalog, heading, query):
    assert readonly.check(query) == [query.strip()]
    rows = views.sql(query).fetchall()
    assert rows, f"'{heading}' returned nothing on a lake with planted outbreaks"
    assert catalog.sql(query).fetchall() == rows


def test_a_documented_query_through_mmw_sql(six_weeks):
    heading, query = next((h, q) for h, q in QUERIES if "User unknown" in h)
    r = subprocess.run(
        [sys.executable, "-m", "mmw_tasks", "sql", "--config", str(six_weeks), "--format", "csv", query],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    header, first = r.stdout.splitlines()[:2]
    assert header == "host_or_sender,user_unknown,messages,days" and int(first.split(",")[1]) > 0
