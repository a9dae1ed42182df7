-- day_domain_deferrals: the local day $day's delivery outcomes per bin and destination domain.
select *
from domain_deferrals
where day = $day
order by recipient_domain, interval_start
