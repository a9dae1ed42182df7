-- coefficient_bands: every day's fitted coefficients against their history band, from the
-- reliable fits of the $history_days days before it (never the day itself):
--   median = the median of the earlier days of the same kind (weekdays apart from weekends: a
--            Sunday's mail is not a Tuesday's, and neither are its coefficients);
--   mad    = the median absolute deviation of every earlier reliable fit from its own kind's
--            median (the two kinds pooled: twice the days, a steadier width than four Sundays');
--   lo/hi  = median -/+ greatest($band_k * 1.4826 * mad, $band_floor * |median|);
--   history_days = the earlier days of the same kind with a reliable fit;
--   drift  = a reliable day outside its band, with at least $min_history such days behind it.
-- A fit is `reliable` when none of m_s, m_p and n is negative and its R² is at least $min_r2: an
-- unreliable day is shown against its band but never alerts, and never counts in a later band.
-- One row per (day, coefficient); the daily report takes its day, the trends page all of them.
with fits as (
    select
        day,
        m_s,
        m_p,
        r2,
        q,
        n,
        case when dayofweek(day) in (0, 6) then 'weekend' else 'weekday' end as day_kind,
        coalesce(least(m_s, m_p, n) >= 0 and r2 >= $min_r2::double, false) as reliable
    from model_fits
),

long as (
    select *
    from (
        unpivot (
            select
                day,
                day_kind,
                reliable,
                m_s,
                m_p,
                r2,
                q,
                n
            from fits
        )
        on m_s, m_p, r2, q, n
        into name coefficient value value
    )
    where isfinite(value)
),

-- every day with each reliable fit of the window before it
earlier as (
    select
        d.day,
        d.coefficient,
        d.day_kind,
        h.day_kind as past_kind,
        h.value as past
    from long as d
    inner join long as h
        on
            d.coefficient = h.coefficient
            and h.reliable
            and d.day > h.day
            and d.day <= h.day + ($history_days::integer)
),

centres as (
    select
        day,
        coefficient,
        past_kind,
        median(past) as centre,
        count(*) as days
    from earlier
    group by day, coefficient, past_kind
),

spreads as (
    select
        earlier.day,
        earlier.coefficient,
        median(abs(earlier.past - centres.centre)) as mad
    from earlier
    inner join centres
        on
            earlier.day = centres.day
            and earlier.coefficient = centres.coefficient
            and earlier.past_kind = centres.past_kind
    group by earlier.day, earlier.coefficient
),

bands as (
    select
        long.day,
        long.coefficient,
        long.value,
        long.reliable,
        long.day_kind,
        centres.centre as median,
        spreads.mad,
        coalesce(centres.days, 0) as history_days,
        greatest($band_k::double * 1.4826 * spreads.mad, $band_floor::double * abs(centres.centre)) as half_width
    from long
    left join centres
        on
            long.day = centres.day
            and long.coefficient = centres.coefficient
            and long.day_kind = centres.past_kind
    left join spreads
        on
            long.day = spreads.day
            and long.coefficient = spreads.coefficient
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
        reliable
        and history_days >= $min_history
        and (value < median - half_width or value > median + half_width),
        false
    ) as drift,
    reliable,
    day_kind
from bands
order by coefficient, day
