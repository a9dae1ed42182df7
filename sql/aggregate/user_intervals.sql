-- user_intervals: N_SMTP(i) of the papers, per bin and per (sender, client host).
-- Each line counts for the sender and host of its message (views/_mail_attributed.sql).
-- Distinct recipients and domains are counted by grouping in steps (line -> recipient -> domain
-- -> bin), not with count(distinct): plain aggregates spill to disk under [site].memory_limit.
with attributed as (
    select
        time_bucket($interval::interval, ts, $day_start::timestamptz) as interval_start,
        msg_sender as sender,
        host_ip as client_ip,
        event,
        rcpt_index,
        status,
        recipient,
        recipient_domain,
        size
    from mail_attributed($day::date)
),

per_recipient as (
    select
        interval_start,
        sender,
        client_ip,
        recipient_domain,
        recipient,
        count(*) filter (where event = 'from') as n_from,
        count(*) filter (where event = 'to' and rcpt_index = 0) as n_to,
        count(*) filter (where event = 'to' and status = 'deferred') as n_deferred,
        count(*) filter (where status = 'user_unknown') as n_user_unknown,
        bool_or(event in ('to', 'reject')) as addressed,
        sum(size) filter (where event = 'from') as bytes
    from attributed
    group by all
),

per_domain as (
    select
        interval_start,
        sender,
        client_ip,
        recipient_domain,
        sum(n_from) as n_from,
        sum(n_to) as n_to,
        sum(n_deferred) as n_deferred,
        sum(n_user_unknown) as n_user_unknown,
        count(recipient) filter (where addressed) as n_recipients,
        bool_or(addressed) as addressed,
        sum(bytes) as bytes
    from per_recipient
    group by all
)

select
    $site::varchar as site,
    interval_start,
    sender,
    client_ip,
    sum(n_from)::bigint as n_from,
    sum(n_to)::bigint as n_to,
    sum(n_deferred)::bigint as n_deferred,
    sum(n_user_unknown)::bigint as n_user_unknown,
    sum(n_recipients)::bigint as n_recipients,
    count(recipient_domain) filter (where addressed) as n_recipient_domains,
    sum(bytes) as bytes
from per_domain
group by all
order by interval_start asc, n_from desc, client_ip asc nulls last, sender asc nulls last
