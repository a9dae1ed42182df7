-- deferral_onset: for each domain of $domains and each interval of $day with mail to it, the
-- distinct messages to it that were deferred, and the deliveries to it that succeeded, in the
-- $minutes up to the interval's end (a surge's first flag: a domain refusing several messages,
-- not one message retried).
with ends as (
    select distinct
        recipient_domain,
        interval_start,
        interval_start + $interval::interval as interval_end
    from domain_deferrals
    where day = $day and list_contains($domains::varchar[], recipient_domain)
),

tries as (
    select
        recipient_domain,
        ts,
        queue_id,
        status
    from mail_events
    where
        day = $day and event = 'to' and status in ('deferred', 'sent')
        and list_contains($domains::varchar[], recipient_domain)
)

select
    ends.recipient_domain,
    ends.interval_start,
    count(distinct tries.queue_id) filter (where tries.status = 'deferred') as deferred_messages,
    count(tries.ts) filter (where tries.status = 'sent') as delivered
from ends
left join tries
    on
        ends.recipient_domain = tries.recipient_domain
        and tries.ts >= ends.interval_end - to_minutes($minutes::bigint)
        and ends.interval_end > tries.ts
group by all
order by ends.recipient_domain, ends.interval_start
