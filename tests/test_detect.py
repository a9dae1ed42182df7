"""Detection: the classifier on hand-built cases, a hand-written day of logs through the whole job,
and the papers' phenomena on a simulated site with history."""

from __future__ import annotations

import json
import os
import random
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import polars as pl
import pytest

from mmw_tasks import lake, pipeline
from mmw_tasks.config import Thresholds
from mmw_tasks.detect import outbreak, signals
from mmw_tasks.detect.classify import Candidate, classify
from mmw_tasks.report import headline
from mmw_tasks.simulate import simulate_site

TH = Thresholds()
JST = timezone(timedelta(hours=9))


def window(**kw) -> dict:
    """One scored window as hosts.py builds it (signals.score on hosts.prepare's columns); the
    unspecified counts are those of a quiet PC with no history."""
    base = {
        "client_kind": "local",
        "window_minutes": 60,
        "interval_minutes": 10,
        "messages": 0,
        "refused_sessions": 0,
        "attempts": 0,
        "user_unknown": 0,
        "new_senders": 1,
        "new_foreign_senders": 0,
        "size_repeats": 0,
        "large_messages": 0,
        "new_recipients": 0,
        "novel_recipients": 0,
        "mx_lookups": 0,
        "peak_messages": 0,
        "active_bins": 1,
        "span_minutes": 10,
        "days_seen": 0,
        "usual_hourly": None,
        "busy_days_at_hour": None,
        "suspect_days": [],
    }
    row = base | kw
    row["span_bins"] = row["span_minutes"] // 10
    row["unknown_share"] = row["user_unknown"] / max(row["attempts"], 1)
    row["hourly_rate"] = row["messages"] * 60.0 / max(row["span_minutes"], 60)
    frame = pl.DataFrame(
        [row],
        schema_overrides={"usual_hourly": pl.Int64, "busy_days_at_hour": pl.Int64, "suspect_days": pl.List(pl.Date)},
    )
    return signals.score(frame, TH).row(0, named=True)


def candidate(**kw) -> Candidate:
    """What an entity did over its span (entity_evidence.sql); a quiet PC unless told otherwise."""
    base: Candidate = {
        "client_ip": "10.1.3.9",
        "sender": None,
        "client_kind": "local",
        "messages": 0,
        "refused_sessions": 0,
        "distinct_senders": 1,
        "sample_senders": ["tanaka@example.ac.jp"],
        "recipients_attempted": 0,
        "distinct_recipients": 0,
        "user_unknown": 0,
        "bursts": 1,
        "allow": None,
    }
    return base | kw  # type: ignore[return-value]


def fired(w: dict) -> set[str]:
    return {s.name for s in signals.SIGNALS if w[f"sig_{s.name}"]}


# -- the score and the verdict on hand-built windows ---------------------------------------------
def test_a_list_post_is_a_mailing_list_even_with_stale_members():
    post = candidate(
        client_ip="127.0.0.1",
        client_kind="localhost",
        sender="lab-ml-owner@example.ac.jp",
        sample_senders=["lab-ml-owner@example.ac.jp"],
        messages=1,
        recipients_attempted=420,
        distinct_recipients=420,
        user_unknown=12,
    )
    w = window(client_kind="localhost", messages=1, attempts=420, user_unknown=12, new_recipients=420)
    v = classify(post, w, TH)
    assert v.kind == "mailing_list" and v.score < TH.suspect_score
    assert "list" in v.why
    # an alias expanded by the server: one message from a PC to many recipients is a list too
    alias = candidate(messages=1, recipients_attempted=300, distinct_recipients=300, user_unknown=9)
    assert classify(alias, window(messages=1, attempts=300, user_unknown=9), TH).kind == "mailing_list"


def test_a_colleagues_bulk_mailing_is_benign():
    """700 one-by-one messages of one size from her own address, fast, a few stale addresses, to
    people she never mailed: everything but what a worm alone does."""
    bulk = window(
        window_minutes=0,
        messages=700,
        attempts=702,
        user_unknown=28,
        size_repeats=699,
        large_messages=700,
        new_recipients=700,
        novel_recipients=690,
        peak_messages=105,
        active_bins=8,
        span_minutes=80,
        days_seen=20,
        usual_hourly=2,
    )
    assert bulk["score"] >= TH.suspect_score and not bulk["suspect"]  # many signs, none telling
    assert fired(bulk) == {
        "constant_size",
        "attachment",
        "desktop_rate",
        "sustained",
        "new_behaviour",
        "novel_recipients",
    }
    v = classify(candidate(messages=700, recipients_attempted=702, distinct_recipients=700, user_unknown=28), bulk, TH)
    assert v.kind == "bulk_sender"
    assert "28 of 702" in v.why and "bulk mailing" in v.why


