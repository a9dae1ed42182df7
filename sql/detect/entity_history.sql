-- entity_history: per entity (client host, or host and sender) of the days from $since to the day
-- before $day (host_days): the days it was seen, its most messages in one bin and in one day.
-- Plain aggregates only, so the query spills under [site].memory_limit; what it did per hour of
-- the day is entity_hours.sql, the days it was a suspect entity_suspect_days.sql.
select
    client_ip,
    sender,
    count(*) as days_seen,
    max(peak_messages) as hist_peak_messages,
    max(messages) as hist_day_messages
from host_days
where day >= $since and day < $day
group by client_ip, sender
order by client_ip, sender
