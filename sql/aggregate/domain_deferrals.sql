-- domain_deferrals: delivery outcomes per bin and destination domain (one row per recipient).
select
    $site::varchar as site,
    time_bucket($interval::interval, ts, $day_start::timestamptz) as interval_start,
    recipient_domain,
    count(*) as n_to,
    count(*) filter (where status = 'sent') as n_sent,
    count(*) filter (where status = 'deferred') as n_deferred,
    count(*) filter (where status = 'bounced') as n_bounced,
    count(distinct queue_id) filter (where status = 'deferred') as n_deferred_messages
from mail_events
where day = $day and event = 'to'
group by all
order by interval_start asc, n_deferred desc, recipient_domain asc nulls last