def test_a_forged_sender_worm_is_a_suspect_with_its_evidence():
    klez = window(
        window_minutes=0,
        messages=513,
        new_senders=382,
        new_foreign_senders=380,
        attempts=557,
        new_recipients=274,
        user_unknown=132,
        size_repeats=510,
        large_messages=513,
        peak_messages=44,
        active_bins=15,
        span_minutes=150,
    )
    assert klez["suspect"] and klez["score"] == 1.0
    v = classify(candidate(messages=513, distinct_senders=382, recipients_attempted=557, user_unknown=132), klez, TH)
    assert v.kind == "mmw_suspect"
    said = {e["feature"]: e for e in v.evidence}
    assert said["forged_senders"]["points"] > 0 and "forged" in said["forged_senders"]["says"]
    assert "132 of 557" in said["user_unknown"]["says"]
    assert said["repeat_recipients"]["value"] == 557


def test_a_slow_worm_with_its_owners_address_is_caught_in_half_an_hour():
    """One message every 100 s for half an hour, the owner's own address, a quarter refused."""
    slow = window(
        window_minutes=30,
        messages=18,
        attempts=22,
        user_unknown=6,
        new_recipients=20,
        size_repeats=17,
        large_messages=18,
        peak_messages=6,
        active_bins=3,
        span_minutes=30,
    )
    assert slow["suspect"]
    assert "forged_senders" not in fired(slow)  # caught without forged senders
    assert classify(candidate(messages=18, recipients_attempted=22, user_unknown=6), slow, TH).kind == "mmw_suspect"


def test_a_slow_guessing_worm_whose_third_refusal_comes_late_is_flagged_within_half_an_hour():
    """One message every 120 s from its owner's address, a quarter of the recipients made up, on
    a PC with history: by chance only 2 of its first 16 recipients were refused in the 23 minutes
    before the window closed (quiet-2002, 5 July), and another's first 13 recipients drew 4
    refusals in 8 messages (11 July). Both used to wait for a third refusal, or for 15
    recipients never mailed, and were flagged 43 and 32 minutes after onset."""
    trickle = dict(
        window_minutes=30,
        messages=10,
        refused_sessions=2,
        attempts=16,
        user_unknown=2,
        size_repeats=9,
        large_messages=10,
        new_recipients=15,
        novel_recipients=15,
        peak_messages=5,
        active_bins=3,
        span_minutes=30,
        days_seen=4,
        usual_hourly=1,
    )
    slow = window(**trickle)
    assert slow["suspect"] and "few_user_unknown" in fired(slow) and "user_unknown" not in fired(slow)
    said = {e["feature"]: e for e in signals.evidence(slow, TH)}
    assert "2 of 16" in said["few_user_unknown"]["says"]
    v = classify(candidate(messages=10, refused_sessions=2, recipients_attempted=16, user_unknown=2), slow, TH)
    assert v.kind == "mmw_suspect"
    # two refusals alone say little: not from a burst, nor to its usual correspondents, nor
    # without history, nor in one interval
    assert not window(**(trickle | {"peak_messages": 10})).get("sig_few_user_unknown")
    assert not window(**(trickle | {"novel_recipients": 5}))["suspect"]
    assert not window(**(trickle | {"days_seen": 0}))["suspect"]
    assert not window(**(trickle | {"active_bins": 1, "span_minutes": 10, "peak_messages": 9}))["suspect"]
    # four refusals among thirteen addresses it never mailed, in eight messages
    few = window(
        window_minutes=30,
        messages=8,
        refused_sessions=3,
        attempts=13,
        user_unknown=4,
        size_repeats=7,
        large_messages=8,
        new_recipients=13,
        novel_recipients=13,
        peak_messages=4,
        active_bins=3,
        span_minutes=30,
        days_seen=9,
        usual_hourly=1,
    )
    assert few["suspect"] and {"user_unknown", "novel_recipients"} <= fired(few)


