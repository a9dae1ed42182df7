-- day_intervals: the intervals of $day in time order (the report's totals and its figure 1).
select *
from intervals
where day = $day
order by interval_start
