-- judged_events: the local day $day's from=, to= and reject lines of the judged clients (the
-- `judged` table: every client but remote ones), each with its entity (client_ip; and sender for
-- the clients judged per sender), its bin of $interval, and whether it is the first time today
-- that the entity showed this sender, recipient, recipient domain or message size.
-- Kept as a temporary table: entity_bins, novel_recipients and address_book read it.
create or replace temp table judged_events as
with events as (
    select
        a.event,
        a.ts,
        a.file,
        a.line_no,
        a.queue_id,
        a.status,
        a.nrcpts,
        a.size,
        a.recipient,
        a.recipient_domain,
        a.msg_sender,
        j.client_ip,
        j.client_kind,
        case when j.split then coalesce(a.msg_sender, '') end as sender,
        time_bucket($interval::interval, a.ts, $day_start::timestamptz) as bin
    from mail_attributed($day::date) as a
    inner join judged as j on coalesce(a.host_ip, '') = j.client_ip
)

select
    *,
    event = 'from' and coalesce(nrcpts, 1) > 0 as is_message,
    -- a size seen before from this entity today, in either of two offset grids of 4 % buckets
    -- (two sizes a few bytes apart across one grid's bucket edge share the other's bucket)
    event = 'from' and (
        row_number() over (
            partition by client_ip, sender, event, floor(ln(greatest(size, 1)) / ln(1.04)) order by ts, queue_id
        ) > 1
        or row_number() over (
            partition by client_ip, sender, event, floor(ln(greatest(size, 1)) / ln(1.04) + 0.5)
            order by ts, queue_id
        ) > 1
    ) as size_seen,
    event = 'from' and row_number() over (
        partition by client_ip, sender, event = 'from', msg_sender order by ts, queue_id
    ) = 1 as new_sender,
    event in ('to', 'reject') and recipient is not null and row_number() over (
        partition by client_ip, sender, event in ('to', 'reject'), recipient order by ts, queue_id
    ) = 1 as new_recipient,
    event in ('to', 'reject') and recipient_domain is not null and row_number() over (
        partition by client_ip, sender, event in ('to', 'reject'), recipient_domain order by ts, queue_id
    ) = 1 as new_domain
from events