def test_an_address_book_worm_needs_hours_of_slow_steady_mail_to_addresses_never_mailed():
    """Its owner's address, no made-up recipients: only its pace, its size and its recipients
    tell it from a bulk mailing, and only once it has kept at it for hours."""
    hours = dict(
        messages=110,
        attempts=115,
        new_recipients=110,
        novel_recipients=104,
        size_repeats=109,
        large_messages=110,
        peak_messages=7,
        days_seen=14,
        usual_hourly=2,
        window_minutes=180,
    )
    book = window(active_bins=17, span_minutes=170, **hours)
    assert book["suspect"] and {"steady_hours", "novel_recipients", "constant_size"} <= fired(book)
    early = window(
        active_bins=6,
        span_minutes=60,
        **(
            hours
            | {
                "messages": 40,
                "new_recipients": 40,
                "novel_recipients": 38,
                "size_repeats": 39,
                "large_messages": 40,
                "attempts": 42,
            }
        ),
    )
    assert not early["suspect"]  # an hour of it could still be someone's mailing
    known = window(active_bins=17, span_minutes=170, **(hours | {"novel_recipients": 10}))
    assert not known["suspect"]  # its usual correspondents: not an address book being emptied


def test_the_same_slow_burst_from_outside_or_on_the_allow_list_is_not_a_suspect():
    w = window(
        messages=120,
        attempts=130,
        new_recipients=70,
        user_unknown=30,
        size_repeats=119,
        peak_messages=30,
        active_bins=4,
        span_minutes=40,
    )
    c = candidate(messages=120, recipients_attempted=130, distinct_recipients=70, user_unknown=30)
    assert w["suspect"] and classify(c, w, TH).kind == "mmw_suspect"
    remote = classify(c | {"client_ip": "198.51.100.7", "client_kind": "unknown"}, w, TH)
    assert remote.kind == "bulk_sender" and "nothing to unplug" in remote.why
    allowed = classify(c | {"allow": "bulk_sender"}, w, TH)
    assert allowed.kind == "bulk_sender" and allowed.score == 0.0


def test_a_regular_schedule_lowers_the_score():
    kw = dict(
        messages=250,
        attempts=250,
        new_recipients=250,
        user_unknown=6,
        peak_messages=70,
        active_bins=4,
        span_minutes=40,
        days_seen=10,
        usual_hourly=250,
    )
    once, nightly = window(**kw), window(busy_days_at_hour=6, **kw)
    assert nightly["score"] < once["score"] and "regular" in fired(nightly)
    v = classify(candidate(messages=250, recipients_attempted=250, user_unknown=6), nightly, TH)
    assert v.kind == "bulk_sender" and any(e["feature"] == "regular" and "scheduled" in e["says"] for e in v.evidence)
    # not for a machine already suspected on an earlier day: a worm's daily round is no schedule
    again = window(busy_days_at_hour=6, suspect_days=[date(2002, 2, 15)], **kw)
    assert "regular" not in fired(again)


def test_thresholds_move_the_verdict():
    kw = dict(
        window_minutes=30,
        messages=49,
        attempts=55,
        new_recipients=50,
        user_unknown=8,
        size_repeats=49,
        peak_messages=25,
        active_bins=2,
        span_minutes=20,
    )
    assert window(**kw)["suspect"]
    frame = pl.DataFrame([window(**kw)]).drop([c for c in window(**kw) if c.startswith("sig_")] + ["score", "suspect"])
    strict = signals.score(frame, Thresholds(unknown_ratio_high=0.5, unknown_ratio=0.3)).row(0, named=True)
    assert not strict["suspect"]


def test_too_little_mail_is_not_judged():
    tiny = window(messages=3, attempts=4, user_unknown=4)
    assert tiny["score"] == 0 and not fired(tiny)


