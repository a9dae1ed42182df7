"""The site simulator: determinism, rotation on disk, truth.json against an independent recount of
the written files, the behaviour of the scenarios (klez, frethem, clean, and the quiet cases:
sleep-loop worms, four_quiet, crowd_*, the unlisted relay, remote MTAs at 3x) checked against
their truth, and the old scenarios' bytes pinned."""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import os
import re
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from mmw_tasks.simulate import SCENARIOS, simulate_site

ROOT = Path(__file__).resolve().parents[1]
TZ = ZoneInfo("Asia/Tokyo")
DAY = date(2002, 2, 15)
MX_IP = "10.1.0.25"
KEYS = ("dq", "n_from", "n_to", "n_sent", "n_deferred", "n_pop", "n_user_unknown")
MONTHS = {m: i + 1 for i, m in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split())}

# Plain regexes, written for this test (not the simulator's or the parser's code).
BSD = re.compile(r"^([A-Z][a-z]{2}) ([ \d]\d) (\d\d):(\d\d):(\d\d) (\S+) (.*)$")
ISO = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)\.\d{6}\+09:00 (\S+) (.*)$")
REPEAT = re.compile(r"^last message repeated (\d+) times$")
DQ = re.compile(
    r"^iplog\[\d+\]: UDP: dgram to domain from (?:10\.1\.0\.25|\S+ \(10\.1\.0\.25\)):\d+ "
    r"\(\d+ data bytes\)$"
)
FROM = re.compile(r"^(?:sendmail|sm-mta)\[\d+\]: (\w{14}): from=<([^>]*)>, size=(\d+), .*relay=(.*)$")
TO = re.compile(r"^(?:sendmail|sm-mta)\[\d+\]: (\w{14}): to=.*, stat=(\w+)")
UU = re.compile(r"^(?:sendmail|sm-mta)\[\d+\]: (\w{14}): <[^>]+>\.\.\. User unknown$")
POP = re.compile(r'^popper\[\d+\]: \(v[\d.]+\) POP login by user "[^"]+" at \(')
# the modern stack: BIND 9 query log, Postfix 3, Dovecot 2
DQ_BIND = re.compile(
    r"^named\[\d+\]: client @0x[0-9a-f]+ 10\.1\.0\.25#\d+ \([^)]+\): query: \S+ IN [A-Z]+ "
    r"\+\w*(?:\(0\)K)? \(10\.1\.0\.53\)$"
)
PF_FROM = re.compile(r"^postfix/qmgr\[\d+\]: ([0-9A-F]{10}): from=<[^>]*>, size=\d+, nrcpt=\d+ \(queue active\)$")
PF_TO = re.compile(
    r"^postfix/(?:smtp|local|error)\[\d+\]: [0-9A-F]{10}: to=<[^>]+>,(?: orig_to=<[^>]+>,)? "
    r"relay=\S+, delay=[\d.]+, delays=[\d./]+, dsn=\d\.\d\.\d, status=(\w+) \("
)
PF_UU = re.compile(
    r"^postfix/smtpd\[\d+\]: (?:NOQUEUE|[0-9A-F]{10}): reject: RCPT from \S+: 550 5\.1\.1 <[^>]+>: "
    r"Recipient address rejected: User unknown in local recipient table; "
)
DOVECOT = re.compile(r"^dovecot: pop3-login: Login: user=<[^>]+>, method=PLAIN, rip=[\d.]+, lip=10\.1\.0\.25, ")


def files_of(site: Path, sub: str) -> list[Path]:
    return sorted((site / "logs" / sub).iterdir())


def read_lines(path: Path) -> list[str]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt") as f:
        return f.read().splitlines()


_STAMPS: dict[str, datetime] = {}


def stamp_of(line: str) -> tuple[datetime, str, str]:
    """(local time, host, rest) of a line; BSD stamps are read for 2002 (the test's year)."""
    head = line[:15]
    ts = _STAMPS.get(head)
    if ts is not None and line[15] == " ":
        host, _, rest = line[16:].partition(" ")
        return ts, host, rest
    m = BSD.match(line)
    if m:
        mon, d, hh, mm, ss, host, rest = m.groups()
        ts = _STAMPS[head] = datetime(2002, MONTHS[mon], int(d), int(hh), int(mm), int(ss))
        return ts, host, rest
    m = ISO.match(line)
    assert m, f"unframed line: {line!r}"
    y, mo, d, hh, mm, ss, host, rest = m.groups()
    return datetime(int(y), int(mo), int(d), int(hh), int(mm), int(ss)), host, rest


