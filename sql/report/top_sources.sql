-- top_sources: figure 2's N_SMTP(i), the $top senders or hosts with the most from= lines of the
-- day, per interval (long form: one row per source and interval that has mail). A source is the
-- client host when the mail came with one (what an administrator can unplug), else the sender
-- address; reverse_name is the name sendmail logged for the host (relay=name [ip]).
with per_interval as (
    select
        interval_start,
        coalesce(client_ip, sender) as source,
        client_ip,
        sender,
        n_from,
        n_to,
        n_user_unknown
    from user_intervals
    where day = $day
),

ranked as (
    select
        source,
        any_value(client_ip) as client_ip,
        count(distinct sender) as senders,
        sum(n_from)::bigint as total_from,
        sum(n_to)::bigint as total_to,
        sum(n_user_unknown)::bigint as total_user_unknown,
        row_number() over (order by sum(n_from) desc, source) as rank
    from per_interval
    where source is not null
    group by source
    qualify rank <= $top
),

names as (
    select
        client_ip,
        mode(relay_host order by ts, file, line_no) as reverse_name
    from mail_events
    where day = $day and event = 'from' and client_ip is not null
    group by client_ip
)

select
    ranked.rank,
    ranked.source,
    ranked.client_ip,
    names.reverse_name,
    ranked.senders,
    ranked.total_from,
    ranked.total_to,
    ranked.total_user_unknown,
    per_interval.interval_start,
    sum(per_interval.n_from)::bigint as n_from,
    sum(per_interval.n_to)::bigint as n_to
from ranked
inner join per_interval on ranked.source = per_interval.source
left join names on ranked.client_ip = names.client_ip
group by all
order by ranked.rank, per_interval.interval_start
