-- host_activity: what one client host (or one sender of localhost/a relay, or a sender with no
-- client) did inside its bursts ($starts[i] to $ends[i]): the evidence behind an incident.
-- Lines count for the sender and host of their message (views/_mail_attributed.sql).
with windows as (
    select
        unnest($starts::timestamptz[]) as ws,
        unnest($ends::timestamptz[]) as we
),

attributed as (
    select *
    from mail_attributed($day::date) as e
    where exists (
        select 1 from windows
        where e.ts >= windows.ws and e.ts < windows.we
    )
),

mine as (
    select *
    from attributed
    where
        host_ip is not distinct from $client_ip::varchar
        and ($sender::varchar is null or msg_sender = $sender::varchar)
),

sizes as (
    select
        median(size) filter (where size > 0) as med,
        mode(msg_sender) as main_sender
    from mine
    where event = 'from'
),

-- every line of the host, beside its median message size and most frequent sender
sized as (
    select
        mine.*,
        sizes.med,
        sizes.main_sender
    from mine cross join sizes
)

select
    count(*) filter (where event = 'from') as messages,
    count(*) filter (where event = 'reject' and queue_id is null) as refused_without_message,
    count(distinct msg_sender) filter (where event = 'from') as distinct_senders,
    max(main_sender) as top_sender,
    count(*) filter (where event = 'from' and msg_sender = main_sender) as top_sender_messages,
    count(*) filter (
        where event = 'from' and coalesce(msg_sender, '') != ''
        and not list_contains($local_domains::varchar[], lower(split_part(msg_sender, '@', 2)))
    ) as foreign_sender_messages,
    count(distinct coalesce(queue_id, '') || '|' || recipient) filter (where event = 'to')
    + count(*) filter (where event = 'reject') as recipients_attempted,
    count(distinct recipient) filter (where event in ('to', 'reject')) as distinct_recipients,
    count(distinct recipient_domain) filter (where event in ('to', 'reject')) as recipient_domains,
    count(*) filter (where status = 'user_unknown') as user_unknown,
    count(*) filter (where event = 'to' and status = 'deferred') as deferred,
    max(med) as median_size,
    coalesce(
        avg(case when abs(size - med) <= 0.02 * med then 1.0 else 0.0 end)
        filter (where event = 'from' and size > 0),
        0
    ) as near_constant_share,
    min(ts) as first_seen,
    max(ts) as last_seen,
    list(distinct msg_sender order by msg_sender) filter (where event = 'from')[1:5] as sample_senders,
    list_concat(
        list(struct_pack(file := file, line_no := line_no, event := event) order by ts, file, line_no)
        filter (where event = 'from')[1:3],
        list(struct_pack(file := file, line_no := line_no, event := event) order by ts, file, line_no)
        filter (where status = 'user_unknown')[1:3]
    ) as sample_lines
from sized
