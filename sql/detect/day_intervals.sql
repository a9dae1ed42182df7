-- day_intervals: the intervals of $day in time order.
select *
from intervals
where day = $day
order by interval_start