def classify(rest: str, queued: set | None = None) -> str | None:
    """What a line counts as; `queued` (the queue ids seen) makes a qmgr retry's from= count nothing."""
    if rest.startswith(("named[", "postfix/", "dovecot:")):
        if DQ_BIND.match(rest):
            return "dq"
        m = PF_FROM.match(rest)
        if m:
            new = m.group(1) not in queued
            queued.add(m.group(1))
            return "n_from" if new else None
        m = PF_TO.match(rest)
        if m:
            return {"sent": "n_sent", "deferred": "n_deferred"}.get(m.group(1), "to_other")
        if PF_UU.match(rest):
            return "n_user_unknown"
        return "n_pop" if DOVECOT.match(rest) else None
    if DQ.match(rest):
        return "dq"
    if FROM.match(rest):
        return "n_from"
    m = TO.match(rest)
    if m:
        return {"Sent": "n_sent", "Deferred": "n_deferred"}.get(m.group(2), "to_other")
    if UU.match(rest):
        return "n_user_unknown"
    if POP.match(rest):
        return "n_pop"
    return None


def recount(site: Path) -> Counter:
    """(local day, 10-minute bin, key) -> count, repeat copies expanded per file."""
    c: Counter = Counter()
    queued: set = set()
    for sub in ("1dns", "1mx"):
        for path in sorted(files_of(site, sub), key=lambda p: p.stat().st_mtime):  # oldest first
            prev = None
            for line in read_lines(path):
                ts, _, rest = stamp_of(line)
                m = REPEAT.match(rest)
                n, kind = (int(m.group(1)), prev) if m else (1, classify(rest, queued))
                if not m:
                    prev = kind
                if kind:
                    b = (ts.hour * 60 + ts.minute) // 10
                    c[(ts.date().isoformat(), b, kind)] += n
                    if kind in ("n_sent", "n_deferred", "to_other"):
                        c[(ts.date().isoformat(), b, "n_to")] += n
    return c


def sim(tmp_path_factory, name: str, **kw) -> Path:
    out = tmp_path_factory.mktemp(name)
    toml = simulate_site(out, kw.pop("start", DAY), kw.pop("days", 1), **kw)
    assert toml == out / "site.toml"
    return out


@pytest.fixture(scope="module")
def klez(tmp_path_factory) -> Path:
    return sim(tmp_path_factory, "klez", scenario="klez", seed=11)


@pytest.fixture(scope="module")
def frethem(tmp_path_factory) -> Path:
    return sim(tmp_path_factory, "frethem", scenario="frethem", seed=5)


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    return sim(tmp_path_factory, "clean", scenario="clean", seed=5, scale=0.5)


def truth(site: Path) -> dict:
    return json.loads((site / "truth.json").read_text())


# -- API ---------------------------------------------------------------------------------------
def test_api_rejects_unknown_names(tmp_path):
    assert {"clean", "klez", "frethem"} <= set(SCENARIOS)
    with pytest.raises(ValueError, match="scenario"):
        simulate_site(tmp_path, DAY, 1, scenario="nimda")
    with pytest.raises(ValueError, match="style"):
        simulate_site(tmp_path, DAY, 1, style="1999")


def test_site_toml_points_at_the_files(klez):
    import tomllib

    cfg = tomllib.loads((klez / "site.toml").read_text())
    assert cfg["site"]["timezone"] == "Asia/Tokyo" and cfg["site"]["interval"] == "10m"
    dns, mail = cfg["servers"]
    assert dns["mail_server_ips"] == [MX_IP]
    assert {p.name for p in klez.glob(dns["source"])} == {p.name for p in files_of(klez, "1dns")}
    assert {p.name for p in klez.glob(mail["source"])} == {p.name for p in files_of(klez, "1mx")}


