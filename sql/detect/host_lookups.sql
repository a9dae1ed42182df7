-- host_lookups: per judged client host (the `judged` table) and bin, the MX questions it asked
-- our DNS servers itself on the local day $day (a worm with its own SMTP engine finds its
-- victims' mail exchangers so). Empty where the DNS log has no query types.
select
    d.client_ip,
    time_bucket($interval::interval, d.ts, $day_start::timestamptz) as bin,
    count(*) as mx_lookups
from dns_queries as d
inner join judged as j on d.client_ip = j.client_ip
where
    d.day = $day
    and d.qtype = 'MX'
    and not list_contains($mail_server_ips::varchar[], d.client_ip)
    and not j.split
group by all
