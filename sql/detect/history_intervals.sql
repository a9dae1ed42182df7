-- history_intervals: the intervals of the days before $day (from $since on), each with its local
-- time of day and whether its day is a weekend: the material of the per-time-of-day baselines.
select
    day,
    interval_start,
    hour(timezone($timezone, interval_start)) * 60 + minute(timezone($timezone, interval_start)) as minute_of_day,
    dayofweek(day) in (0, 6) as weekend,
    dq,
    n_from,
    n_to,
    n_pop,
    n_deferred,
    n_user_unknown
from intervals
where day >= $since and day < $day
order by interval_start
