-- entity_evidence: for each entity in the `candidates` table (client_ip, sender, span_start,
-- span_end), what it did within its span on the local day (judged_events.sql): the counts an
-- incident's evidence shows, its senders, its median size, and a few of its lines to quote.
with mine as (
    select
        e.*,
        c.span_start,
        c.span_end
    from judged_events as e
    inner join candidates as c
        on e.client_ip = c.client_ip and e.sender is not distinct from c.sender
    where e.ts >= c.span_start and e.ts < c.span_end
),

sizes as (
    select
        client_ip,
        sender,
        median(size) filter (where is_message and size > 0) as med,
        mode(msg_sender order by ts, file, line_no) filter (where is_message) as top_sender
    from mine
    group by client_ip, sender
)

select
    m.client_ip,
    m.sender,
    count(*) filter (where m.is_message) as messages,
    count(*) filter (where m.event = 'from' and m.nrcpts = 0)
    + count(*) filter (where m.event = 'reject' and m.queue_id is null) as refused_sessions,
    count(distinct m.msg_sender) filter (where m.is_message) as distinct_senders,
    any_value(s.top_sender) as top_sender,
    count(*) filter (where m.is_message and m.msg_sender = s.top_sender) as top_sender_messages,
    count(*) filter (
        where m.is_message and coalesce(m.msg_sender, '') != ''
        and not list_contains($local_domains::varchar[], lower(split_part(m.msg_sender, '@', 2)))
    ) as foreign_sender_messages,
    count(distinct coalesce(m.queue_id, '') || '|' || m.recipient) filter (where m.event = 'to')
    + count(*) filter (where m.event = 'reject') as recipients_attempted,
    count(distinct m.recipient) filter (where m.event in ('to', 'reject')) as distinct_recipients,
    count(distinct m.recipient_domain) filter (where m.event in ('to', 'reject')) as recipient_domains,
    count(*) filter (where m.status = 'user_unknown') as user_unknown,
    count(*) filter (where m.event = 'to' and m.status = 'deferred') as deferred,
    any_value(s.med) as median_size,
    coalesce(
        avg(case when abs(m.size - s.med) <= 0.02 * s.med then 1.0 else 0.0 end)
        filter (where m.is_message and m.size > 0),
        0
    ) as near_constant_share,
    min(m.ts) as first_seen,
    max(m.ts) as last_seen,
    list(distinct m.msg_sender order by m.msg_sender) filter (where m.is_message)[1:5] as sample_senders,
    list_concat(
        list(struct_pack(file := m.file, line_no := m.line_no, event := m.event) order by m.ts, m.file, m.line_no)
        filter (where m.event = 'from')[1:3],
        list(struct_pack(file := m.file, line_no := m.line_no, event := m.event) order by m.ts, m.file, m.line_no)
        filter (where m.status = 'user_unknown')[1:3]
    ) as sample_lines
from mine as m
inner join sizes as s on m.client_ip = s.client_ip and m.sender is not distinct from s.sender
group by m.client_ip, m.sender
order by m.client_ip, m.sender
