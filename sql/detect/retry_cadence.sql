-- retry_cadence: how deferred mail to each domain of $domains was retried on $day: the time
-- between one delivery attempt of a message and the next (sendmail -q30m: ~30 min; Postfix:
-- backoff 5-67 min).
with attempts as (
    select distinct
        recipient_domain,
        queue_id,
        ts
    from mail_events
    where
        day = $day and event = 'to' and list_contains($domains::varchar[], recipient_domain)
        and queue_id is not null and coalesce(rcpt_index, 0) = 0
),

gaps as (
    select
        recipient_domain,
        queue_id,
        date_diff('second', lag(ts) over (partition by recipient_domain, queue_id order by ts), ts) / 60.0
            as gap_min
    from attempts
)

select
    recipient_domain,
    count(distinct queue_id) filter (where gap_min is not null) as retried_messages,
    count(gap_min) as retries,
    median(gap_min) as median_gap_minutes,
    quantile_cont(gap_min, 0.25) as q1_gap_minutes,
    quantile_cont(gap_min, 0.75) as q3_gap_minutes
from gaps
where gap_min is null or gap_min > 0.5
group by recipient_domain
order by recipient_domain
