-- host_history: one host's (or one sender's) per-interval activity on the days before $day
-- (from $since on), each interval with its local time of day: a regular schedule shows here.
select
    day,
    hour(timezone($timezone, interval_start)) * 60 + minute(timezone($timezone, interval_start)) as minute_of_day,
    sum(n_from) as n_from,
    sum(n_recipients) as n_recipients
from user_intervals
where
    day >= $since and day < $day
    and client_ip is not distinct from $client_ip::varchar
    and ($sender::varchar is null or sender = $sender::varchar)
group by all
order by day, minute_of_day