# -- determinism -------------------------------------------------------------------------------
def test_same_seed_same_bytes(tmp_path_factory):
    a = sim(tmp_path_factory, "det_a", scenario="full", seed=3, scale=0.2)
    b = tmp_path_factory.mktemp("det_b")  # another process, another str hash seed
    code = (
        "from datetime import date; from mmw_tasks.simulate import simulate_site; "
        f"simulate_site({str(b)!r}, date(2002, 2, 15), 1, scenario='full', seed=3, scale=0.2)"
    )
    env = {**os.environ, "PYTHONHASHSEED": "4321", "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=ROOT)
    c = sim(tmp_path_factory, "det_c", scenario="full", seed=4, scale=0.2)
    names = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for rel in names:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
        if rel.parts[0] == "logs":
            assert (a / rel).stat().st_mtime == (b / rel).stat().st_mtime, rel
    assert (a / "logs/1mx/syslog.0").read_bytes() != (c / "logs/1mx/syslog.0").read_bytes()


# The old scenarios' bytes, pinned: the benchmark's old site-days must stay what they were when
# scenarios are added (new features draw from streams of their own). Digests of the files'
# contents (gzip members decompressed: compressors differ between zlib builds).
OLD_SCENARIOS_DIGEST = {
    "2002": "1523f43ca811b261bac95306903cce4d0987951d27bcc659aa3af1a20221d50a",
    "modern": "e199bdbc415bf6aca62d05319081f077a7038d1d2b9b63a8b64eb32c23ea2acf",
}


def content_digest(site: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(site.rglob("*")):
        if p.is_file():
            data = p.read_bytes()
            h.update(str(p.relative_to(site)).encode() + b"\0")
            h.update(gzip.decompress(data) if p.name.endswith(".gz") else data)
    return h.hexdigest()


@pytest.mark.parametrize("style", ["2002", "modern"])
def test_old_scenarios_unchanged(tmp_path, style):
    """A holiday, then every old scenario at once (klez, quiet, smtp_engine, frethem, outage,
    dns_anomaly, bulk, heavy_list): the same bytes as before the quiet cases were added."""
    simulate_site(tmp_path, date(2002, 3, 11), 2, scenario="holiday,everything", seed=31, style=style, scale=0.1)
    assert content_digest(tmp_path) == OLD_SCENARIOS_DIGEST[style]


# -- rotation ----------------------------------------------------------------------------------
def test_rotation_layout(klez):
    dns = [p.name for p in files_of(klez, "1dns")]
    mx = [p.name for p in files_of(klez, "1mx")]
    n = len(dns)
    assert n >= 3 and set(dns) == {"messages", "messages.1"} | {f"messages.{i}.gz" for i in range(2, n)}
    assert set(mx) == {"syslog"} | {f"syslog.{i}" for i in range(len(mx) - 1)}
    for p in files_of(klez, "1dns") + files_of(klez, "1mx"):
        is_gz = p.read_bytes()[:2] == b"\x1f\x8b"
        assert is_gz == p.name.endswith(".gz"), p
        if is_gz:
            gzip.decompress(p.read_bytes())


def _oldest_first(paths: list[Path]) -> list[Path]:
    def age(p: Path) -> int:
        m = re.search(r"\.(\d+)(?:\.gz)?$", p.name)
        return -1 if m is None else int(m.group(1))

    return sorted(paths, key=age, reverse=True)


@pytest.mark.parametrize("sub,rot_hour,rot_minute", [("1dns", 4, 2), ("1mx", 3, 10)])
def test_rotation_times_and_mtimes(klez, sub, rot_hour, rot_minute):
    paths = _oldest_first(files_of(klez, sub))
    spans = []
    for i, p in enumerate(paths):
        lines = read_lines(p)
        stamps = [stamp_of(x)[0] for x in lines]
        assert stamps == sorted(stamps), f"{p.name} is not in time order"
        last = stamps[-1].replace(tzinfo=TZ).timestamp()
        assert p.stat().st_mtime == last, f"{p.name}: mtime is not its last line's time"
        if p.name.endswith(".gz"):
            assert int.from_bytes(p.read_bytes()[4:8], "little") == int(last)
        if i > 0:  # a file rotated into starts at the rotation time (04:02 / 03:10), never at midnight
            rot = stamps[0].replace(hour=rot_hour, minute=rot_minute, second=0)
            assert rot <= stamps[0] < rot + timedelta(minutes=30), p.name
            assert spans[-1][1] < rot + timedelta(seconds=10), p.name
            if sub == "1dns":
                assert lines[0].endswith(" ns syslogd 1.4.1: restart."), p.name
                assert stamps[0] < rot + timedelta(seconds=10)
        spans.append((stamps[0], stamps[-1]))
    midnight = datetime.combine(DAY, datetime.min.time())
    assert spans[0][0] <= midnight - timedelta(days=1) + timedelta(minutes=1)
    assert spans[-1][1] >= midnight + timedelta(days=1, hours=6)
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        assert end <= start and start.time() != datetime.min.time()


# -- truth --------------------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["klez", "frethem"])
def test_truth_equals_recount(which, request):
    site = request.getfixturevalue(which)
    t = truth(site)
    c = recount(site)
    assert list(t["days"]) == [DAY.isoformat()]
    for day, v in t["days"].items():
        assert len(v["intervals"]) == 144
        midnight = datetime.combine(date.fromisoformat(day), datetime.min.time(), TZ)
        for b, iv in enumerate(v["intervals"]):
            start = midnight + b * timedelta(minutes=10)
            assert iv["interval_start"] == start.isoformat()
            got = {k: c[(day, b, k)] for k in KEYS}
            assert {k: iv[k] for k in KEYS} == got, iv["interval_start"]
        assert v["totals"] == {k: sum(iv[k] for iv in v["intervals"]) for k in KEYS}


@pytest.mark.parametrize("scenario", ["klez", "frethem"])
def test_modern_style_truth_equals_recount(tmp_path_factory, scenario):
    """Postfix + Dovecot + BIND, RFC 3339 stamps, logrotate dateext + gzip: truth.json is what
    an independent reading of the files counts, with Postfix's semantics (a retry's from= is
    not a new message)."""
    site = sim(tmp_path_factory, f"modern_{scenario}", scenario=scenario, seed=2, style="modern", scale=0.3)
    mx, dns = [p.name for p in files_of(site, "1mx")], [p.name for p in files_of(site, "1dns")]
    assert set(mx) == {"mail.log", "mail.log-20020216", "mail.log-20020215.gz", "mail.log-20020214.gz"}
    assert set(dns) == {"syslog", "syslog-20020216", "syslog-20020215.gz", "syslog-20020214.gz"}
    for p in files_of(site, "1mx") + files_of(site, "1dns"):
        assert (p.read_bytes()[:2] == b"\x1f\x8b") == p.name.endswith(".gz"), p
        assert all(ISO.match(x) for x in read_lines(p)[:50]), p
    assert read_lines(site / "logs/1dns/syslog-20020216")[0].endswith("rsyslogd was HUPed")
    cfg = (site / "site.toml").read_text()
    assert 'format = "postfix"' in cfg and 'format = "bind"' in cfg
    t = truth(site)
    c = recount(site)
    for day, v in t["days"].items():
        for b, iv in enumerate(v["intervals"]):
            assert {k: iv[k] for k in KEYS} == {k: c[(day, b, k)] for k in KEYS}, iv["interval_start"]
    tot = t["days"][DAY.isoformat()]["totals"]
    assert min(tot.values()) > 0
    if scenario == "frethem":  # retries: more to= than messages, and the same message deferred again
        assert tot["n_deferred"] > 100 and tot["n_to"] > tot["n_from"]
        lines = read_lines(site / "logs/1mx/mail.log-20020216")
        froms = Counter(m.group(1) for x in lines if (m := PF_FROM.match(stamp_of(x)[2])))
        assert max(froms.values()) >= 4


def test_volumes_and_model(klez):
    """A weekday at scale 1: volumes of the papers' site, and Dq ~ mS*NS + mP*NP with mS ~ 8-9."""
    v = truth(klez)["days"][DAY.isoformat()]
    tot = v["totals"]
    worm = next(i for i in v["incidents"] if i["kind"] == "mmw_suspect")["messages"]
    assert 4000 < tot["n_from"] - worm < 6500
    assert 2800 < tot["n_pop"] < 3800
    assert tot["n_to"] >= tot["n_sent"] + tot["n_deferred"]
    quiet = [iv for iv in v["intervals"] if iv["interval_start"][11:16] < "14:20"]
    f = sum(iv["n_from"] for iv in quiet)
    p = sum(iv["n_pop"] for iv in quiet)
    dq = sum(iv["dq"] for iv in quiet)
    ms = (dq - p) / f  # with mP = 1
    assert 7 < ms < 11, ms


# -- scenarios ----------------------------------------------------------------------------------
def mail_lines(site: Path):
    for path in _oldest_first(files_of(site, "1mx")):
        for line in read_lines(path):
            ts, _, rest = stamp_of(line)
            yield ts, rest


def test_klez_user_unknown_only_inside_window(klez):
    inc = [i for i in truth(klez)["days"][DAY.isoformat()]["incidents"] if i["kind"] == "mmw_suspect"]
    assert len(inc) == 1
    ip = inc[0]["client_ip"]
    lo = datetime.combine(DAY, datetime.min.time()) + timedelta(hours=14, minutes=30)
    hi = lo + timedelta(hours=3)
    relay_of, sizes = {}, Counter()
    rows = list(mail_lines(klez))
    for ts, rest in rows:
        m = FROM.match(rest)
        if m:
            relay_of[m.group(1)] = m.group(4)
            if f"[{ip}]" in m.group(4) and m.group(3) != "0" and lo <= ts < hi:
                sizes[m.group(3)] += 1
    worm_uu = [ts for ts, rest in rows if (m := UU.match(rest)) and f"[{ip}]" in relay_of[m.group(1)]]
    assert len(worm_uu) > 300
    assert all(lo <= ts < hi for ts in worm_uu)
    ((size, n),) = sizes.most_common(1)  # one constant message size (its owner's own mail aside)
    assert n > 1000 and n > 0.97 * sum(sizes.values())
    senders = {m.group(2) for _, rest in rows if (m := FROM.match(rest)) and f"[{ip}]" in m.group(4)}
    assert len(senders) > 500  # forged, many distinct
    assert any(re.search(r"from=<[^>]*>, size=0, class=0, nrcpts=0, .*\[" + re.escape(ip) + r"\]", r) for _, r in rows)


def test_frethem_deferrals_pile_up_and_retry_every_30_minutes(frethem):
    v = truth(frethem)["days"][DAY.isoformat()]
    iv = v["intervals"]
    before, after = iv[:102], iv[102:]  # 17:00 is bin 102
    ratio = [sum(x["n_to"] for x in part) / sum(x["n_from"] for x in part) for part in (before, after)]
    assert ratio[1] > ratio[0] + 0.5, ratio
    assert sum(x["n_to"] for x in after) > sum(x["n_from"] for x in after) + 1000
    assert sum(x["n_deferred"] for x in after) > 10 * sum(x["n_deferred"] for x in before[:96])
    surge = [i for i in v["incidents"] if i["kind"] == "deferred_surge"]
    assert [i["domain"] for i in surge] == ["bigisp.ne.jp"]
    tries = defaultdict(list)
    for ts, rest in mail_lines(frethem):
        if "bigisp.ne.jp" in rest and "stat=Deferred: Connection timed out" in rest and ts.date() == DAY:
            tries[TO.match(rest).group(1)].append(ts)
    retried = [t for t in tries.values() if len(t) >= 4]
    assert len(retried) > 20
    for times in retried:
        gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:], strict=False)]
        assert gaps[0] <= 2100 and all(1600 <= g <= 2000 for g in gaps[1:]), gaps


