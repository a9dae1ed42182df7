-- dns_client_history: for each of $clients, its usual (95th percentile) and highest per-interval
-- query count over the days before $day (from $since on), counting intervals it was heard in.
with per as (
    select
        client_ip,
        day,
        time_bucket($interval::interval, ts, $day_start::timestamptz) as interval_start,
        count(*) as queries
    from dns_queries
    where day >= $since and day < $day and list_contains($clients::varchar[], client_ip)
    group by all
)

select
    client_ip,
    count(distinct day) as days,
    quantile_cont(queries, 0.95) as p95_queries,
    max(queries) as max_queries
from per
group by client_ip
