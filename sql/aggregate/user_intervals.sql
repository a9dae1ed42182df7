-- user_intervals: N_SMTP(i) of the papers, per bin and per (sender, client host).
-- Each line counts for the sender and host of its message (views/_mail_attributed.sql).
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
)

select
    $site::varchar as site,
    interval_start,
    sender,
    client_ip,
    count(*) filter (where event = 'from') as n_from,
    count(*) filter (where event = 'to' and rcpt_index = 0) as n_to,
    count(*) filter (where event = 'to' and status = 'deferred') as n_deferred,
    count(*) filter (where status = 'user_unknown') as n_user_unknown,
    count(distinct recipient) filter (where event in ('to', 'reject')) as n_recipients,
    count(distinct recipient_domain) filter (where event in ('to', 'reject')) as n_recipient_domains,
    sum(size) filter (where event = 'from') as bytes
from attributed
group by all
order by interval_start asc, n_from desc, client_ip asc nulls last, sender asc nulls last
