"""What an interval of this day should look like, so that an abnormal one stands out.

From history (the lake's trailing `baseline_days` days of the same kind, weekdays and weekends
apart): per local time of day, the median and the MAD of each count over those days, pooling
`baseline_window_bins` neighbouring bins on each side. A site with fewer than
`baseline_min_days` such days (a new site) falls back to within-day statistics: the median and
MAD of the day's own intervals. Either way the spread has a Poisson floor (sqrt of the level),
so a quiet night with a MAD of zero does not turn every extra message into a peak.

Dq has a second baseline: the model's own prediction m_s*N_from + m_p*N_pop. Its residual,
divided by sqrt(prediction) (the noise of a count grows with it), is judged against the day.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import cast

import duckdb
import polars as pl

from mmw_tasks import sql as sqlfiles
from mmw_tasks.config import Site

METRICS = ("dq", "n_from", "n_to", "n_smtp", "n_user_unknown")
MAD_SIGMA = 1.4826  # MAD of a normal distribution times this is its standard deviation


@dataclass
class Baseline:
    method: str  # "history" or "within-day"
    history_days: list[date] = field(default_factory=list)
    kind: str = "weekday"  # the kind of day compared: weekday or weekend
    frame: pl.DataFrame | None = None  # interval_start, <metric>_level, <metric>_spread, <metric>_z

    @property
    def note(self) -> str:
        if self.method == "history":
            first, last = min(self.history_days), max(self.history_days)
            return (
                f"Baselines: history. Each interval is compared with the same time of day on "
                f"{len(self.history_days)} earlier {self.kind}s ({first} to {last}; median and MAD)."
            )
        return (
            f"Baselines: within-day statistics. The lake has fewer than the required earlier "
            f"{self.kind}s for this site, so each interval is compared with the median and MAD of "
            f"this day's own intervals; detection gets sharper once history accumulates."
        )


def minute_of_day(col: str, tz: str) -> pl.Expr:
    local = pl.col(col).dt.convert_time_zone(tz)
    return local.dt.hour().cast(pl.Int32) * 60 + local.dt.minute().cast(pl.Int32)


def since(site: Site, day: date) -> date:
    return day - timedelta(days=site.thresholds.baseline_days)


def with_smtp(df: pl.DataFrame) -> pl.DataFrame:
    """N_SMTP of the papers: the from= and to= lines of an interval."""
    return df.with_columns(n_smtp=pl.col("n_from") + pl.col("n_to"))


def _spread(level: pl.Expr, mad: pl.Expr) -> pl.Expr:
    return pl.max_horizontal(MAD_SIGMA * mad, level.clip(0).sqrt(), pl.lit(1.0))


def interval_baselines(con: duckdb.DuckDBPyConnection, site: Site, day: date, iv: pl.DataFrame) -> Baseline:
    """The day's intervals with a level, a spread and a z-score for every metric."""
    th = site.thresholds
    weekend = day.weekday() >= 5
    kind = "weekend day" if weekend else "weekday"
    iv = with_smtp(iv).with_columns(minute_of_day=minute_of_day("interval_start", site.timezone))
    hist = sqlfiles.query(
        con, "detect/history_intervals", {"day": day, "since": since(site, day), "timezone": site.timezone}
    ).pl()
    hist = with_smtp(hist).filter(pl.col("weekend") == weekend)
    per_day = hist.group_by("day").len()
    full_days = sorted(per_day.filter(pl.col("len") >= 0.9 * iv.height)["day"].to_list())
    if len(full_days) >= th.baseline_min_days:
        hist = hist.filter(pl.col("day").is_in(full_days))
        step = site.interval_minutes
        w = th.baseline_window_bins
        # every history row serves the bins within w steps of its own time of day
        pooled = pl.concat(
            [hist.with_columns(minute_of_day=(pl.col("minute_of_day") + k * step) % 1440) for k in range(-w, w + 1)]
        )
        levels = pooled.group_by("minute_of_day").agg(
            *[pl.col(m).median().alias(f"{m}_level") for m in METRICS],
            *[(pl.col(m) - pl.col(m).median()).abs().median().alias(f"{m}_mad") for m in METRICS],
        )
        out = iv.join(levels, on="minute_of_day", how="left")
        base = Baseline("history", full_days, kind)
    else:
        out = iv.with_columns(
            *[pl.col(m).median().alias(f"{m}_level") for m in METRICS],
            *[(pl.col(m) - pl.col(m).median()).abs().median().alias(f"{m}_mad") for m in METRICS],
        )
        base = Baseline("within-day", [], kind)
    out = out.with_columns(
        *[
            _spread(pl.col(f"{m}_level").fill_null(0), pl.col(f"{m}_mad").fill_null(0)).alias(f"{m}_spread")
            for m in METRICS
        ]
    ).drop([f"{m}_mad" for m in METRICS])
    base.frame = out.with_columns(
        *[((pl.col(m) - pl.col(f"{m}_level").fill_null(0)) / pl.col(f"{m}_spread")).alias(f"{m}_z") for m in METRICS]
    )
    return base


