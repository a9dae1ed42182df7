"""A site config is checked completely (issue #17, item 4): unknown keys anywhere are errors with
a "did you mean", addresses and networks are parsed, numbers have ranges, server names are plain
names; every error is one line, exit 2, naming the file, the line and the key."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from conftest import ROOT
from test_sql_minisite import copy_minisite

from mmw_tasks.config import ConfigError, Thresholds, load_site, site_from_dict
from mmw_tasks.config.schema import THRESHOLD_RANGES, WINDOW_MINUTES


def mmw(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mmw_tasks", *args], cwd=cwd, capture_output=True, text=True)


@pytest.fixture
def site(tmp_path) -> Path:
    return copy_minisite(tmp_path / "site")


def edit(toml: Path, old: str, new: str) -> Path:
    text = toml.read_text()
    assert old in text
    toml.write_text(text.replace(old, new, 1))
    return toml


AFTER_INTERVAL = 'interval = "10m"'
MX_FORMAT = 'format = "sendmail"'

# (what to replace, with what, the key the error must name, more it must say): each was accepted
# on main before these checks (the first two silently ignored, the next two silently wrong)
BAD = {
    "unknown [site] key": (
        AFTER_INTERVAL,
        AFTER_INTERVAL + '\non_missing_servers = "partial"',
        "on_missing_servers",
        ["[site]", "did you mean 'on_missing_server'?", ":7:"],
    ),
    "unknown [[servers]] key": (
        MX_FORMAT,
        MX_FORMAT + '\nknownhosts = "/etc/mmw/known_hosts"',
        "knownhosts",
        ["[[servers]] '1mx'", "did you mean 'known_hosts'?", ":17:"],
    ),
    "bad IP": (
        '"10.1.0.25"',
        '"10.1.0.999"',
        "mail_server_ips",
        ["[[servers]] '1dns'", "'10.1.0.999'", "not an IP address", ":12:"],
    ),
    "negative threshold": (
        AFTER_INTERVAL,
        AFTER_INTERVAL + "\n[thresholds]\nmin_share = -5",
        "min_share",
        ["[thresholds]", "greater than 0 and at most 1", "-5", ":8:"],
    ),
    "evil server name": (
        'name = "1mx"',
        'name = "../../../evil"',
        "name",
        ["[[servers]] #2", "plain name", "'../../../evil'", ":14:"],
    ),
    "unknown table": (AFTER_INTERVAL, AFTER_INTERVAL + "\n[threshold]\npeak_z = 5", "threshold", ["[thresholds]?"]),
    "unknown [thresholds] key": (
        AFTER_INTERVAL,
        AFTER_INTERVAL + "\n[thresholds]\npeak_zz = 5",
        "peak_zz",
        ["did you mean 'peak_z'?"],
    ),
    "unknown [allow] key": (
        AFTER_INTERVAL,
        AFTER_INTERVAL + '\n[allow]\nbulk_host = ["10.1.2.15"]',
        "bulk_host",
        ["did you mean 'bulk_hosts'?"],
    ),
    "bad allow-list IP": (
        AFTER_INTERVAL,
        AFTER_INTERVAL + '\n[allow]\nrelay_hosts = ["mx.example.ac.jp"]',
        "relay_hosts",
        ["not an IP address"],
    ),
    "bad network": (
        AFTER_INTERVAL,
        AFTER_INTERVAL + '\nlocal_networks = ["10.1.0.0/33"]',
        "local_networks",
        ["not a network"],
    ),
    "a share above 1": (
        AFTER_INTERVAL,
        AFTER_INTERVAL + "\n[thresholds]\nnovel_share = 1.5",
        "novel_share",
        ["0 to 1"],
    ),
    "a fraction of a count": (
        AFTER_INTERVAL,
        AFTER_INTERVAL + "\n[thresholds]\nhost_min_messages = 2.5",
        "host_min_messages",
        ["must be an integer"],
    ),
    "a bad window": (
        AFTER_INTERVAL,
        AFTER_INTERVAL + "\n[thresholds]\nwindows_minutes = [30, 0]",
        "windows_minutes",
        ["1 to 1440"],
    ),
    "ratios out of order": (
        AFTER_INTERVAL,
        AFTER_INTERVAL + "\n[thresholds]\nunknown_ratio = 0.5",
        "unknown_ratio",
        ["must not exceed 'unknown_ratio_high'"],
    ),
    "a server name with a slash": ('name = "1mx"', 'name = "mx/1"', "name", ["plain name"]),
    "a hidden server name": ('name = "1mx"', 'name = ".mx"', "name", ["plain name"]),
    "names equal but for case": ('name = "1mx"', 'name = "1DNS"', "name", ["repeats"]),
    "unknown incident kind": (
        AFTER_INTERVAL,
        AFTER_INTERVAL + '\n[notify]\nincident_kinds = ["worm"]',
        "incident_kinds",
        ["'worm'", "mmw_suspect"],
    ),
    "a mail address as a domain": ('["example.ac.jp"]', '["postmaster@example.ac.jp"]', "local_domains", ["domain"]),
    "a port out of range": (
        AFTER_INTERVAL,
        AFTER_INTERVAL + '\n[report.email]\nhost = "smtp"\nfrom = "a@b"\nto = "c@d"\nport = 70000',
        "port",
        ["[report.email]", "1 to 65535"],
    ),
    "a bad-file policy misspelt": (
        AFTER_INTERVAL,
        AFTER_INTERVAL + '\non_bad_files = "skip"',
        "on_bad_files",
        ["[site]", "did you mean 'on_bad_file'?", ":7:"],
    ),
    "an unknown bad-file policy": (
        AFTER_INTERVAL,
        AFTER_INTERVAL + '\non_bad_file = "ignore"',
        "on_bad_file",
        ["[site]", "fail, skip", "'ignore'"],
    ),
}


@pytest.mark.parametrize("case", BAD)
def test_a_bad_config_is_one_line_naming_file_line_and_key(site, case):
    old, new, key, more = BAD[case]
    edit(site, old, new)
    with pytest.raises(ConfigError) as e:
        load_site(site)
    message = str(e.value)
    assert "\n" not in message
    assert message.startswith(f"{site}:"), message
    assert f"'{key}'" in message, message
    for part in more:
        assert part in message, message


@pytest.mark.parametrize("case", ["unknown [site] key", "bad IP", "negative threshold", "evil server name"])
def test_mmw_run_exits_2_with_the_one_line(site, case):
    old, new, key, _ = BAD[case]
    edit(site, old, new)
    r = mmw("run", "--config", str(site), "--date", "2002-02-16", cwd=site.parent)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"mmw: {site}:") and f"'{key}'" in lines[0], r.stderr
    assert not (site.parent / "data_lake").exists()  # checked before anything is written


def test_an_evil_server_name_writes_nothing_outside_the_lake(tmp_path):
    """On main, name = "../../../evil" wrote a manifest and Parquet outside the lake."""
    site = edit(copy_minisite(tmp_path / "a" / "b" / "c" / "site"), 'name = "1mx"', 'name = "../../../evil"')
    before = sorted(p for p in tmp_path.rglob("*"))
    r = mmw("run", "--config", str(site), "--date", "2002-02-16", cwd=site.parent)
    assert r.returncode == 2
    assert sorted(p for p in tmp_path.rglob("*")) == before


def test_good_values_are_read_and_normalised(site):
    edit(
        site,
        AFTER_INTERVAL,
        AFTER_INTERVAL
        + '\nlocal_networks = ["10.1.2.3/16", "2001:db8::/32"]'
        + "\n[thresholds]\nwindows_minutes = [60, 30]\npeak_z = 5\nhost_min_messages = 12.0"
        + '\n[allow]\nbulk_hosts = ["2001:DB8:0:0::25"]',
    )
    s = load_site(site)
    assert s.thresholds.windows_minutes == (30, 60)
    assert s.thresholds.peak_z == 5.0 and isinstance(s.thresholds.peak_z, float)
    assert s.thresholds.host_min_messages == 12 and isinstance(s.thresholds.host_min_messages, int)
    assert s.local_networks == ("10.1.0.0/16", "2001:db8::/32")
    assert s.bulk_hosts == ("2001:db8::25",)  # as logs print it


def test_every_threshold_has_a_range_its_default_is_in_and_the_docs_show():
    docs = (ROOT / "docs" / "detection.md").read_text()
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `(\w+)` \| [^|]+ \| ([^|]+) \|", docs, re.M)}
    d = Thresholds()
    for name, r in THRESHOLD_RANGES.items():
        assert r.holds(getattr(d, name)), name
        assert rows.get(name, "").strip() == r.doc(), name
    assert set(THRESHOLD_RANGES) | {"windows_minutes"} == {f for f in d.__dataclass_fields__}
    assert all(WINDOW_MINUTES.holds(w) for w in d.windows_minutes)
    assert rows["windows_minutes"].strip() == f"each {WINDOW_MINUTES.doc()}"


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for k, v in extra.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


@pytest.mark.parametrize("doc", ["README.md", "docs/deployment.md", "docs/detection.md", "docs/sources.md"])
def test_the_config_examples_in_the_docs_use_only_known_keys(site, doc):
    """Each ```toml block of the page, over the mini site's config, loads: no example teaches a key
    that a site's config would now be refused for."""
    blocks = re.findall(r"```toml\n(.*?)```", (ROOT / doc).read_text(), re.S)
    assert blocks
    base = tomllib.loads(site.read_text())
    for block in blocks:
        site_from_dict(_merge(base, tomllib.loads(block)), site, block)