def test_clean_has_no_infected_host(clean):
    v = truth(clean)["days"][DAY.isoformat()]
    kinds = Counter(i["kind"] for i in v["incidents"])
    assert "mmw_suspect" not in kinds and "deferred_surge" not in kinds
    assert kinds["mailing_list"] >= 2 and kinds["bulk_sender"] == 1  # the look-alikes are there
    same_size = Counter()
    for _, rest in mail_lines(clean):
        m = FROM.match(rest)
        if m and re.search(r"\[10\.1\.[23]\.\d+\]$", m.group(4)) and m.group(3) != "0":
            same_size[(m.group(4), m.group(3))] += 1
    assert max(same_size.values()) < 10
    assert v["totals"]["n_user_unknown"] < 150


# -- the quiet cases (sleep-loop worms, the unlisted relay, remote MTAs at 3x) -------------------
WORM_GAPS = (60, 90, 120, 200)
WORM_VARIANTS = {"forged": (True, 0.25), "owner": (False, 0.25), "book": (False, 0.0), "book5": (False, 0.05)}
WORMS = tuple(f"worm{g}_{v}" for g in WORM_GAPS for v in WORM_VARIANTS)
QUIET_START = date(2002, 7, 1)  # a Monday
RELAY_IP = "10.1.4.25"
RCPTS = re.compile(r"^(?:sendmail|sm-mta)\[\d+\]: (\w{14}): to=(.*?), (?:ctladdr=|delay=)")


