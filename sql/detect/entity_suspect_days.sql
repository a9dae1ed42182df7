-- entity_suspect_days: the entities that were an mmw_suspect on some day from $since to the day
-- before $day (host_days), with those days (few rows: only suspects).
select
    client_ip,
    sender,
    list(day order by day) as suspect_days
from host_days
where day >= $since and day < $day and verdict = 'mmw_suspect'
group by client_ip, sender
order by client_ip, sender
