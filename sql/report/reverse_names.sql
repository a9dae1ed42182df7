-- reverse_names: the name sendmail logged for each client host of the day (relay=name [ip]),
-- the most frequent one when a host was logged under several.
select
    client_ip,
    mode(relay_host) as reverse_name
from mail_events
where
    day = $day
    and event = 'from'
    and list_contains($client_ips::varchar[], client_ip)
    and relay_host is not null
group by client_ip