def day_of(site: Path, k: int) -> str:
    return (QUIET_START + timedelta(days=k)).isoformat()


@pytest.fixture(scope="module")
def worms(tmp_path_factory) -> Path:
    """All sixteen sleep-loop worms, one a day, on a small 2002 site (their rates do not scale)."""
    return sim(tmp_path_factory, "worms", start=QUIET_START, days=16, scenario=",".join(WORMS), seed=21, scale=0.05)


@pytest.fixture(scope="module")
def quiet_days(tmp_path_factory) -> Path:
    """Mon clean, Tue four_quiet, Wed crowd_owner, Thu relay, Fri relay+remote3x, Sat crowd_forged."""
    cal = "clean,four_quiet,crowd_owner,relay,relay+remote3x,crowd_forged"
    return sim(tmp_path_factory, "quiet_days", start=QUIET_START, days=6, scenario=cal, seed=23, scale=0.2)


@functools.lru_cache(maxsize=4)
def mail_by_day(site: Path) -> dict:
    """Per local day: from= lines as (time, qid, sender, size, relay); recipients and refusals by qid."""
    out: dict = defaultdict(lambda: {"from": [], "rcpts": defaultdict(set), "unknown": defaultdict(set)})
    qday: dict = {}
    for ts, rest in mail_lines(site):
        m = FROM.match(rest)
        if m:
            qday[m.group(1)] = ts.date().isoformat()
            out[ts.date().isoformat()]["from"].append((ts, m.group(1), m.group(2), int(m.group(3)), m.group(4)))
            continue
        m = RCPTS.match(rest)
        if m and m.group(1) in qday:
            out[qday[m.group(1)]]["rcpts"][m.group(1)].update(re.findall(r"<([^>]+)>", m.group(2)))
            continue
        m = re.match(r"^(?:sendmail|sm-mta)\[\d+\]: (\w{14}): <([^>]+)>\.\.\. User unknown$", rest)
        if m:  # the refusals come before the from= line of their transaction
            out[ts.date().isoformat()]["unknown"][m.group(1)].add(m.group(2))
    return out


