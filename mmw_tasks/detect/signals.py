"""The worm score: pieces of evidence, each a condition on a window's counts and a number of points.

Every judged entity is scored over every window of its day at once (features.windows: the
last 30 minutes, hour and three hours at each of its active bins, and the whole day so far), as
polars expressions on one frame. Each signal is defined once here: its condition, its points,
and the sentence that says what it means, which the report shows for the signals that fired.
docs/detection.md lists them with their thresholds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypedDict

import polars as pl

from mmw_tasks.config import Thresholds

Row = dict[str, Any]


class Evidence(TypedDict):
    """One piece of evidence as the report lists it."""

    feature: str  # the signal's name, or another fact the verdict rests on
    value: Any  # what it measured
    points: float  # what it added to the score (0 for facts that explain, < 0 for benign ones)
    says: str  # what it means, in words


@dataclass(frozen=True)
class Signal:
    name: str  # the feature it reads, as the report names it
    points: float
    when: Callable[[Thresholds], pl.Expr]  # true on the windows where it fires
    value: str  # the column the report quotes as its value
    says: Callable[[Row, Thresholds], str]  # what it means, in words


def _c(name: str) -> pl.Expr:
    return pl.col(name)


def _pct(a: float, b: float) -> str:
    return f"{a / b:.0%}" if b else "0%"


def _window(r: Row) -> str:
    m = r["window_minutes"]
    return "that day" if m == 0 else f"within {m} minutes" if m < 60 else f"within {m // 60} hour(s)"


SIGNALS: tuple[Signal, ...] = (
    Signal(
        "user_unknown",
        0.35,
        lambda th: (_c("user_unknown") >= th.min_user_unknown) & (_c("unknown_share") >= th.unknown_ratio_high),
        "user_unknown",
        lambda r, th: (
            f"{r['user_unknown']} of {r['attempts']} recipients ({_pct(r['user_unknown'], r['attempts'])}) "
            f"refused as 'User unknown' {_window(r)}: addresses made up or harvested, as worms do"
        ),
    ),
    Signal(
        "some_user_unknown",
        0.2,
        lambda th: (
            (_c("user_unknown") >= 2 * th.min_user_unknown)
            & (_c("unknown_share") >= th.unknown_ratio)
            & (_c("unknown_share") < th.unknown_ratio_high)
        ),
        "user_unknown",
        lambda r, th: (
            f"{r['user_unknown']} of {r['attempts']} recipients ({_pct(r['user_unknown'], r['attempts'])}) "
            f"refused as 'User unknown' {_window(r)}"
        ),
    ),
    Signal(
        "few_user_unknown",
        0.2,
        lambda th: (
            (_c("user_unknown") >= th.few_user_unknown)
            & (_c("user_unknown") < th.min_user_unknown)
            & (_c("unknown_share") >= th.unknown_ratio_high)
            # a program's trickle: mail in (nearly) every interval for the shortest window, never a burst
            & (_c("span_minutes") >= min(th.windows_minutes))
            & (_c("active_bins") >= th.sustained_share * _c("span_bins"))
            & (_c("peak_messages") < th.host_min_messages)
            # to addresses it never mailed in the trailing weeks
            & (_c("days_seen") >= th.baseline_min_days)
            & (_c("new_recipients") > 0)
            & (_c("novel_recipients") >= th.novel_share * _c("new_recipients"))
        ),
        "user_unknown",
        lambda r, th: (
            f"{r['user_unknown']} of {r['attempts']} recipients ({_pct(r['user_unknown'], r['attempts'])}) "
            f"refused as 'User unknown' {_window(r)}, from a machine mailing a few messages every interval to "
            "addresses it never mailed before: a worm guessing some of its addresses, caught early"
        ),
    ),
    Signal(
        "forged_senders",
        0.3,
        lambda th: (
            (_c("new_senders") >= th.forged_min_senders)
            & (_c("new_senders") >= th.forged_sender_ratio * _c("messages"))
            & (_c("new_foreign_senders") * 2 >= _c("new_senders"))
        ),
        "new_senders",
        lambda r, th: (
            f"{r['new_senders']} different sender addresses on {r['messages']} messages {_window(r)} "
            f"({r['new_foreign_senders']} of other domains): one machine does not have so many users; "
            "the senders are forged"
        ),
    ),
    Signal(
        "constant_size",
        0.1,
        lambda th: (_c("messages") >= 10) & (_c("size_repeats") >= th.constant_size_share * _c("messages")),
        "size_repeats",
        lambda r, th: (
            f"{_pct(r['size_repeats'], r['messages'])} of its {r['messages']} messages {_window(r)} were the "
            "size of an earlier one: the same message again and again"
        ),
    ),
    Signal(
        "attachment",
        0.1,
        lambda th: (
            (_c("messages") >= 10)
            & (_c("size_repeats") >= th.constant_size_share * _c("messages"))
            & (_c("large_messages") >= th.constant_size_share * _c("messages"))
        ),
        "large_messages",
        lambda r, th: (
            f"{r['large_messages']} of them at least {th.attachment_bytes // 1000} kB: one attachment, "
            "as a worm carries itself"
        ),
    ),
    Signal(
        "desktop_rate",
        0.1,
        lambda th: (_c("client_kind") == "local") & (_c("peak_messages") >= th.host_min_messages),
        "peak_messages",
        lambda r, th: (
            f"a desktop machine sent {r['peak_messages']} messages in one {r['interval_minutes']}-minute interval, "
            "faster than a person writes"
        ),
    ),
    Signal(
        "sustained",
        0.1,
        lambda th: (
            (_c("span_minutes") >= th.sustained_minutes)
            & (_c("active_bins") >= th.sustained_share * _c("span_bins"))
            & (_c("messages") >= 2 * _c("span_bins"))
        ),
        "span_minutes",
        lambda r, th: (
            f"it kept mailing for {r['span_minutes']} minutes, {r['messages']} messages in "
            f"{r['active_bins']} of {r['span_bins']} intervals: a steady machine, not a person"
        ),
    ),
    Signal(
        "steady_hours",
        0.1,
        lambda th: (
            (_c("span_minutes") >= th.steady_minutes)
            & (_c("active_bins") >= th.sustained_share * _c("span_bins"))
            & (_c("peak_messages") < 2 * th.host_min_messages)
            & (_c("messages") >= 2 * _c("span_bins"))
        ),
        "span_minutes",
        lambda r, th: (
            f"never more than {r['peak_messages']} messages in an interval, but for {r['span_minutes']} minutes on "
            "end: a program that sleeps between messages, not a person and not a mail merge"
        ),
    ),
    Signal(
        "new_behaviour",
        0.1,
        lambda th: (
            (_c("days_seen") >= th.baseline_min_days)
            & (_c("messages") >= th.host_min_messages)
            & (_c("hourly_rate") >= th.new_rate_factor * pl.max_horizontal(_c("usual_hourly"), pl.lit(1)))
        ),
        "hourly_rate",
        lambda r, th: (
            f"{r['hourly_rate']:.0f} messages an hour where in the trailing weeks it never sent more than "
            f"{r['usual_hourly']} an hour at this time of day"
        ),
    ),
    Signal(
        "novel_recipients",
        0.15,
        lambda th: (
            (_c("days_seen") >= th.baseline_min_days)
            & (_c("novel_recipients") >= th.novel_min_recipients)
            & (_c("novel_recipients") >= th.novel_share * _c("new_recipients"))
        ),
        "novel_recipients",
        lambda r, th: (
            f"{r['novel_recipients']} of its {r['new_recipients']} recipients {_window(r)} were addresses it had "
            "never mailed in the trailing weeks: an address book being emptied"
        ),
    ),
    Signal(
        "own_mx_lookups",
        0.3,
        lambda th: (_c("client_kind") == "local") & (_c("mx_lookups") >= th.mx_lookups_min),
        "mx_lookups",
        lambda r, th: (
            f"it asked our DNS server for {r['mx_lookups']} mail exchangers (MX) {_window(r)}: a desktop "
            "machine that delivers mail itself carries its own SMTP engine"
        ),
    ),
    Signal(
        "repeat_recipients",
        0.1,
        lambda th: (_c("attempts") >= 20) & (_c("attempts") >= th.repeat_ratio * _c("new_recipients").clip(1)),
        "attempts",
        lambda r, th: (
            f"{r['attempts']} recipient attempts to {r['new_recipients']} new addresses {_window(r)}: the same "
            "addresses mailed again and again"
        ),
    ),
    Signal(
        "regular",
        -0.3,
        lambda th: (_c("busy_days_at_hour") >= th.regular_min_days) & (_c("suspect_days").list.len() == 0),
        "busy_days_at_hour",
        lambda r, th: f"it sent as much at this time of day on {r['busy_days_at_hour']} earlier days: a scheduled job",
    ),
)


# What a bulk mailing never shows: refused (made-up) recipients (a couple are enough in a slow
# trickle to addresses never mailed: few_user_unknown), forged senders, its own MX
# look-ups; or else hours of slow, steady mail of one size to addresses never mailed before (the
# address book worm). A score reaches `suspect_score` as a suspect only with one of these.
HARD = ("user_unknown", "some_user_unknown", "few_user_unknown", "forged_senders", "own_mx_lookups")
ADDRESS_BOOK = ("novel_recipients", "steady_hours", "constant_size")


def score(frame: pl.DataFrame, th: Thresholds) -> pl.DataFrame:
    """`frame` with one boolean column per signal (`sig_<name>`), `score` (their points, summed
    and clipped to 0..1) and `suspect` (the score reached `suspect_score` with evidence a bulk
    mailing never shows: HARD or ADDRESS_BOOK). Windows with fewer than `min_messages` messages
    and refused sessions score 0: too little to judge."""
    judged = (_c("messages") + _c("refused_sessions")) >= th.min_messages
    fired = [(s.when(th).fill_null(False) & judged).alias(f"sig_{s.name}") for s in SIGNALS]
    out = frame.with_columns(fired)
    total = pl.sum_horizontal([pl.col(f"sig_{s.name}").cast(pl.Float64) * s.points for s in SIGNALS])
    telling = pl.any_horizontal([_c(f"sig_{n}") for n in HARD]) | pl.all_horizontal(
        [_c(f"sig_{n}") for n in ADDRESS_BOOK]
    )
    out = out.with_columns(score=total.clip(0.0, 1.0).round(3))
    return out.with_columns(suspect=(_c("score") >= th.suspect_score) & telling)


def evidence(row: Row, th: Thresholds) -> list[Evidence]:
    """The signals that fired on one scored window, as the report lists them."""
    return [
        {"feature": s.name, "value": row.get(s.value), "points": s.points, "says": s.says(row, th)}
        for s in SIGNALS
        if row.get(f"sig_{s.name}")
    ]
