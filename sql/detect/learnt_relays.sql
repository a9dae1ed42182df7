-- learnt_relays: local hosts that relayed for at least $min_senders distinct senders of our
-- domains on at least $min_days of the days from $since to the day before $day, and were never
-- suspected of a worm meanwhile (host_days: the hosts' own rows, sender null).
select client_ip
from host_days
where
    day >= $since and day < $day
    and sender is null
    and client_kind = 'local'
group by client_ip
having
    count(*) filter (where local_senders >= $min_senders) >= $min_days
    and count(*) filter (where verdict = 'mmw_suspect') = 0
order by client_ip
