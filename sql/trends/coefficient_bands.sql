-- coefficient_bands: every day's fitted coefficients against their history band: the median and
-- MAD of the same coefficient over the $history_days days before (never the day itself),
--   lo/hi = median -/+ greatest($band_k * 1.4826 * MAD, $band_floor * |median|),
-- `drift` when the day leaves its band and the history holds at least $min_history days.
-- One row per (day, coefficient); the daily report takes its day, the trends page all of them.
with long as (
    unpivot (
        select
            day,
            m_s,
            m_p,
            r2,
            q,
            n
        from model_fits
    )
    on m_s, m_p, r2, q, n
    into name coefficient value value
),

history as (
    select
        day,
        coefficient,
        value,
        median(value) over recent as median,
        mad(value) over recent as mad,
        count(value) over recent as history_days
    from long
    where isfinite(value)
    window recent as (
        partition by coefficient
        order by day
        range between interval ($history_days::integer) day preceding and interval 1 day preceding
    )
),

bands as (
    select
        *,
        greatest($band_k::double * 1.4826 * mad, $band_floor::double * abs(median)) as half_width
    from history
)

select
    day,
    coefficient,
    value,
    median,
    mad,
    history_days,
    median - half_width as lo,
    median + half_width as hi,
    coalesce(
        history_days >= $min_history and (value < median - half_width or value > median + half_width),
        false
    ) as drift
from bands
order by coefficient, day
