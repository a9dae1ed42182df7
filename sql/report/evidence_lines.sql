-- evidence_lines: where to find the raw lines behind an incident that detection gave none:
-- deferred deliveries to $domain (a deferred_surge), else the mail servers' DNS queries between
-- $start and $end (a dns_anomaly). File and line number; the report reads the text back.
(
    select distinct  -- a deferred list of recipients is one line
        file,
        line_no,
        'to' as event,
        ts
    from mail_events
    where
        day = $day
        and $domain::varchar is not null
        and event = 'to'
        and status = 'deferred'
        and recipient_domain = $domain::varchar
        and ts >= $start::timestamptz
        and ts < $end::timestamptz
    order by ts, file, line_no
    limit $limit
)
union all
(
    select
        file,
        line_no,
        'dns_query' as event,
        ts
    from dns_queries
    where
        day = $day
        and $domain::varchar is null
        and list_contains($mail_server_ips::varchar[], client_ip)
        and ts >= $start::timestamptz
        and ts < $end::timestamptz
    order by ts, file, line_no
    limit $limit
)
order by ts, file, line_no
