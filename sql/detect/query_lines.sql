-- query_lines: a few DNS query lines of one client between $start and $end (evidence).
select
    file,
    line_no
from dns_queries
where
    day = $day and client_ip = $client_ip::varchar
    and ts >= $start::timestamptz and ts < $end::timestamptz
order by ts, file, line_no
limit 3