def test_a_domain_that_stops_taking_mail_is_flagged_before_the_days_deferrals_add_up():
    """outbreak._first_flag on one domain's intervals: (deferrals in the interval, distinct messages
    deferred and deliveries made in the 30 minutes up to its end)."""
    ten = timedelta(minutes=10)
    t0, never = datetime(2002, 2, 16, 17, 0, tzinfo=UTC), datetime(2002, 2, 17, tzinfo=UTC)

    def flag(rows: list[tuple[int, int, int]]):
        starts = [t0 + i * ten for i in range(len(rows))]
        mine = pl.DataFrame({"interval_start": starts, "n_deferred": [r[0] for r in rows]})
        onset = pl.DataFrame(
            {"interval_start": starts, "deferred_messages": [r[1] for r in rows], "delivered": [r[2] for r in rows]}
        )
        return outbreak._first_flag(mine, onset, TH, ten, never)

    # two more messages refused every ten minutes, nothing delivered: 4 distinct in the second interval
    assert flag([(2, 2, 0), (2, 4, 0), (2, 6, 0)] + [(2, 6, 0)] * 9) == t0 + 2 * ten
    # three messages refused, then the domain takes mail again: below the early rule
    assert flag([(1, 1, 0), (1, 2, 0), (1, 3, 0)] + [(0, 3, 1)] * 9) == never
    # one stale mailbox retried all day is one message: only the day's 30 deferrals flag it
    assert flag([(1, 1, 0)] * 40) == t0 + 30 * ten
    # deliveries still getting through: not a domain that refuses us
    assert flag([(2, 6, 1)] * 12) == never


# -- a hand-written day through the whole job ---------------------------------------------------
DAY = date(2002, 2, 16)
MX = "10.1.0.25"


class LogWriter:
    """Sendmail and iplog lines of one day, written in time order."""

    def __init__(self):
        self.mx: list[tuple[datetime, str]] = []
        self.ns: list[tuple[datetime, str]] = []
        self.n = 0

    def dns(self, t: datetime, k: int) -> None:
        for i in range(k):
            self.ns.append(
                (
                    t - timedelta(seconds=1),
                    f"iplog[312]: UDP: dgram to domain from {MX}:{1024 + i} (38 data bytes)",
                )
            )

    def message(
        self,
        t: datetime,
        ip: str,
        host: str,
        sender: str,
        size: int,
        rcpts: list[str],
        unknown: list[str] = (),
    ) -> None:
        self.n += 1
        qid = f"g1G{self.n:06d}ab{self.n % 9999:04d}"
        for u in unknown:
            self.mx.append((t, f"sendmail[{self.n}]: {qid}: <{u}>... User unknown"))
        self.mx.append(
            (
                t,
                f"sendmail[{self.n}]: {qid}: from=<{sender}>, size={size if rcpts else 0}, class=0, "
                f"nrcpts={len(rcpts)}, proto=SMTP, daemon=MTA, relay={host} [{ip}]",
            )
        )
        self.dns(t, 2)
        for r in rcpts:
            local = r.endswith("@example.ac.jp")
            relay = "" if local else f", relay=mx.{r.split('@')[1]}. [198.18.0.1]"
            self.mx.append(
                (
                    t + timedelta(seconds=1),
                    f"sendmail[{self.n + 1}]: {qid}: to=<{r}>, delay=00:00:01, "
                    f"xdelay=00:00:01, mailer={'local' if local else 'esmtp'}, "
                    f"pri=30000{relay}, dsn=2.0.0, stat=Sent",
                )
            )
            if not local:
                self.dns(t + timedelta(seconds=1), 4)

    def write(self, root: Path) -> None:
        for sub, name, host, rows in (("1mx", "syslog", "mx", self.mx), ("1dns", "messages", "ns", self.ns)):
            (root / "logs" / sub).mkdir(parents=True, exist_ok=True)
            path = root / "logs" / sub / name
            rows.sort(key=lambda r: r[0])
            path.write_text("".join(f"{t:%b %d %H:%M:%S} {host} {body}\n" for t, body in rows))
            end = datetime(2002, 2, 17, 0, 0, 30, tzinfo=JST).timestamp()
            os.utime(path, (end, end))


