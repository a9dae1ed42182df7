-- entity_bins: what each judged entity (judged_events.sql) did in each bin, as counts that add
-- up over bins, so that any window's counts are a sum (mmw_tasks/detect/features.py). Distinct
-- things count in the bin where the entity first showed them today.
select
    client_ip,
    sender,
    bin,
    any_value(client_kind) as client_kind,
    count(*) filter (where is_message) as messages,
    count(*) filter (where event = 'from' and nrcpts = 0)
    + count(*) filter (where event = 'reject' and queue_id is null) as refused_sessions,
    count(*) filter (where is_message and size_seen) as size_repeats,
    count(*) filter (where is_message and size >= $attachment_bytes) as large_messages,
    count(*) filter (where new_sender and msg_sender is not null) as new_senders,
    count(*) filter (
        where new_sender and coalesce(msg_sender, '') != ''
        and not list_contains($local_domains::varchar[], lower(split_part(msg_sender, '@', 2)))
    ) as new_foreign_senders,
    count(*) filter (
        where is_message and coalesce(msg_sender, '') != ''
        and not list_contains($local_domains::varchar[], lower(split_part(msg_sender, '@', 2)))
    ) as foreign_messages,
    count(distinct coalesce(queue_id, '') || '|' || recipient) filter (where event = 'to')
    + count(*) filter (where event = 'reject') as attempts,
    count(*) filter (where event = 'reject') as refused,
    count(*) filter (where status = 'user_unknown') as user_unknown,
    count(*) filter (where event = 'to' and status = 'deferred') as deferred,
    count(*) filter (where new_recipient) as new_recipients,
    count(*) filter (where new_domain) as new_domains,
    min(ts) as first_ts,
    max(ts) as last_ts
from judged_events
group by client_ip, sender, bin
order by client_ip, sender, bin
