-- dns_clients: per interval, the DNS queries of every client that is not a mail server, for the
-- clients that made at least $min_queries in some interval of $day (who else is looking names
-- up), with how many of them had a query type at all (a log without types has none).
with per as (
    select
        client_ip,
        time_bucket($interval::interval, ts, $day_start::timestamptz) as interval_start,
        count(*) as queries,
        count(*) filter (where qtype = 'MX') as mx_queries,
        count(qtype) as typed,
        count(distinct qname) as names
    from dns_queries
    where
        day = $day
        and client_ip is not null
        and not list_contains($mail_server_ips::varchar[], client_ip)
    group by all
),

busy as (
    select client_ip
    from per
    group by client_ip
    having max(queries) >= $min_queries
)

select per.*
from per
inner join busy on per.client_ip = busy.client_ip
order by per.client_ip, per.interval_start
