-- deferral_history: deferrals per destination domain and day before $day (from $since on).
select
    recipient_domain,
    day,
    sum(n_deferred) as n_deferred,
    sum(n_to) as n_to
from domain_deferrals
where day >= $since and day < $day
group by all
order by recipient_domain, day
