-- domain_lines: for each surge of the `surges` table (domain, span_start, span_end), a few of
-- the deferred delivery lines to its domain within its span (evidence).
with lines as (
    select
        s.domain,
        e.file,
        e.line_no,
        e.event,
        row_number() over (partition by s.domain order by e.ts, e.file, e.line_no) as n
    from mail_events as e
    inner join surges as s on e.recipient_domain = s.domain
    where
        e.day = $day and e.event = 'to' and e.status = 'deferred' and coalesce(e.rcpt_index, 0) = 0
        and e.ts >= s.span_start and e.ts < s.span_end
)

select
    domain,
    file,
    line_no,
    event
from lines
where n <= 3
order by domain, n
