-- deferral_history: deferrals per day to each domain of $domains, on the days before $day (from
-- $since on) that had any.
select
    recipient_domain,
    day,
    sum(n_deferred) as n_deferred,
    sum(n_to) as n_to
from domain_deferrals
where day >= $since and day < $day and list_contains($domains::varchar[], recipient_domain)
group by all
order by recipient_domain, day
