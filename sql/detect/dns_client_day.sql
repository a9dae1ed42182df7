-- dns_client_day: per client that is not a mail server and asked at least $floor questions in some
-- interval of $day: its intervals heard, and its median, 95th percentile and highest queries per
-- interval (what later days' dns_client_history.sql compares a busy client with).
with per as (
    select
        client_ip,
        time_bucket($interval::interval, ts, $day_start::timestamptz) as interval_start,
        count(*) as queries
    from dns_queries
    where
        day = $day
        and client_ip is not null
        and not list_contains($mail_server_ips::varchar[], client_ip)
    group by all
)

select
    $site::varchar as site,
    client_ip,
    count(*) as intervals,
    median(queries) as median_queries,
    quantile_cont(queries, 0.95) as p95_queries,
    max(queries) as max_queries
from per
group by client_ip
having max(queries) >= $floor
order by client_ip
