-- host_past_incidents: the days before $day (from $since on) on which this client host was
-- reported as a suspected worm-infected host.
select distinct day
from incidents
where
    day >= $since and day < $day
    and kind = 'mmw_suspect'
    and client_ip = $client_ip::varchar
order by day