def model_residuals(iv: pl.DataFrame, fit: dict) -> pl.DataFrame:
    """Dq against the model's prediction: `pred`, `resid`, and `resid_z` (robust z over the day of
    the residual divided by sqrt(pred)). Empty columns when the day has no fit."""
    if fit.get("m_s") is None:
        return iv.with_columns(
            pred=pl.lit(None, pl.Float64), resid=pl.lit(None, pl.Float64), resid_z=pl.lit(None, pl.Float64)
        )
    pred = fit["m_s"] * pl.col("n_from") + (fit.get("m_p") or 0.0) * pl.col("n_pop")
    out = iv.with_columns(pred=pred).with_columns(resid=pl.col("dq") - pl.col("pred"))
    r = pl.col("resid") / (pl.col("pred").clip(0) + 25).sqrt()
    out = out.with_columns(_r=r)
    med = cast(float, out["_r"].median())
    mad = cast(float, (out["_r"] - med).abs().median())
    return out.with_columns(resid_z=(pl.col("_r") - med) / (MAD_SIGMA * mad + 0.5)).drop("_r")


def prediction_model(con: duckdb.DuckDBPyConnection, site: Site, day: date, fit: dict) -> dict:
    """The coefficients Dq is predicted with: the median over the trailing days' fits when there
    are `baseline_min_days` of them (a day with an outbreak distorts its own fit), else the day's."""
    fits = sqlfiles.query(con, "detect/history_fits", {"day": day, "since": since(site, day)}).pl()
    if fits.height >= site.thresholds.baseline_min_days:
        return {
            "source": "history",
            "days": fits.height,
            "m_s": cast(float, fits["m_s"].median()),
            "m_p": cast(float, fits["m_p"].median() or 0.0),
        }
    return {"source": "this day's fit", "days": 0, "m_s": fit.get("m_s"), "m_p": fit.get("m_p")}


ALIGN_MARGIN = 0.05  # a lag other than 0 is reported only when it correlates this much better


def lagged_correlations(series: pl.DataFrame, keys: list[str], max_lag: int) -> pl.DataFrame:
    """Per group of `keys` in `series` (columns n, dq, ordered by time within each group): the lag in
    intervals (positive: Dq follows n) at which Dq correlates best with n, within max_lag, and r.
    Lag 0, the papers' alignment, unless another correlates ALIGN_MARGIN better; r is null where
    either series is flat."""
    out = []
    for lag in range(-max_lag, max_lag + 1):
        shifted = series.with_columns(dq_l=pl.col("dq").shift(-lag).over(keys) if keys else pl.col("dq").shift(-lag))
        shifted = shifted.drop_nulls("dq_l")
        r = pl.when((pl.len() >= 3) & (pl.col("n").std() > 0) & (pl.col("dq_l").std() > 0)).then(pl.corr("n", "dq_l"))
        agg = shifted.group_by(keys).agg(r=r) if keys else shifted.select(r=r)
        out.append(agg.with_columns(lag=pl.lit(lag)))
    every = pl.concat(out).filter(pl.col("r").is_not_null() & pl.col("r").is_not_nan())
    at_zero = every.filter(pl.col("lag") == 0).select(*keys, r0="r")
    best = every.sort(["r", "lag"], descending=[True, False])
    best = best.unique(keys, keep="first", maintain_order=True) if keys else best.head(1)
    best = (
        best.join(at_zero, on=keys, how="left", nulls_equal=True)
        if keys
        else best.with_columns(r0=at_zero["r0"][0] if at_zero.height else None)
    )
    use_zero = pl.col("r0").is_not_null() & (pl.col("r") - pl.col("r0") < ALIGN_MARGIN)
    return best.select(
        *keys,
        lag=pl.when(use_zero).then(0).otherwise(pl.col("lag")),
        r=pl.when(use_zero).then(pl.col("r0")).otherwise(pl.col("r")).round(3),
    )


def lagged_correlation(n: pl.Series, dq: pl.Series, max_lag: int) -> dict:
    """lagged_correlations for one pair of series: {"lag", "r"} (r None when there is none)."""
    got = lagged_correlations(pl.DataFrame({"n": n, "dq": dq}), [], max_lag)
    return {"lag": int(got["lag"][0]), "r": float(got["r"][0])} if got.height else {"lag": 0, "r": None}