@pytest.fixture(scope="module")
def handmade(tmp_path_factory) -> dict:
    rng = random.Random(1)
    w = LogWriter()
    at = lambda h, m, s=0: datetime(2002, 2, 16, h, m, s, tzinfo=JST)  # noqa: E731
    remote = [f"user{i}@remote{i % 40}.co.jp" for i in range(400)]
    local = [f"staff{i}@example.ac.jp" for i in range(100)]
    for _ in range(300):  # ordinary mail, 08:00-20:00, one PC per user
        t = at(8, 0) + timedelta(seconds=rng.randrange(12 * 3600))
        u = rng.randrange(60)
        w.message(
            t,
            f"10.1.2.{30 + u}",
            f"pc2{30 + u:03d}.example.ac.jp",
            f"staff{u}@example.ac.jp",
            2000 + rng.randrange(20000),
            [rng.choice(remote + local)],
        )
    for i in range(110):  # a slow worm, the owner's address: 10:00-10:37, a quarter of its recipients made up
        t = at(10, 0) + timedelta(seconds=20 * i + rng.randrange(5))
        rcpt = rng.choice(remote[:40])
        unknown = (
            [f"{rng.choice(['sato', 'kato', 'ito'])}{rng.randrange(100, 999)}@example.ac.jp"]
            if rng.random() < 0.3
            else []
        )
        w.message(
            t,
            "10.1.3.9",
            "pc9.example.ac.jp",
            "tanaka@example.ac.jp",
            31337 + 2 * len(rcpt),
            [rcpt] if not unknown or rng.random() < 0.3 else [],
            unknown,
        )
    for i in range(300):  # a forged-sender worm: 14:00-14:25, every 5 s
        t = at(14, 0) + timedelta(seconds=5 * i)
        unknown = [f"guess{rng.randrange(10000)}@example.ac.jp"] if rng.random() < 0.4 else []
        w.message(
            t,
            "10.1.3.10",
            "pc10.example.ac.jp",
            f"{rng.choice(remote)}",
            134651,
            [] if unknown else [rng.choice(remote[:80])],
            unknown,
        )
    for i in range(150):  # a colleague's announcement: each address once, a few stale
        t = at(16, 0) + timedelta(seconds=8 * i)
        stale = i % 50 == 7
        w.message(
            t,
            "10.1.2.20",
            "pc2020.example.ac.jp",
            "sugimoto@example.ac.jp",
            48213 + i % 7,
            [] if stale else [remote[i + 100]],
            [f"old{i}@example.ac.jp"] if stale else [],
        )
    for h in (12, 18):  # two posts re-injected by the list server
        w.message(
            at(h, 5),
            "127.0.0.1",
            "localhost",
            "lab-ml-owner@example.ac.jp",
            4000,
            local[:60] + remote[200:230],
            ["gone1@example.ac.jp"],
        )
    root = tmp_path_factory.mktemp("handmade")
    w.write(root)
    (root / "site.toml").write_text(
        '[site]\nname = "hand"\ntimezone = "Asia/Tokyo"\nlake = "data_lake"\n'
        'local_domains = ["example.ac.jp"]\n'
        'interval = "10m"\n[[servers]]\nname = "1dns"\nrole = "dns"\nformat = "iplog"\n'
        'source = "logs/1dns/messages*"\nmail_server_ips = ["10.1.0.25"]\n[[servers]]\nname = "1mx"\n'
        'role = "mail"\nformat = "sendmail"\nsource = "logs/1mx/syslog*"\n'
    )
    pipeline.run_day(root / "site.toml", DAY, log=lambda m: None)
    rep = json.loads((root / "data_lake/reports/day=2002-02-16/report.json").read_text())
    return {
        "root": root,
        "rep": rep,
        "by_ip": {i["client_ip"]: i for i in rep["incidents"] if i["client_ip"]},
    }


def test_handmade_day_names_both_worms_and_leaves_the_look_alikes(handmade):
    by_ip = handmade["by_ip"]
    kinds = {ip: i["kind"] for ip, i in by_ip.items()}
    assert kinds["10.1.3.9"] == "mmw_suspect" and kinds["10.1.3.10"] == "mmw_suspect"
    assert kinds["10.1.2.20"] == "bulk_sender" and kinds["127.0.0.1"] == "mailing_list"
    # most severe first (contract section 5): the forger (score 1.0), then the slow worm (0.75)
    suspects = [i for i in handmade["rep"]["incidents"] if i["kind"] == "mmw_suspect"]
    assert [i["client_ip"] for i in suspects] == ["10.1.3.10", "10.1.3.9"]
    assert suspects == headline.ordered(suspects)
    slow, forged = by_ip["10.1.3.9"], by_ip["10.1.3.10"]
    assert slow["sender"] == "tanaka@example.ac.jp" and forged["sender"] is None  # a forger has no one name
    assert forged["evidence"]["distinct_senders"] > 100
    # sendmail logs a transaction whose every recipient was refused as from= ... nrcpts=0 with the
    # client's relay=: such sessions count against the host (all_rejected), their refusals too
    assert 90 <= forged["evidence"]["all_rejected"] <= 150 and forged["evidence"]["user_unknown"] > 80
    assert forged["evidence"]["messages"] + forged["evidence"]["all_rejected"] == 300


