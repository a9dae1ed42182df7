"""[site].memory_limit: the budget a stage keeps to; what does not fit spills to disk (issue #18)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from mmw_tasks import lake, pipeline
from mmw_tasks.config import ConfigError, load_site
from mmw_tasks.simulate import simulate_site


def with_site_key(toml: Path, line: str) -> Path:
    text = toml.read_text()
    assert "[site]\n" in text
    toml.write_text(text.replace("[site]\n", f"[site]\n{line}\n", 1))
    return toml


@pytest.mark.parametrize(
    ("value", "expected"),
    [('"512MB"', 512 * 10**6), ('"2GiB"', 2 << 30), ('"1.5 GB"', 1_500_000_000)],
)
def test_memory_limit_reads_sizes_people_write(tmp_path, value, expected):
    toml = simulate_site(tmp_path, date(2002, 2, 16), 1, scenario="quiet", seed=1)
    assert load_site(toml).memory_limit == 1 << 30  # the default: 1 GiB
    assert load_site(with_site_key(toml, f"memory_limit = {value}")).memory_limit == expected


@pytest.mark.parametrize("value", ['"lots"', '"100MB"', "1024"])
def test_memory_limit_that_cannot_work_names_the_key(tmp_path, value):
    toml = simulate_site(tmp_path, date(2002, 2, 16), 1, scenario="quiet", seed=1)
    with_site_key(toml, f"memory_limit = {value}")
    with pytest.raises(ConfigError, match=r"\[site\].*memory_limit"):
        load_site(toml)


def test_duckdb_keeps_to_its_share_and_spills_under_the_lake(tmp_path):
    con = lake.connect(tmp_path, memory_limit=1 << 30)
    limit = con.execute("select current_setting('memory_limit')").fetchone()[0]
    spill = con.execute("select current_setting('temp_directory')").fetchone()[0]
    assert limit.endswith("MiB") and 550 <= float(limit.split()[0]) <= 650, limit  # DUCKDB_SHARE of 1 GiB
    assert Path(spill) == tmp_path / lake.SPILL_DIR and Path(spill).is_dir()


def test_a_day_under_the_smallest_budget_gives_the_same_report(tmp_path):
    """256MB (the least the config takes): DuckDB has about 150MB and spills; the day's report
    is the same as under the default budget."""
    reports = []
    for name, line in (("big", ""), ("small", 'memory_limit = "256MB"')):
        toml = simulate_site(tmp_path / name, date(2002, 2, 16), 1, scenario="klez", seed=3)
        if line:
            with_site_key(toml, line)
        out = pipeline.run_day(toml, "2002-02-16", log=lambda m: None, mail=False)
        text = Path(out["report"]["report"]).read_text().replace(str(tmp_path / name), "SITE")  # evidence paths
        report = json.loads(text)
        reports.append({k: report[k] for k in ("totals", "model", "incidents")})
    assert reports[0]["incidents"], "the klez day has incidents to compare"
    assert reports[0] == reports[1]