def worm_mail(day: dict, inc: dict) -> list[tuple]:
    """The from= lines of the worm's host inside its truth span (its owner's own mail may be among them)."""
    lo = datetime.fromisoformat(inc["start"]).replace(tzinfo=None)
    hi = datetime.fromisoformat(inc["end"]).replace(tzinfo=None)
    return [f for f in day["from"] if f[4].endswith(f"[{inc['client_ip']}]") and lo <= f[0] <= hi]


def test_every_worm_scenario_is_described_and_known():
    for name in (*WORMS, "four_quiet", "crowd_forged", "crowd_owner", "relay", "remote3x"):
        assert name in SCENARIOS, name
    with pytest.raises(ValueError, match="nimda"):
        simulate_site(Path("/nonexistent"), DAY, 1, scenario="relay+nimda")


@pytest.mark.parametrize("k", range(len(WORMS)))
def test_sleep_loop_worm_matches_its_truth(worms, k):
    """Each worm: one mmw_suspect on its host, from its first to its last message; its rate, its
    senders, its size and its share of made-up recipients as its scenario says."""
    name, day = WORMS[k], day_of(worms, k)
    gap, variant = int(name[4:].split("_")[0]), name.split("_")[1]
    forged, guess = WORM_VARIANTS[variant]
    v = truth(worms)["days"][day]
    assert v["scenario"] == name
    (inc,) = [i for i in v["incidents"] if i["kind"] == "mmw_suspect"]
    assert (inc["gap_s"], inc["guess_share"], inc["forged"], inc["variant"]) == (gap, guess, forged, "sleep_loop")
    mine = worm_mail(mail_by_day(worms)[day], inc)
    n = inc["messages"]
    assert n <= len(mine) <= n + 2  # its owner may mail too meanwhile, rarely at this scale
    span = (datetime.fromisoformat(inc["end"]) - datetime.fromisoformat(inc["start"])).total_seconds()
    assert 2 * 3600 - 1.2 * gap <= span <= 6 * 3600
    per_hour = 3600 * (n - 1) / span
    assert abs(per_hour - 3600 / gap) < 0.08 * 3600 / gap, (per_hour, gap)
    start = datetime.fromisoformat(inc["start"])
    assert time(8, 30) <= start.time() <= time(15, 31)
    senders = Counter(f[2] for f in mine)
    sizes = Counter(f[3] for f in mine if f[3] > 0)
    if forged:
        assert inc["sender"] is None
        assert len(senders) > 0.5 * n
        assert sum(c for s, c in senders.items() if not s.endswith("@example.ac.jp")) > 0.6 * n
        assert sizes.most_common(1)[0][1] >= sum(sizes.values()) - 2  # one constant size
    else:
        assert set(senders) == {inc["sender"]}  # the PC's user's address, the worm's and the user's own mail
        top = sizes.most_common(1)[0][0]
        assert sum(c for s, c in sizes.items() if abs(s - top) < 200) >= 0.9 * sum(sizes.values())


