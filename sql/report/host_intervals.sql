-- host_intervals: N_SMTP(i) of the hosts in $client_ips (the day's worm suspects), per interval:
-- each host's from= and to= lines (the papers' N_SMTP) and its recipients refused as
-- "User unknown", whatever senders it used (long form: the intervals it had mail in).
select
    client_ip,
    interval_start,
    sum(n_from)::bigint as n_from,
    sum(n_to)::bigint as n_to,
    sum(n_user_unknown)::bigint as n_user_unknown
from user_intervals
where day = $day and list_contains($client_ips::varchar[], client_ip)
group by client_ip, interval_start
order by client_ip, interval_start
