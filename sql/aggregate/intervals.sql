-- intervals: the day's counts per bin of $interval, every bin present (zero-filled).
-- dq counts the DNS queries made by the mail servers ($mail_server_ips); the mail counts follow
-- contract section 5: n_to counts to= lines (rcpt_index = 0), not recipients.
with bins as (
    select unnest(generate_series(
        $day_start::timestamptz, $day_end::timestamptz - $interval::interval, $interval::interval
    )) as interval_start
),

mail as (
    select
        time_bucket($interval::interval, ts, $day_start::timestamptz) as interval_start,
        count(*) filter (where event = 'from') as n_from,
        count(*) filter (where event = 'to' and rcpt_index = 0) as n_to,
        count(*) filter (where event = 'to' and rcpt_index = 0 and status = 'sent') as n_sent,
        count(*) filter (where event = 'to' and rcpt_index = 0 and status = 'deferred') as n_deferred,
        count(*) filter (where event = 'to' and rcpt_index = 0 and status = 'bounced') as n_bounced,
        count(*) filter (where event = 'pop_login') as n_pop,
        count(*) filter (where status = 'user_unknown' and event in ('reject', 'to')) as n_user_unknown,
        count(*) filter (where event = 'reject') as n_reject
    from mail_events
    where day = $day
    group by all
),

dns as (
    select
        time_bucket($interval::interval, ts, $day_start::timestamptz) as interval_start,
        count(*) as dq
    from dns_queries
    where day = $day and list_contains($mail_server_ips::varchar[], client_ip)
    group by all
)

select
    $site::varchar as site,
    bins.interval_start,
    coalesce(dns.dq, 0) as dq,
    coalesce(mail.n_from, 0) as n_from,
    coalesce(mail.n_to, 0) as n_to,
    coalesce(mail.n_sent, 0) as n_sent,
    coalesce(mail.n_deferred, 0) as n_deferred,
    coalesce(mail.n_bounced, 0) as n_bounced,
    coalesce(mail.n_pop, 0) as n_pop,
    coalesce(mail.n_user_unknown, 0) as n_user_unknown,
    coalesce(mail.n_reject, 0) as n_reject
from bins
left join mail on bins.interval_start = mail.interval_start
left join dns on bins.interval_start = dns.interval_start
order by bins.interval_start
