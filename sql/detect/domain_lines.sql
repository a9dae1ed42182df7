-- domain_lines: a few deferred delivery lines to $domain between $start and $end (evidence).
select
    file,
    line_no,
    event
from mail_events
where
    day = $day and event = 'to' and status = 'deferred' and recipient_domain = $domain
    and coalesce(rcpt_index, 0) = 0
    and ts >= $start::timestamptz and ts < $end::timestamptz
order by ts, file, line_no
limit 3