def test_sleep_loop_worms_made_up_recipients(worms):
    """The share of a worm's recipients refused as unknown is its guess share (pooled by
    variant: 25 %, 5 %, none), and equals its truth record."""
    days = mail_by_day(worms)
    pooled: dict = defaultdict(lambda: [0, 0])
    for k, name in enumerate(WORMS):
        day = day_of(worms, k)
        (inc,) = [i for i in truth(worms)["days"][day]["incidents"] if i["kind"] == "mmw_suspect"]
        d = days[day]
        qids = {f[1] for f in worm_mail(d, inc)}
        unknown = sum(len(d["unknown"][q]) for q in qids)
        rcpts = sum(len(d["rcpts"][q]) for q in qids) + unknown
        assert inc["user_unknown"] == unknown
        assert rcpts >= inc["recipients"]  # .forward copies aside, the recipients it asked for
        variant = name.split("_")[1]
        pooled[variant][0] += unknown
        pooled[variant][1] += rcpts
    assert pooled["book"][0] == 0
    assert 0.01 < pooled["book5"][0] / pooled["book5"][1] < 0.09
    for v in ("forged", "owner"):
        assert 0.2 < pooled[v][0] / pooled[v][1] < 0.3, (v, pooled[v])


def test_four_quiet_hosts_staggered(quiet_days):
    v = truth(quiet_days)["days"][day_of(quiet_days, 1)]
    worms_ = sorted((i for i in v["incidents"] if i["kind"] == "mmw_suspect"), key=lambda i: i["start"])
    assert len({i["client_ip"] for i in worms_}) == 4
    assert [(i["gap_s"], i["forged"]) for i in worms_] == [(90, True), (120, False), (200, True), (200, False)]
    starts = [datetime.fromisoformat(i["start"]) for i in worms_]
    assert all(b - a >= timedelta(minutes=29) for a, b in zip(starts, starts[1:], strict=False))
    d = mail_by_day(quiet_days)[day_of(quiet_days, 1)]
    for i in worms_:
        assert len(worm_mail(d, i)) >= i["messages"]


@pytest.mark.parametrize("k,forged", [(2, False), (5, True)])
def test_crowd_worm_starts_with_the_bulk_mailing_and_the_list_post(quiet_days, k, forged):
    v = truth(quiet_days)["days"][day_of(quiet_days, k)]
    (worm,) = [i for i in v["incidents"] if i["kind"] == "mmw_suspect"]
    (bulk,) = [i for i in v["incidents"] if i["kind"] == "bulk_sender" and i["sender"] != "kouhou@example.ac.jp"]
    staff = [i for i in v["incidents"] if i["kind"] == "mailing_list" and i["list"] == "staff@example.ac.jp"]
    assert len(staff) == 1 and staff[0]["recipients"] > 400
    assert (worm["gap_s"], worm["forged"]) == (90, forged)
    starts = [datetime.fromisoformat(i["start"]) for i in (bulk, staff[0], worm)]
    assert all(s.hour == 13 for s in starts), starts  # the same hour
    assert starts[0] < starts[1] and starts[0] < starts[2]
    assert datetime.fromisoformat(bulk["end"]) > starts[2]  # the bulk is still going out


