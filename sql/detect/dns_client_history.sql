-- dns_client_history: for each of $clients, on the days before $day (from $since on) that it asked
-- enough to be kept (dns_client_days): the days, and its usual (the highest daily 95th
-- percentile) and highest per-interval query count.
select
    client_ip,
    count(*) as days,
    max(p95_queries) as p95_queries,
    max(max_queries) as max_queries
from dns_client_days
where day >= $since and day < $day and list_contains($clients::varchar[], client_ip)
group by client_ip
order by client_ip
