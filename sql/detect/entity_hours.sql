-- entity_hours: per entity of the days from $since to the day before $day (host_days) and local
-- hour h (0-23): its most messages in that hour (`hour_max`) and the days on which it sent at
-- least $busy in that hour (`hour_busy_days`).
with hours as (
    select
        client_ip,
        sender,
        generate_subscripts(hourly, 1) - 1 as h,
        unnest(hourly) as n
    from host_days
    where day >= $since and day < $day
)

select
    client_ip,
    sender,
    h::integer as h,
    max(n) as hour_max,
    count(*) filter (where n >= $busy) as hour_busy_days
from hours
group by client_ip, sender, h
order by client_ip, sender, h