def test_unlisted_relay_is_benign_busy_and_not_in_relay_hosts(quiet_days):
    import tomllib

    cfg = tomllib.loads((quiet_days / "site.toml").read_text())
    assert RELAY_IP not in cfg.get("allow", {}).get("relay_hosts", [])
    days = mail_by_day(quiet_days)
    for k in (3, 4):
        day = day_of(quiet_days, k)
        v = truth(quiet_days)["days"][day]
        (label,) = [i for i in v["incidents"] if i["kind"] == "benign_host" and i["client_ip"] == RELAY_IP]
        assert label["variant"] == "unlisted_relay"
        assert not [i for i in v["incidents"] if i["kind"] == "mmw_suspect"]
        mine = [f for f in days[day]["from"] if f[4] == f"mailhub.eng.example.ac.jp [{RELAY_IP}]"]
        assert len(mine) == label["messages"] > 70
        senders = {f[2] for f in mine}
        assert len(senders) > 40 and all(s.endswith("@example.ac.jp") for s in senders)
        assert len({f[0].hour for f in mine}) >= 14  # steady, through the day
        rcpts = set().union(*(days[day]["rcpts"][f[1]] for f in mine))
        assert len(rcpts) > 0.9 * len(mine)
    for k in (0, 1, 2, 5):  # only on its days
        day = day_of(quiet_days, k)
        assert not [f for f in days[day]["from"] if f[4].endswith(f"[{RELAY_IP}]")]


def test_remote_mtas_at_three_times(quiet_days):
    """relay+remote3x (Friday) against Thursday (relay alone): the busiest domains' servers send
    three times as much; truth labels every one of them, and plants nothing."""
    t = truth(quiet_days)["days"]
    labels = [i for i in t[day_of(quiet_days, 4)]["incidents"] if i.get("variant") == "remote_mta_3x"]
    ips = {i["client_ip"] for i in labels}
    assert {i["remote_domain"] for i in labels} == {"bigisp.ne.jp", "mobile.ne.jp", "freemail.co.jp"}
    assert len(ips) == 8  # their MX hosts: 3 + 3 + 2
    days = mail_by_day(quiet_days)

    def inbound(k: int) -> int:
        return sum(1 for f in days[day_of(quiet_days, k)]["from"] if re.search(r"\[([\d.]+)\]", f[4])[1] in ips)

    assert 2.3 < inbound(4) / inbound(3) < 3.8, (inbound(4), inbound(3))
    assert inbound(4) - inbound(3) == pytest.approx(sum(i["extra_messages"] for i in labels), rel=0.25)
    assert not [i for i in t[day_of(quiet_days, 4)]["incidents"] if i["kind"] == "mmw_suspect"]


def test_quiet_cases_truth_equals_recount(quiet_days):
    t = truth(quiet_days)
    c = recount(quiet_days)
    for day, v in t["days"].items():
        for b, iv in enumerate(v["intervals"]):
            assert {k: iv[k] for k in KEYS} == {k: c[(day, b, k)] for k in KEYS}, iv["interval_start"]


def test_quiet_cases_modern_truth_equals_recount(tmp_path_factory):
    site = sim(
        tmp_path_factory,
        "quiet_modern",
        start=QUIET_START,
        days=2,
        scenario="relay+four_quiet,relay+remote3x+worm200_book5",
        seed=29,
        style="modern",
        scale=0.15,
    )
    t = truth(site)
    c = recount(site)
    for day, v in t["days"].items():
        for b, iv in enumerate(v["intervals"]):
            assert {k: iv[k] for k in KEYS} == {k: c[(day, b, k)] for k in KEYS}, iv["interval_start"]
    day2 = t["days"][day_of(site, 1)]
    assert day2["scenario"] == "relay+remote3x+worm200_book5"
    assert Counter(i.get("variant") for i in day2["incidents"] if i["kind"] in ("mmw_suspect", "benign_host")) == {
        "sleep_loop": 1,
        "unlisted_relay": 1,
        "remote_mta_3x": 8,
    }
