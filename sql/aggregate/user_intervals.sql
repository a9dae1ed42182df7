-- user_intervals: N_SMTP(i) of the papers, per bin and per (sender, client host).
-- A to= line or a "User unknown" rejection belongs to the from= line with its queue id, so a
-- worm's refused recipients land on the host that sent them even when its senders are forged.
-- A reject names its client itself when it has no queue id (Postfix NOQUEUE).
with senders as (
    select queue_id, any_value(sender) as sender, any_value(client_ip) as client_ip
    from mail_events
    where day = $day and event = 'from' and queue_id is not null
    group by queue_id
),

attributed as (
    select
        time_bucket($interval::interval, e.ts, $day_start::timestamptz) as interval_start,
        coalesce(e.sender, s.sender) as sender,
        coalesce(case when e.event in ('from', 'reject') then e.client_ip end, s.client_ip) as client_ip,
        e.event,
        e.rcpt_index,
        e.status,
        e.recipient,
        e.recipient_domain,
        e.size
    from mail_events as e
    left join senders as s using (queue_id)
    where e.day = $day and e.event in ('from', 'to', 'reject')
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
order by interval_start, n_from desc
