-- reverse_names: the name sendmail logged for each client host of the day (relay=name [ip]),
-- the most frequent one when a host was logged under several (a tie: the earliest logged).
select
    client_ip,
    mode(relay_host order by ts, file, line_no) as reverse_name
from mail_events
where
    day = $day
    and event = 'from'
    and list_contains($client_ips::varchar[], client_ip)
    and relay_host is not null
group by client_ip
