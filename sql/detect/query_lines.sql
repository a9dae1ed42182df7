-- query_lines: for each span of the `spans` table (client_ip, span_start, span_end), a few of
-- the client's DNS query lines within it (evidence).
with lines as (
    select
        s.client_ip,
        s.span_start,
        q.file,
        q.line_no,
        row_number() over (partition by s.client_ip, s.span_start order by q.ts, q.file, q.line_no) as n
    from dns_queries as q
    inner join spans as s on q.client_ip = s.client_ip
    where q.day = $day and q.ts >= s.span_start and q.ts < s.span_end
)

select
    client_ip,
    span_start,
    file,
    line_no,
    'query' as event
from lines
where n <= 3
order by client_ip, span_start, n
