-- host_activity: what one client host (or, without one, one sender) did between $start and $end:
-- the evidence behind an incident. Rejections and deliveries join their from= by queue id.
with senders as (
    select queue_id, any_value(sender) as sender, any_value(client_ip) as client_ip
    from mail_events
    where day = $day and event = 'from' and queue_id is not null
    group by queue_id
),

mine as (
    select e.*, coalesce(e.sender, s.sender) as msg_sender, coalesce(s.client_ip, e.client_ip) as host_ip
    from mail_events as e
    left join senders as s using (queue_id)
    where
        e.day = $day
        and e.ts >= $start::timestamptz and e.ts < $end::timestamptz
        and e.event in ('from', 'to', 'reject')
)

select
    count(*) filter (where event = 'from') as messages,
    count(distinct msg_sender) filter (where event = 'from') as distinct_senders,
    count(distinct recipient) filter (where event in ('to', 'reject')) as recipients,
    count(distinct recipient_domain) filter (where event in ('to', 'reject')) as recipient_domains,
    count(*) filter (where status = 'user_unknown') as user_unknown,
    count(*) filter (where event = 'from' and nrcpts = 0) as all_rejected,
    median(size) filter (where event = 'from') as median_size,
    coalesce(stddev_pop(size) filter (where event = 'from') / nullif(avg(size) filter (where event = 'from'), 0), 0)
        as size_cv,
    min(ts) as first_seen,
    max(ts) as last_seen,
    list(distinct msg_sender order by msg_sender) filter (where event = 'from')[1:5] as sample_senders,
    list(struct_pack(file := file, line_no := line_no, event := event) order by ts)
        filter (where status = 'user_unknown' or event = 'from')[1:6] as sample_lines
from mine
where
    (host_ip = $client_ip::varchar or ($client_ip::varchar is null and msg_sender = $sender::varchar))
