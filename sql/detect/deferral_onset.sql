-- deferral_onset: for each interval of $day with mail to $domain, the distinct messages to it that
-- were deferred, and the deliveries to it that succeeded, in the $minutes up to the interval's end
-- (a surge's first flag: a domain refusing several messages, not one message retried).
with ends as (
    select distinct
        interval_start,
        interval_start + $interval::interval as interval_end
    from domain_deferrals
    where day = $day and recipient_domain = $domain
),

tries as (
    select
        ts,
        queue_id,
        status
    from mail_events
    where day = $day and event = 'to' and recipient_domain = $domain and status in ('deferred', 'sent')
)

select
    ends.interval_start,
    count(distinct tries.queue_id) filter (where tries.status = 'deferred') as deferred_messages,
    count(tries.ts) filter (where tries.status = 'sent') as delivered
from ends
left join tries
    on ends.interval_end - to_minutes($minutes::bigint) <= tries.ts and ends.interval_end > tries.ts
group by all
order by ends.interval_start
