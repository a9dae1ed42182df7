-- most_deferred_domain: figure 2's deferral curve: per interval, the deliveries deferred for the
-- recipient domain with the most deferrals of the day (no rows when nothing was deferred).
with top_domain as (
    select recipient_domain
    from domain_deferrals
    where day = $day and recipient_domain is not null
    group by recipient_domain
    having sum(n_deferred) > 0
    order by sum(n_deferred) desc, recipient_domain
    limit 1
)

select
    d.interval_start,
    d.recipient_domain,
    sum(d.n_deferred)::bigint as n_deferred,
    sum(d.n_to)::bigint as n_to
from domain_deferrals as d
inner join top_domain on d.recipient_domain = top_domain.recipient_domain
where d.day = $day
group by all
order by d.interval_start
