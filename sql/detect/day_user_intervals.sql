-- day_user_intervals: N_SMTP(i) of $day by interval, sender and client host.
select *
from user_intervals
where day = $day