def test_handmade_first_flag_is_within_twenty_minutes(handmade):
    for ip, onset in (
        ("10.1.3.9", datetime(2002, 2, 16, 10, 0, tzinfo=JST)),
        ("10.1.3.10", datetime(2002, 2, 16, 14, 0, tzinfo=JST)),
    ):
        flagged = datetime.fromisoformat(handmade["by_ip"][ip]["evidence"]["first_flagged"])
        assert timedelta(0) < flagged - onset <= timedelta(minutes=20), ip


def test_handmade_evidence_lines_are_the_lines_in_the_file(handmade):
    inc = handmade["by_ip"]["10.1.3.10"]
    assert inc["lines"]
    for ln in inc["lines"]:
        text = Path(ln["file"]).read_text().splitlines()[ln["line_no"] - 1]
        assert ln["text"] == text
        assert "10.1.3.10" in text or "User unknown" in text


def test_handmade_report_says_which_baseline(handmade):
    notes = handmade["rep"]["notes"]
    assert any("within-day" in n for n in notes)


# -- the papers' phenomena on a simulated site with history ---------------------------------------
@pytest.fixture(scope="module")
def history_site(tmp_path_factory) -> Path:
    """Three clean weekdays, then one day with everything at once (small scale)."""
    out = tmp_path_factory.mktemp("history")
    toml = simulate_site(out, date(2002, 2, 4), 4, scenario="clean,clean,clean,everything", seed=21, scale=0.3)
    for i in range(4):
        pipeline.run_day(toml, date(2002, 2, 4) + timedelta(days=i), log=lambda m: None)
    return toml


def _day(toml: Path, d: str) -> tuple[dict, dict]:
    truth = json.loads((toml.parent / "truth.json").read_text())["days"][d]
    rep = json.loads((toml.parent / f"data_lake/reports/day={d}/report.json").read_text())
    return truth, rep


def test_clean_days_raise_no_alarm(history_site):
    for d in ("2002-02-04", "2002-02-05", "2002-02-06"):
        _, rep = _day(history_site, d)
        alarms = [i for i in rep["incidents"] if i["kind"] in ("mmw_suspect", "deferred_surge", "dns_anomaly")]
        assert alarms == [], d
        assert {i["kind"] for i in rep["incidents"]} <= {"mailing_list", "bulk_sender"}


def test_history_replaces_within_day_statistics_once_there_is_enough(history_site):
    assert "within-day" in _day(history_site, "2002-02-04")[1]["notes"][0]
    assert "history" in _day(history_site, "2002-02-07")[1]["notes"][0]
    assert "3 earlier weekdays" in _day(history_site, "2002-02-07")[1]["notes"][0]


def test_everything_at_once_every_host_and_domain_named(history_site):
    truth, rep = _day(history_site, "2002-02-07")
    planted = {
        (t["kind"], t.get("domain") or t.get("client_ip"))
        for t in truth["incidents"]
        if t["kind"] in ("mmw_suspect", "deferred_surge", "dns_anomaly")
    }
    found = {
        (i["kind"], i.get("domain") or i["client_ip"])
        for i in rep["incidents"]
        if i["kind"] in ("mmw_suspect", "deferred_surge", "dns_anomaly")
    }
    assert found == planted
    bulk = {t["client_ip"] for t in truth["incidents"] if t["kind"] == "bulk_sender"}
    assert {i["client_ip"] for i in rep["incidents"] if i["kind"] == "bulk_sender"} == bulk


