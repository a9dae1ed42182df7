-- entity_history: per entity (client host, or host and sender) of the days from $since to the day
-- before $day (host_days): the days it was seen, its most messages in one bin and in one day, per
-- local hour of the day its most messages in that hour (`hour_max`) and the days on which it
-- sent at least $busy in that hour (`hour_busy_days`), and the days it was a suspect.
with days as (
    select *
    from host_days
    where day >= $since and day < $day
),

hours as (
    select
        client_ip,
        sender,
        generate_subscripts(hourly, 1) as h,
        unnest(hourly) as n
    from days
),

by_hour as (
    select
        client_ip,
        sender,
        h,
        max(n) as n_max,
        count(*) filter (where n >= $busy) as n_busy
    from hours
    group by client_ip, sender, h
),

per_hour as (
    select
        client_ip,
        sender,
        list(n_max order by h) as hour_max,
        list(n_busy order by h) as hour_busy_days
    from by_hour
    group by client_ip, sender
),

per_entity as (
    select
        client_ip,
        sender,
        count(*) as days_seen,
        max(peak_messages) as hist_peak_messages,
        max(messages) as hist_day_messages,
        coalesce(list(day order by day) filter (where verdict = 'mmw_suspect'), []) as suspect_days
    from days
    group by client_ip, sender
)

select
    e.*,
    h.hour_max,
    h.hour_busy_days
from per_entity as e
left join per_hour as h
    on e.client_ip = h.client_ip and e.sender is not distinct from h.sender
order by e.client_ip, e.sender
