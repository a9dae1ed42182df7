-- dq_by_type: the day's Dq (queries from the mail servers) split by query type. Formats without a
-- type (iplog) count under 'unknown'; so do a type-less log's rows beside a typed one's.
select
    coalesce(upper(qtype), 'unknown') as qtype,
    count(*) as dq
from dns_queries
where day = $day and list_contains($mail_server_ips::varchar[], client_ip)
group by all
order by dq desc, qtype asc