def test_papers_figure_1_dq_peak_lines_up_with_the_worms_n_smtp(history_site):
    truth, rep = _day(history_site, "2002-02-07")
    klez = next(t["client_ip"] for t in truth["incidents"] if t["kind"] == "mmw_suspect" and not t.get("variant"))
    inc = next(i for i in rep["incidents"] if i["client_ip"] == klez)
    align = inc["evidence"]["dq_alignment"]
    assert abs(align["lag"]) <= 1 and align["r"] > 0.3 and align["dq_excess"] > 0
    # the abnormal intervals of the outbreak decompose onto the infected host
    con = lake.connect(history_site.parent / "data_lake")
    peaks = json.loads(con.sql("select peaks from detect_runs where day = '2002-02-07'").fetchone()[0])
    tops = {p["hosts"][0]["client_ip"] for p in peaks if p["hosts"]}
    assert klez in tops


def test_papers_frethem_deferrals_retry_every_30_minutes_and_do_not_drive_the_residual(history_site):
    truth, rep = _day(history_site, "2002-02-07")
    surge = next(i for i in rep["incidents"] if i["kind"] == "deferred_surge" and i["domain"] == "bigisp.ne.jp")
    ev = surge["evidence"]
    assert 25 <= ev["retry_cadence"]["median_gap_minutes"] <= 35
    assert ev["n_to_per_n_from"] > ev["n_to_per_n_from_elsewhere"]  # N_to outgrows N_from
    assert ev["residual_vs_deferred"]["r2_sd"] < 0.2
    assert ev["usual_daily_deferrals"] is not None and ev["deferred"] > 5 * ev["usual_daily_deferrals"]
    assert all("bigisp.ne.jp" in ln["text"] and "Deferred" in ln["text"] for ln in surge["lines"])
    # flagged once several messages were refused, long before the day's deferrals added up
    onset = next(
        datetime.fromisoformat(t["start"])
        for t in truth["incidents"]
        if t["kind"] == "deferred_surge" and t["domain"] == "bigisp.ne.jp"
    )
    assert datetime.fromisoformat(ev["first_flagged"]) - onset <= timedelta(minutes=40)


def test_dns_anomalies_of_the_mail_server_and_of_a_worms_own_smtp_engine(history_site):
    truth, rep = _day(history_site, "2002-02-07")
    dns = {i["evidence"]["source"]: i for i in rep["incidents"] if i["kind"] == "dns_anomaly"}
    server, client = dns["mail_server"], dns["client"]
    assert server["client_ip"] == "10.1.0.25"
    assert datetime.fromisoformat(server["start"]).astimezone(JST).strftime("%H:%M") in ("01:00", "01:10")
    engine = next(t for t in truth["incidents"] if t.get("variant") == "smtp_engine")
    assert client["client_ip"] == engine["client_ip"]
    assert client["evidence"]["messages_through_our_server"] == 0


def test_lagged_correlation_says_which_series_follows():
    from mmw_tasks.detect.baseline import lagged_correlation, lagged_correlations

    burst = pl.Series([0.0, 0, 5, 9, 3, 0, 0, 0, 0, 0])
    later = pl.Series([0.0, 0, 0, 0, 5, 9, 3, 0, 0, 0])
    assert lagged_correlation(burst, later, 3) == {"lag": 2, "r": 1.0}  # Dq two intervals after N_SMTP
    assert lagged_correlation(later, burst, 3) == {"lag": -2, "r": 1.0}
    assert lagged_correlation(burst, pl.Series([1.0] * 10), 3)["r"] is None  # a flat Dq says nothing
    # per entity at once, the same answers
    two = pl.DataFrame({"k": ["a"] * 10 + ["b"] * 10, "n": pl.concat([burst, later]), "dq": pl.concat([later, burst])})
    got = dict(lagged_correlations(two, ["k"], 3).select("k", "lag").iter_rows())
    assert got == {"a": 2, "b": -2}


def test_a_busy_local_relay_is_benign_and_the_verdict_says_how_to_name_it():
    """A departmental hub relaying for our own users: many senders, all of our domain, none made
    up: not forged senders, and the verdict suggests relay_hosts."""
    hub = window(
        window_minutes=180,
        messages=37,
        attempts=60,
        new_recipients=55,
        new_senders=23,
        new_foreign_senders=0,
        peak_messages=7,
        active_bins=16,
        span_minutes=180,
    )
    assert "forged_senders" not in fired(hub) and not hub["suspect"]
    v = classify(candidate(client_ip="10.1.4.25", messages=37, distinct_senders=55, recipients_attempted=60), hub, TH)
    assert v.kind == "bulk_sender" and "relay_hosts" in v.why
